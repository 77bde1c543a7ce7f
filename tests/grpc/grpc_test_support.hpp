// Helpers of the gRPC transport tests: a transport with a recording handler
// whose snapshots land in a real snapshot store, in-memory snapshot
// content, and certificates made with openssl at test time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../wal/wal_test_support.hpp"
#include "keel/grpc/transport.hpp"
#include "keel/node/snapshot_transfer.hpp"
#include "keel/wal/crc32c.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/snapshot_store.hpp"

namespace keel::test {

/// Deterministic snapshot content of `n` bytes.
inline std::vector<std::byte> content_of(std::size_t n, std::uint64_t seed = 1) {
  std::vector<std::byte> bytes(n);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bytes[i] = static_cast<std::byte>(x);
  }
  return bytes;
}

/// A snapshot's content held in memory, for a sender.
class memory_source final : public transport::snapshot_source {
 public:
  explicit memory_source(std::shared_ptr<const std::vector<std::byte>> bytes)
      : bytes_(std::move(bytes)), crc_(wal::crc32c(*bytes_)) {}
  std::uint64_t size() const override { return bytes_->size(); }
  std::uint32_t crc() const override { return crc_; }
  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset > bytes_->size()) return errc::invalid_argument;
    const std::size_t n = std::min<std::size_t>(out.size(), bytes_->size() - offset);
    std::copy_n(bytes_->begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }

 private:
  std::shared_ptr<const std::vector<std::byte>> bytes_;
  std::uint32_t crc_;
};

/// One node's transport, with a handler that records what arrives: its
/// messages, its snapshots (into a snapshot store in a temporary
/// directory) and the outcomes of the snapshots it sent.
class test_peer {
 public:
  using store_type = wal::snapshot_store<wal::posix_file_system>;

  explicit test_peer(rpc::transport_options options)
      : store_(wal::posix_file_system{}, dir_.path() + "/snap") {
    REQUIRE_FALSE(store_.cleanup());
    auto t = rpc::grpc_transport::listen(std::move(options));
    REQUIRE(t);
    transport_.emplace(std::move(*t));
    transport_->attach(handler());
  }

  rpc::grpc_transport& transport() { return *transport_; }
  store_type& store() { return store_; }
  const std::string& directory() const { return dir_.path(); }

  /// The content a snap message with handle `name` sends.
  void offer(const std::string& name, std::shared_ptr<const std::vector<std::byte>> bytes) {
    std::lock_guard lock(mutex_);
    offered_[name] = std::move(bytes);
  }

  /// Waits until `count` messages arrived (or `patience` passed); returns them.
  std::vector<raft::message> wait_messages(
      std::size_t count, std::chrono::milliseconds patience = std::chrono::seconds(20)) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return messages_.size() >= count; });
    return messages_;
  }

  /// Waits for the outcome of the `n`th snapshot sent (1-based).
  std::optional<bool> wait_snapshot_outcome(
      std::size_t n = 1, std::chrono::milliseconds patience = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return outcomes_.size() >= n; });
    if (outcomes_.size() < n) return std::nullopt;
    return outcomes_[n - 1];
  }

  std::size_t unreachable_reports() const {
    std::lock_guard lock(mutex_);
    return unreachable_;
  }

  /// Sinks handed out, and bytes written through them.
  std::uint64_t bytes_received() const {
    std::lock_guard lock(mutex_);
    return *received_;
  }

 private:
  /// Counts what passes through a file sink.
  class counting_sink final : public transport::snapshot_sink {
   public:
    counting_sink(std::unique_ptr<transport::snapshot_sink> inner,
                  std::shared_ptr<std::uint64_t> count, std::mutex& m)
        : inner_(std::move(inner)), count_(std::move(count)), mutex_(m) {}
    std::uint64_t held() const override { return inner_->held(); }
    std::error_code write(std::span<const std::byte> data) override {
      {
        std::lock_guard lock(mutex_);
        *count_ += data.size();
      }
      return inner_->write(data);
    }
    std::error_code checkpoint() override { return inner_->checkpoint(); }
    result<std::string> commit(std::uint64_t size, std::uint32_t crc) override {
      return inner_->commit(size, crc);
    }
    void discard() override { inner_->discard(); }

   private:
    std::unique_ptr<transport::snapshot_sink> inner_;
    std::shared_ptr<std::uint64_t> count_;
    std::mutex& mutex_;
  };

  transport::handler handler() {
    return {
        .deliver =
            [this](raft::message m) {
              std::lock_guard lock(mutex_);
              messages_.push_back(std::move(m));
              changed_.notify_all();
            },
        .unreachable =
            [this](raft::node_id) {
              std::lock_guard lock(mutex_);
              ++unreachable_;
            },
        .open_snapshot =
            [this](const raft::snapshot& s) -> result<std::unique_ptr<transport::snapshot_source>> {
          std::lock_guard lock(mutex_);
          auto it = offered_.find(s.data);
          if (it == offered_.end()) return errc::not_found;
          return std::unique_ptr<transport::snapshot_source>(new memory_source(it->second));
        },
        .receive_snapshot = [this](raft::node_id, const raft::snapshot_metadata& m)
            -> result<std::unique_ptr<transport::snapshot_sink>> {
          store_type files = store_;
          auto writer = files.begin_partial(m.index, m.term, {});
          if (!writer) return writer.error();
          auto sink = std::make_unique<node::file_snapshot_sink<wal::posix_file_system>>(
              files, std::move(*writer), m.index, m.term, "file");
          return std::unique_ptr<transport::snapshot_sink>(
              new counting_sink(std::move(sink), received_, mutex_));
        },
        .snapshot_sent =
            [this](raft::node_id, bool delivered) {
              std::lock_guard lock(mutex_);
              outcomes_.push_back(delivered);
              changed_.notify_all();
            },
    };
  }

  temp_dir dir_;
  store_type store_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<raft::message> messages_;
  std::vector<bool> outcomes_;
  std::size_t unreachable_ = 0;
  std::shared_ptr<std::uint64_t> received_ = std::make_shared<std::uint64_t>(0);
  std::map<std::string, std::shared_ptr<const std::vector<std::byte>>> offered_;
  std::optional<rpc::grpc_transport> transport_;  // Last: it goes first.
};

/// Plaintext options for node `id` on an ephemeral loopback port.
inline rpc::transport_options plaintext_options(raft::node_id id) {
  rpc::transport_options o;
  o.id = id;
  o.tls.plaintext = true;
  o.chunk_timeout = std::chrono::seconds(5);
  return o;
}

/// A snap message from `from` to `to` naming content `name`.
inline raft::message snapshot_message(raft::node_id from, raft::node_id to, std::uint64_t index,
                                      std::uint64_t term, const std::string& name) {
  raft::message m{.type = raft::message_type::snap, .to = to, .from = from, .term = term};
  m.snapshot = raft::snapshot{
      .metadata = {.index = index, .term = term, .conf = {.voters = {1, 2}}}, .data = name};
  return m;
}

}  // namespace keel::test
