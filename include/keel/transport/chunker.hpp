// The transport-independent half of streaming: how a sender cuts a payload
// into chunks and how a receiver checks them, before any byte touches its
// disk or its memory. A payload is either a snapshot's content (the chunks
// name the snapshot's index and term) or one serialized message too large
// for a single frame (index and term 0). The last chunk carries the
// payload's total size and its CRC32C.
//
// A receiver feeds every chunk to a chunk_validator and acts on it only when
// check() says stream_fault::none; a stream that ends before its last chunk
// is stream_fault::ended_early. payload_assembler keeps a small payload in
// memory under a byte limit; a snapshot goes to a transport::snapshot_sink.
//
// Thread safety: plain values; one stream per object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "keel/raft/types.hpp"
#include "keel/wal/crc32c.hpp"

namespace keel::transport {

/// Chunk sizes a sender may use: small enough for a 4 MiB frame with room
/// for the header, large enough not to drown in per-chunk costs.
inline constexpr std::size_t min_chunk_bytes = 64 * 1024;
inline constexpr std::size_t max_chunk_bytes = 4 * 1024 * 1024 - 64 * 1024;
inline constexpr std::size_t default_chunk_bytes = 1024 * 1024;

/// One chunk as the wire carried it.
struct chunk_view {
  raft::node_id from = raft::no_node;
  std::uint64_t snapshot_index = 0;
  std::uint64_t snapshot_term = 0;
  std::uint64_t offset = 0;
  std::span<const std::byte> data{};
  bool last = false;
  std::uint64_t total_size = 0;  ///< Last chunk only.
  std::uint32_t crc = 0;         ///< Last chunk only: CRC32C of the whole payload.
};

/// Why a receiver refused a stream.
enum class stream_fault : std::uint8_t {
  none,
  wrong_sender,         ///< A chunk names another sender than the first.
  mismatched_snapshot,  ///< A chunk names another snapshot than the first.
  gap,                  ///< A chunk does not start where the previous ended.
  too_large,            ///< The payload would exceed the receiver's maximum.
  bad_size,             ///< The last chunk's total size is not the bytes sent.
  bad_checksum,         ///< The payload's CRC32C is not the announced one.
  ended_early,          ///< The stream ended before its last chunk.
  chunk_too_large,      ///< One chunk is larger than any sender may cut.
};

constexpr const char* to_string(stream_fault f) noexcept {
  switch (f) {
    case stream_fault::none:
      return "no fault";
    case stream_fault::wrong_sender:
      return "a chunk names another sender than the stream's first";
    case stream_fault::mismatched_snapshot:
      return "a chunk names another snapshot than the stream's first";
    case stream_fault::gap:
      return "a chunk does not start where the previous one ended";
    case stream_fault::too_large:
      return "the payload exceeds the receiver's maximum size";
    case stream_fault::bad_size:
      return "the last chunk's total size differs from the bytes received";
    case stream_fault::bad_checksum:
      return "the payload's CRC32C differs from the one announced";
    case stream_fault::ended_early:
      return "the stream ended before its last chunk";
    case stream_fault::chunk_too_large:
      return "a chunk exceeds the largest chunk size";
  }
  return "invalid fault";
}

/// The sender's plan: the chunks of `total` payload bytes from `start` on,
/// `chunk_bytes` at a time. A payload with nothing left to send (start ==
/// total) still has one chunk, the empty last one.
class chunk_plan {
 public:
  chunk_plan(std::uint64_t start, std::uint64_t total, std::size_t chunk_bytes) noexcept
      : next_(start), total_(total), chunk_bytes_(chunk_bytes == 0 ? 1 : chunk_bytes) {}

  /// Whether another chunk is due.
  bool more() const noexcept { return !done_; }

  struct piece {
    std::uint64_t offset = 0;
    std::size_t length = 0;
    bool last = false;
  };

  /// The next chunk's place; call only while more().
  piece next() noexcept {
    const std::uint64_t left = total_ > next_ ? total_ - next_ : 0;
    const auto length = static_cast<std::size_t>(left < chunk_bytes_ ? left : chunk_bytes_);
    piece p{next_, length, next_ + length >= total_};
    next_ += length;
    done_ = p.last;
    return p;
  }

 private:
  std::uint64_t next_;
  std::uint64_t total_;
  std::size_t chunk_bytes_;
  bool done_ = false;
};

/// Checks one stream's chunks in order (see the file comment).
class chunk_validator {
 public:
  /// A stream whose payload may reach `max_bytes` and whose first chunk
  /// must start at `start` (what the receiver already holds).
  chunk_validator(std::uint64_t max_bytes, std::uint64_t start) noexcept
      : max_bytes_(max_bytes), next_(start) {}

  stream_fault check(const chunk_view& c) noexcept {
    if (first_) {
      from_ = c.from;
      index_ = c.snapshot_index;
      term_ = c.snapshot_term;
      first_ = false;
    } else if (c.from != from_) {
      return stream_fault::wrong_sender;
    } else if (c.snapshot_index != index_ || c.snapshot_term != term_) {
      return stream_fault::mismatched_snapshot;
    }
    if (c.data.size() > max_chunk_bytes) return stream_fault::chunk_too_large;
    if (c.offset != next_) return stream_fault::gap;
    if (c.data.size() > max_bytes_ || c.offset > max_bytes_ - c.data.size()) {
      return stream_fault::too_large;
    }
    next_ = c.offset + c.data.size();
    if (c.last) {
      if (c.total_size > max_bytes_) return stream_fault::too_large;
      if (c.total_size != next_) return stream_fault::bad_size;
      finished_ = true;
    }
    return stream_fault::none;
  }

  /// Where the next chunk must start: the payload bytes received so far.
  std::uint64_t next_offset() const noexcept { return next_; }
  /// Whether the last chunk was accepted.
  bool finished() const noexcept { return finished_; }
  /// The stream's sender, snapshot index and term (after the first chunk).
  raft::node_id from() const noexcept { return from_; }
  std::uint64_t snapshot_index() const noexcept { return index_; }
  std::uint64_t snapshot_term() const noexcept { return term_; }

 private:
  std::uint64_t max_bytes_;
  std::uint64_t next_;
  raft::node_id from_ = raft::no_node;
  std::uint64_t index_ = 0;
  std::uint64_t term_ = 0;
  bool first_ = true;
  bool finished_ = false;
};

/// Reassembles one small payload (a serialized message) in memory, never
/// more than its validator's maximum.
class payload_assembler {
 public:
  explicit payload_assembler(std::uint64_t max_bytes) noexcept : validator_(max_bytes, 0) {}

  /// Checks c, keeps its bytes, and on the last chunk checks the CRC32C.
  stream_fault add(const chunk_view& c) {
    if (auto f = validator_.check(c); f != stream_fault::none) return f;
    payload_.append(reinterpret_cast<const char*>(c.data.data()), c.data.size());
    crc_ = wal::crc32c(c.data, crc_);
    if (c.last && crc_ != c.crc) return stream_fault::bad_checksum;
    return stream_fault::none;
  }

  bool finished() const noexcept { return validator_.finished(); }
  /// The payload, once finished().
  std::string& payload() noexcept { return payload_; }

 private:
  chunk_validator validator_;
  std::string payload_{};
  std::uint32_t crc_ = 0;
};

}  // namespace keel::transport
