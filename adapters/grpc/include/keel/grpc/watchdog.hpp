// A watchdog for stream writes: a stream that makes no progress for a
// while is cancelled, one that progresses never times out. A sender arms
// it before each blocking write and disarms it after; a write still
// blocked at its deadline gets its call cancelled (ClientContext::
// TryCancel), which makes the write fail. Unlike a deadline on the whole
// call, a 10 GiB snapshot that keeps moving is never cut.
//
// Thread safety: arm and disarm from any thread; after disarm(t) returns,
// the watchdog no longer touches t's context.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

namespace keel::rpc {

class watchdog {
 public:
  using clock = std::chrono::steady_clock;

  watchdog() : thread_([this] { run(); }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  /// Cancels `context` unless disarm() comes within `patience`.
  std::uint64_t arm(::grpc::ClientContext& context, clock::duration patience) {
    std::lock_guard lock(mutex_);
    const std::uint64_t token = ++next_token_;
    armed_.emplace(token, entry{&context, clock::now() + patience});
    wake_.notify_all();
    return token;
  }

  void disarm(std::uint64_t token) {
    std::lock_guard lock(mutex_);
    armed_.erase(token);
  }

  /// Calls cancelled so far.
  std::uint64_t cancelled() const {
    std::lock_guard lock(mutex_);
    return cancelled_;
  }

 private:
  struct entry {
    ::grpc::ClientContext* context;
    clock::time_point deadline;
  };

  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      auto earliest = clock::time_point::max();
      const auto now = clock::now();
      for (auto it = armed_.begin(); it != armed_.end();) {
        if (it->second.deadline <= now) {
          it->second.context->TryCancel();
          ++cancelled_;
          it = armed_.erase(it);
        } else {
          earliest = std::min(earliest, it->second.deadline);
          ++it;
        }
      }
      if (earliest == clock::time_point::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, earliest);
      }
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::uint64_t, entry> armed_{};
  std::uint64_t next_token_ = 0;
  std::uint64_t cancelled_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

/// Arms a watchdog for one blocking call's scope.
class armed_write {
 public:
  armed_write(watchdog& dog, ::grpc::ClientContext& context, watchdog::clock::duration patience)
      : dog_(dog), token_(dog.arm(context, patience)) {}
  armed_write(const armed_write&) = delete;
  armed_write& operator=(const armed_write&) = delete;
  ~armed_write() { dog_.disarm(token_); }

 private:
  watchdog& dog_;
  std::uint64_t token_;
};

}  // namespace keel::rpc
