// The replica's side of a streamed snapshot: a transport::snapshot_source
// that reads a committed snapshot file of the replica's snapshot store, and
// a transport::snapshot_sink that receives one into a resumable .part file
// of that store and installs it as a committed file.
//
// A streaming transport calls these from its own threads. Each source and
// sink works on its own copy of the snapshot store (a directory name and the
// file system policy), so they need a file system policy that may be used
// from several threads (posix_file_system may).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "keel/result.hpp"
#include "keel/transport/transport.hpp"
#include "keel/wal/snapshot_store.hpp"

namespace keel::node {

/// Reads the committed snapshot file (index, term) for a sender.
template <wal::file_system FS>
class file_snapshot_source final : public transport::snapshot_source {
 public:
  explicit file_snapshot_source(wal::snapshot_reader<FS> reader) : reader_(std::move(reader)) {}

  std::uint64_t size() const override { return reader_.size(); }
  std::uint32_t crc() const override { return reader_.crc(); }
  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    return reader_.read_at(offset, out);
  }

 private:
  wal::snapshot_reader<FS> reader_;
};

/// Receives the snapshot (index, term) into the store's .part file; commit
/// makes it the committed file whose handle is `handle`. A failed checkpoint
/// or commit (other than a content mismatch) means the disk misbehaves:
/// `on_storage_failure` hears of it, so the node can stop (fail-stop).
template <wal::file_system FS>
class file_snapshot_sink final : public transport::snapshot_sink {
 public:
  file_snapshot_sink(wal::snapshot_store<FS> store, wal::snapshot_writer<FS> writer,
                     std::uint64_t index, std::uint64_t term, std::string handle,
                     std::function<void(std::error_code)> on_storage_failure = {})
      : store_(std::move(store)),
        writer_(std::move(writer)),
        index_(index),
        term_(term),
        handle_(std::move(handle)),
        on_storage_failure_(std::move(on_storage_failure)) {}

  std::uint64_t held() const override { return writer_ ? writer_->held() : 0; }

  std::error_code write(std::span<const std::byte> data) override {
    if (!writer_) return errc::invalid_argument;
    return writer_->write(data);
  }

  std::error_code checkpoint() override {
    if (!writer_) return errc::invalid_argument;
    return storage(writer_->sync());
  }

  result<std::string> commit(std::uint64_t size, std::uint32_t crc) override {
    if (!writer_) return errc::invalid_argument;
    auto ec = writer_->commit(size, crc);
    writer_.reset();
    if (ec) return ec == errc::corrupt_snapshot ? ec : storage(ec);
    return handle_;
  }

  void discard() override {
    writer_.reset();  // Keeps the .part file; removed next.
    (void)store_.discard_partial(index_, term_);
  }

 private:
  std::error_code storage(std::error_code ec) {
    if (ec && on_storage_failure_) on_storage_failure_(ec);
    return ec;
  }

  wal::snapshot_store<FS> store_;
  std::optional<wal::snapshot_writer<FS>> writer_;
  std::uint64_t index_;
  std::uint64_t term_;
  std::string handle_;
  std::function<void(std::error_code)> on_storage_failure_;
};

}  // namespace keel::node
