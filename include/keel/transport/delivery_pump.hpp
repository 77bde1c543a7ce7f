// delivery_pump: a thread that delivers an in_process_network's messages as
// soon as they are sent, delays ignored. With it the network carries a
// threaded cluster (every replica in its own runner) instead of one a test
// or the simulation drives step by step.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "keel/transport/in_process.hpp"

namespace keel::transport {

class delivery_pump {
 public:
  explicit delivery_pump(in_process_network& network)
      : network_(network), thread_([this] { run(); }) {}

  delivery_pump(const delivery_pump&) = delete;
  delivery_pump& operator=(const delivery_pump&) = delete;

  ~delivery_pump() {
    stopping_.store(true);
    network_.wake_waiters();
    thread_.join();
  }

 private:
  void run() {
    while (!stopping_.load()) {
      // The timeout only bounds how long a stop request can go unnoticed.
      if (network_.wait_for_traffic(std::chrono::milliseconds(50))) network_.deliver_all();
    }
  }

  in_process_network& network_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace keel::transport
