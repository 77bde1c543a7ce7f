// One WAL segment open for appending, through either write path:
//  - mmap: the preallocated file is mapped; records are built in place in
//    the mapping and msync makes them durable (no copy, no syscall per
//    append);
//  - pwrite: records are built in a buffer that sync() writes with one
//    pwrite and makes durable with fdatasync.
// Both reserve the whole segment with fallocate first, so a write can
// neither run out of space nor fault on a mapped page past the file's end.
//
// Segment files are named by their sequence number, "%016x.wal".
//
// Thread safety: none; the WAL serializes access.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/result.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::wal {

enum class write_mode {
  mmap,   ///< Write through a shared mapping, msync at sync points.
  pwrite  ///< Buffer, then pwrite and fdatasync at sync points.
};

inline const char* to_string(write_mode m) noexcept {
  return m == write_mode::mmap ? "mmap" : "pwrite";
}

inline std::string segment_name(std::uint64_t sequence) {
  char name[32];
  std::snprintf(name, sizeof name, "%016" PRIx64 ".wal", sequence);
  return name;
}

/// The sequence number of a segment file name, or nothing for other files.
inline std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != 20 || name.substr(16) != ".wal") return {};
  std::uint64_t v = 0;
  for (const char c : name.substr(0, 16)) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return {};
    }
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

/// Maps the errors of reserving space to keel's: ENOSPC is errc::no_space.
inline std::error_code space_error(std::error_code ec) noexcept {
  if (ec == std::errc::no_space_on_device) return errc::no_space;
  return ec;
}

template <file_system FS>
class segment_writer {
 public:
  using file_type = typename FS::file_type;
  using mapping_type = mapping_of<FS>;

  /// Opens a segment whose first `offset` bytes hold records already
  /// durable; the file is (re)allocated to `capacity` bytes.
  static result<segment_writer> open(file_type file, std::uint64_t sequence, std::uint64_t capacity,
                                     std::uint64_t offset, write_mode mode) {
    auto size = file.size();
    if (!size) return size.error();
    if (*size < capacity) {
      if (auto ec = file.allocate(0, capacity)) return space_error(ec);
      // The new size must be durable before data in it is relied upon.
      if (auto ec = file.sync()) return ec;
    } else {
      capacity = *size;
    }
    segment_writer w(std::move(file), sequence, capacity, offset, mode);
    if (mode == write_mode::mmap) {
      auto m = w.file_.map(capacity);
      if (!m) return m.error();
      w.mapping_.emplace(std::move(*m));
    }
    return w;
  }

  std::uint64_t sequence() const noexcept { return sequence_; }
  std::uint64_t capacity() const noexcept { return capacity_; }
  /// Where the next record goes.
  std::uint64_t offset() const noexcept { return offset_; }
  std::uint64_t room() const noexcept { return capacity_ - offset_; }
  bool dirty() const noexcept { return offset_ > synced_; }

  /// n bytes to build the next record in. Requires: n <= room().
  std::byte* reserve(std::uint64_t n) {
    if (mode_ == write_mode::mmap) return mapping_->data() + offset_;
    const std::size_t at = buffer_.size();
    buffer_.resize(at + n);
    return buffer_.data() + at;
  }
  /// The n bytes from the last reserve() now hold a record.
  void commit(std::uint64_t n) noexcept { offset_ += n; }

  /// Pushes buffered records to the file (pwrite path); without a sync they
  /// are not durable yet.
  std::error_code flush() {
    if (mode_ == write_mode::mmap || buffer_.empty()) return {};
    if (auto ec = file_.write(buffer_start_, buffer_)) return ec;
    buffer_start_ += buffer_.size();
    buffer_.clear();
    return {};
  }

  /// Makes every committed record durable.
  std::error_code sync() {
    if (!dirty()) return {};
    if (mode_ == write_mode::mmap) {
      if (auto ec = mapping_->sync(synced_, offset_ - synced_)) return ec;
    } else {
      if (auto ec = flush()) return ec;
      if (auto ec = file_.sync()) return ec;
    }
    synced_ = offset_;
    return {};
  }

  /// Forgets the records committed after `to` (never synced): a failed
  /// append takes back what it wrote. Requires: synced offset <= to.
  std::error_code rollback(std::uint64_t to) {
    if (to >= offset_) return {};
    if (mode_ == write_mode::mmap) {
      std::memset(mapping_->data() + to, 0, offset_ - to);
    } else if (to >= buffer_start_) {
      buffer_.resize(to - buffer_start_);
    } else {
      // Already pushed to the file: overwrite with zeros.
      buffer_.clear();
      const std::vector<std::byte> zeros(buffer_start_ - to);
      if (auto ec = file_.write(to, zeros)) return ec;
      buffer_start_ = to;
    }
    offset_ = to;
    synced_ = std::min(synced_, to);
    return {};
  }

  /// Zeroes [from, to) of the file durably (a torn tail recovery found) and
  /// continues appending at from. Requires: nothing buffered.
  std::error_code clear(std::uint64_t from, std::uint64_t to) {
    if (to <= from) return {};
    if (mode_ == write_mode::mmap) {
      std::memset(mapping_->data() + from, 0, to - from);
      if (auto ec = mapping_->sync(from, to - from)) return ec;
    } else {
      const std::vector<std::byte> zeros(to - from);
      if (auto ec = file_.write(from, zeros)) return ec;
      if (auto ec = file_.sync()) return ec;
    }
    offset_ = synced_ = buffer_start_ = from;
    return {};
  }

  /// Buffered bytes not yet pushed to the file.
  std::uint64_t buffered() const noexcept { return buffer_.size(); }

 private:
  segment_writer(file_type file, std::uint64_t sequence, std::uint64_t capacity,
                 std::uint64_t offset, write_mode mode)
      : file_(std::move(file)),
        sequence_(sequence),
        capacity_(capacity),
        offset_(offset),
        synced_(offset),
        buffer_start_(offset),
        mode_(mode) {}

  file_type file_;
  std::optional<mapping_type> mapping_;
  std::uint64_t sequence_;
  std::uint64_t capacity_;
  std::uint64_t offset_;
  std::uint64_t synced_;
  std::uint64_t buffer_start_;  ///< File offset of buffer_[0] (pwrite path).
  std::vector<std::byte> buffer_;
  write_mode mode_;
};

}  // namespace keel::wal
