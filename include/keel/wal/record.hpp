// The WAL's on-disk record framing and the bodies of its record types.
//
// A record, 8-byte aligned, little-endian:
//
//   [0, 4)   body length L
//   [4]      type
//   [5, 8)   zero
//   [8, 8+L) body, then zeros up to the next multiple of 8
//   trailer: u32 CRC32C of bytes [0, 8) and the body, seeded with the
//            segment's sequence number; u32 end marker "KEEL"
//
// Why a trailer: a write torn after a crash is a prefix of the record, so
// its last byte (the end marker's, never zero) reads as zero, the value
// preallocated space holds. A record whose last byte is zero is torn; one
// whose last byte is set but whose checksum fails was complete and has
// been damaged since. The checksum's segment seed makes a record copied
// into another segment fail.
//
// Thread safety: pure functions over caller-owned bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/bytes.hpp"
#include "keel/detail/codec.hpp"
#include "keel/raft/types.hpp"
#include "keel/result.hpp"
#include "keel/wal/crc32c.hpp"

namespace keel::wal {

enum class record_type : std::uint8_t {
  segment_header = 1,   ///< First record of every segment.
  metadata = 2,         ///< Cluster and node id.
  entry = 3,            ///< One Raft log entry.
  hard_state = 4,       ///< Raft's term, vote and commit.
  snapshot_marker = 5,  ///< A snapshot was taken (or installed) at an index.
  compaction = 6,       ///< Entries up to an index were compacted away.
};

inline const char* to_string(record_type t) noexcept {
  switch (t) {
    case record_type::segment_header:
      return "segment_header";
    case record_type::metadata:
      return "metadata";
    case record_type::entry:
      return "entry";
    case record_type::hard_state:
      return "hard_state";
    case record_type::snapshot_marker:
      return "snapshot_marker";
    case record_type::compaction:
      return "compaction";
  }
  return "unknown";
}

inline bool valid_record_type(std::uint8_t t) noexcept { return t >= 1 && t <= 6; }

inline constexpr std::size_t record_header_size = 8;
inline constexpr std::size_t record_trailer_size = 8;
inline constexpr std::uint32_t record_end_marker = 0x4C45454BU;  // "KEEL" little-endian
/// The largest body a record may have; a length above it is damage.
inline constexpr std::uint64_t max_record_body = std::uint64_t{1} << 30;
inline constexpr std::uint64_t segment_magic = 0x314C41574C45454BULL;  // "KEELWAL1"
inline constexpr std::uint32_t format_version = 1;

constexpr std::uint64_t align8(std::uint64_t n) noexcept { return (n + 7) & ~std::uint64_t{7}; }

/// Bytes a record with a body of `body` bytes takes on disk.
constexpr std::uint64_t record_size(std::uint64_t body) noexcept {
  return record_header_size + align8(body) + record_trailer_size;
}

/// The checksum seed of a segment's records.
inline std::uint32_t segment_seed(std::uint64_t sequence) noexcept {
  unsigned char raw[8];
  for (int i = 0; i < 8; ++i) raw[i] = static_cast<unsigned char>(sequence >> (8 * i));
  return crc32c(std::as_bytes(std::span(raw)));
}

using keel::detail::body_reader;
using keel::detail::body_writer;
using keel::detail::get_u32;
using keel::detail::get_u64;
using keel::detail::put_u32;
using keel::detail::put_u64;

/// Frames a record whose body the caller already wrote at out + 8: writes
/// the header, the padding and the trailer. out has record_size(body) bytes.
inline void seal_record(std::byte* out, record_type type, std::uint64_t body,
                        std::uint32_t seed) noexcept {
  put_u32(out, static_cast<std::uint32_t>(body));
  out[4] = static_cast<std::byte>(type);
  out[5] = out[6] = out[7] = std::byte{0};
  const std::uint64_t padded = align8(body);
  if (padded > body) std::memset(out + record_header_size + body, 0, padded - body);
  std::uint32_t crc = crc32c(std::span<const std::byte>(out, record_header_size), seed);
  crc = crc32c(std::span<const std::byte>(out + record_header_size, body), crc);
  std::byte* trailer = out + record_header_size + padded;
  put_u32(trailer, crc);
  put_u32(trailer + 4, record_end_marker);
}

/// What is found at an offset of a segment.
enum class frame_status {
  record,  ///< A valid record.
  end,     ///< Eight zero bytes: nothing was written here.
  torn,    ///< An unfinished record: its last byte was never written.
  damaged  ///< A finished record that fails its checks, or garbage.
};

struct frame {
  frame_status status = frame_status::end;
  record_type type{};
  std::span<const std::byte> body{};
  std::uint64_t size = 0;  ///< Bytes the record takes (valid records only).
  const char* problem = "";
};

/// Decodes the frame at `offset` of `data` (a segment's bytes).
inline frame read_frame(std::span<const std::byte> data, std::uint64_t offset,
                        std::uint32_t seed) noexcept {
  frame f;
  const std::uint64_t left = offset <= data.size() ? data.size() - offset : 0;
  if (left < record_header_size) {
    // The tail of a segment too short for a header: only zeros are fine.
    for (std::uint64_t i = 0; i < left; ++i) {
      if (data[offset + i] != std::byte{0}) {
        f.status = frame_status::torn;
        f.problem = "record header cut off by the end of the segment";
        return f;
      }
    }
    f.status = frame_status::end;
    return f;
  }
  const std::byte* p = data.data() + offset;
  const std::uint64_t head = get_u64(p);
  if (head == 0) {
    f.status = frame_status::end;
    return f;
  }
  const std::uint64_t body = get_u32(p);
  const std::uint64_t size = record_size(body);
  if (body > max_record_body || size > left) {
    // A length beyond the segment: a header torn mid-write (its length is
    // a prefix of the real one, the rest zeros) or damage.
    f.status = frame_status::torn;
    f.problem = "record extends past the end of the segment";
    return f;
  }
  if (p[size - 1] == std::byte{0}) {
    f.status = frame_status::torn;
    f.problem = "record was not completely written";
    return f;
  }
  f.status = frame_status::damaged;
  const auto type = static_cast<std::uint8_t>(p[4]);
  if (!valid_record_type(type) || p[5] != std::byte{0} || p[6] != std::byte{0} ||
      p[7] != std::byte{0}) {
    f.problem = "bad record header";
    return f;
  }
  const std::byte* trailer = p + record_header_size + align8(body);
  if (get_u32(trailer + 4) != record_end_marker) {
    f.problem = "bad record end marker";
    return f;
  }
  for (const std::byte* pad = p + record_header_size + body; pad < trailer; ++pad) {
    if (*pad != std::byte{0}) {
      f.problem = "bad record padding";
      return f;
    }
  }
  std::uint32_t crc = crc32c(std::span<const std::byte>(p, record_header_size), seed);
  crc = crc32c(std::span<const std::byte>(p + record_header_size, body), crc);
  if (crc != get_u32(trailer)) {
    f.problem = "record checksum mismatch";
    return f;
  }
  f.status = frame_status::record;
  f.type = static_cast<record_type>(type);
  f.body = std::span<const std::byte>(p + record_header_size, body);
  f.size = size;
  return f;
}

// --- bodies ------------------------------------------------------------------------

struct segment_header_body {
  std::uint64_t sequence = 0;
};
inline constexpr std::uint64_t segment_header_body_size = 24;

inline void write_body(std::byte* at, const segment_header_body& h) noexcept {
  body_writer w(at);
  w.u64(segment_magic);
  w.u32(format_version);
  w.u32(0);
  w.u64(h.sequence);
}
inline std::optional<segment_header_body> read_segment_header(std::span<const std::byte> b) {
  body_reader r(b);
  std::uint64_t magic = 0, sequence = 0;
  std::uint32_t version = 0, reserved = 0;
  if (!r.u64(magic) || !r.u32(version) || !r.u32(reserved) || !r.u64(sequence)) return {};
  if (magic != segment_magic || version != format_version || r.left() != 0) return {};
  return segment_header_body{sequence};
}

struct wal_metadata {
  std::uint64_t cluster_id = 0;
  std::uint64_t node_id = 0;
  friend bool operator==(const wal_metadata&, const wal_metadata&) = default;
};
inline constexpr std::uint64_t metadata_body_size = 16;
inline void write_body(std::byte* at, const wal_metadata& m) noexcept {
  body_writer w(at);
  w.u64(m.cluster_id);
  w.u64(m.node_id);
}
inline std::optional<wal_metadata> read_metadata(std::span<const std::byte> b) {
  body_reader r(b);
  wal_metadata m;
  if (!r.u64(m.cluster_id) || !r.u64(m.node_id) || r.left() != 0) return {};
  return m;
}

inline std::uint64_t entry_body_size(const raft::entry& e) noexcept { return 17 + e.data.size(); }
inline void write_body(std::byte* at, const raft::entry& e) noexcept {
  body_writer w(at);
  w.u64(e.index);
  w.u64(e.term);
  w.u8(static_cast<std::uint8_t>(e.type));
  w.raw(e.data.view());
}
/// An entry record's body without its payload: what recovery keeps of the
/// entries whose payload stays on disk.
inline std::optional<raft::entry> read_entry_header(std::span<const std::byte> b) {
  body_reader r(b);
  raft::entry e;
  std::uint8_t type = 0;
  if (!r.u64(e.index) || !r.u64(e.term) || !r.u8(type)) return {};
  if (type > static_cast<std::uint8_t>(raft::entry_type::conf_change)) return {};
  e.type = static_cast<raft::entry_type>(type);
  return e;
}

inline std::optional<raft::entry> read_entry(std::span<const std::byte> b) {
  auto e = read_entry_header(b);
  if (!e) return {};
  const auto data = b.subspan(17);
  e->data = keel::bytes(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  return e;
}

inline constexpr std::uint64_t hard_state_body_size = 24;
inline void write_body(std::byte* at, const raft::hard_state& hs) noexcept {
  body_writer w(at);
  w.u64(hs.term);
  w.u64(hs.vote);
  w.u64(hs.commit);
}
inline std::optional<raft::hard_state> read_hard_state(std::span<const std::byte> b) {
  body_reader r(b);
  raft::hard_state hs;
  if (!r.u64(hs.term) || !r.u64(hs.vote) || !r.u64(hs.commit) || r.left() != 0) return {};
  return hs;
}

/// A snapshot marker: the snapshot's metadata, its handle, and whether it
/// replaced the whole log (a snapshot a follower installed) or only records
/// that one was taken (the entries stay until compaction).
struct snapshot_marker {
  raft::snapshot snapshot{};
  bool replaces_log = false;
  friend bool operator==(const snapshot_marker&, const snapshot_marker&) = default;
};

namespace detail {
inline std::uint64_t ids_size(const std::vector<raft::node_id>& ids) noexcept {
  return 4 + 8 * ids.size();
}
inline void write_ids(body_writer& w, const std::vector<raft::node_id>& ids) noexcept {
  w.u32(static_cast<std::uint32_t>(ids.size()));
  for (const raft::node_id id : ids) w.u64(id);
}
inline bool read_ids(body_reader& r, std::vector<raft::node_id>& ids) {
  std::uint32_t n = 0;
  if (!r.u32(n) || r.left() / 8 < n) return false;
  ids.resize(n);
  for (auto& id : ids) r.u64(id);
  return true;
}
}  // namespace detail

inline std::uint64_t marker_body_size(const snapshot_marker& m) noexcept {
  const raft::conf_state& c = m.snapshot.metadata.conf;
  return 8 + 8 + 1 + 1 + detail::ids_size(c.voters) + detail::ids_size(c.voters_outgoing) +
         detail::ids_size(c.learners) + detail::ids_size(c.learners_next) + 4 +
         m.snapshot.data.size();
}
inline void write_body(std::byte* at, const snapshot_marker& m) noexcept {
  body_writer w(at);
  const raft::snapshot_metadata& md = m.snapshot.metadata;
  w.u64(md.index);
  w.u64(md.term);
  w.u8(m.replaces_log ? 1 : 0);
  w.u8(md.conf.auto_leave ? 1 : 0);
  detail::write_ids(w, md.conf.voters);
  detail::write_ids(w, md.conf.voters_outgoing);
  detail::write_ids(w, md.conf.learners);
  detail::write_ids(w, md.conf.learners_next);
  w.string(m.snapshot.data);
}
inline std::optional<snapshot_marker> read_snapshot_marker(std::span<const std::byte> b) {
  body_reader r(b);
  snapshot_marker m;
  raft::snapshot_metadata& md = m.snapshot.metadata;
  std::uint8_t replaces = 0, auto_leave = 0;
  if (!r.u64(md.index) || !r.u64(md.term) || !r.u8(replaces) || !r.u8(auto_leave)) return {};
  if (replaces > 1 || auto_leave > 1) return {};
  m.replaces_log = replaces == 1;
  md.conf.auto_leave = auto_leave == 1;
  if (!detail::read_ids(r, md.conf.voters) || !detail::read_ids(r, md.conf.voters_outgoing) ||
      !detail::read_ids(r, md.conf.learners) || !detail::read_ids(r, md.conf.learners_next) ||
      !r.string(m.snapshot.data) || r.left() != 0) {
    return {};
  }
  return m;
}

/// Entries up to `index` (of term `term`) were compacted away.
struct compaction_point {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  friend bool operator==(const compaction_point&, const compaction_point&) = default;
};
inline constexpr std::uint64_t compaction_body_size = 16;
inline void write_body(std::byte* at, const compaction_point& c) noexcept {
  body_writer w(at);
  w.u64(c.index);
  w.u64(c.term);
}
inline std::optional<compaction_point> read_compaction(std::span<const std::byte> b) {
  body_reader r(b);
  compaction_point c;
  if (!r.u64(c.index) || !r.u64(c.term) || r.left() != 0) return {};
  return c;
}

}  // namespace keel::wal
