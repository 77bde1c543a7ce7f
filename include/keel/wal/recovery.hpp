// Reading a WAL directory back: every segment's records are checked and
// replayed, in sequence order, into the state Raft needs (log_state).
//
// What is accepted and what is refused:
//  - Segments must be numbered without gaps, and each must start with its
//    segment header. Trailing segments that are all zeros are spares the WAL
//    preallocated and never wrote; they are kept for reuse.
//  - In the last written segment, an unfinished record (torn: its last byte
//    never reached the disk) ends the log if no intact record follows it:
//    it was written after the last sync, so nothing acknowledged is lost.
//    Recovery reports it and the WAL zeroes it before appending again.
//  - Anything else is corruption: a damaged record (complete, but its
//    checksum or framing fails), a torn record followed by an intact one,
//    any bad record in an earlier segment, or an entry that leaves a gap.
//    Recovery refuses with errc::corrupt_wal; the report names the file and
//    offset.
//
// Thread safety: none needed; reads files only.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "keel/result.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/log_state.hpp"
#include "keel/wal/record.hpp"
#include "keel/wal/segment.hpp"

namespace keel::wal {

/// What recovery found, for logs, tools and errors.
struct recovery_report {
  std::size_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t record_bytes = 0;
  /// A torn tail that was cut off: where, and how many bytes it spanned.
  std::optional<std::string> torn_file{};
  std::uint64_t torn_offset = 0;
  std::uint64_t torn_bytes = 0;
  /// Where corruption was found (with errc::corrupt_wal).
  std::string corrupt_file{};
  std::uint64_t corrupt_offset = 0;
  std::string problem{};

  std::string describe() const {
    char buf[64];
    if (!corrupt_file.empty()) {
      std::snprintf(buf, sizeof buf, " at offset %" PRIu64, corrupt_offset);
      return "corrupt WAL: " + corrupt_file + buf + ": " + problem;
    }
    std::string out = std::to_string(segments) + " segments, " + std::to_string(records) +
                      " records, " + std::to_string(record_bytes) + " bytes";
    if (torn_file) {
      std::snprintf(buf, sizeof buf, " at offset %" PRIu64 " (%" PRIu64 " bytes)", torn_offset,
                    torn_bytes);
      out += "; torn tail cut off in " + *torn_file + buf;
    }
    return out;
  }
};

/// A segment as recovery left it.
struct segment_info {
  std::uint64_t sequence = 0;
  std::uint64_t size = 0;        ///< File size.
  std::uint64_t end = 0;         ///< Offset after its last intact record (0: a spare, or torn).
  std::uint64_t zero_until = 0;  ///< Torn bytes in [end, zero_until) to clear before writing.
  std::uint64_t last_entry = 0;  ///< Highest entry index it holds (0: none).
};

struct recovered_wal {
  log_state state{};
  std::vector<segment_info> segments{};  ///< By sequence; spares last.
};

/// Visits the records of a segment's bytes: visit(offset, frame) for each
/// intact record, in order; returns the first frame that is not a record
/// and its offset.
template <class Visit>
std::pair<frame, std::uint64_t> scan_segment(std::span<const std::byte> data,
                                             std::uint64_t sequence, Visit&& visit) {
  const std::uint32_t seed = segment_seed(sequence);
  std::uint64_t offset = 0;
  for (;;) {
    frame f = read_frame(data, offset, seed);
    if (f.status != frame_status::record) return {f, offset};
    visit(offset, f);
    offset += f.size;
  }
}

/// Whether an intact record starts anywhere after `offset` (8-aligned).
inline bool intact_record_after(std::span<const std::byte> data, std::uint64_t offset,
                                std::uint32_t seed) {
  for (std::uint64_t at = offset + 8; at + record_size(0) <= data.size(); at += 8) {
    if (read_frame(data, at, seed).status == frame_status::record) return true;
  }
  return false;
}

namespace detail {

/// Applies one record to the state; a problem string if its body is bad.
inline const char* replay(log_state& state, const frame& f, std::uint64_t offset,
                          segment_info& info, bool& seen_entry) {
  switch (f.type) {
    case record_type::segment_header:
      return "segment header in the middle of a segment";
    case record_type::metadata: {
      auto m = read_metadata(f.body);
      if (!m) return "bad metadata record";
      state.apply(*m);
      return nullptr;
    }
    case record_type::entry: {
      auto e = read_entry_header(f.body);
      if (!e) return "bad entry record";
      const record_location where{info.sequence, offset, f.size};
      if (!state.apply(*e, where, false)) {
        if (seen_entry) return "entry index leaves a gap in the log";
        state.restart_at(*e, where, false);
      }
      seen_entry = true;
      info.last_entry = std::max(info.last_entry, e->index);
      return nullptr;
    }
    case record_type::hard_state: {
      auto hs = read_hard_state(f.body);
      if (!hs) return "bad hard state record";
      state.apply(*hs);
      return nullptr;
    }
    case record_type::snapshot_marker: {
      auto m = read_snapshot_marker(f.body);
      if (!m) return "bad snapshot marker record";
      state.apply(*m);
      return nullptr;
    }
    case record_type::compaction: {
      auto c = read_compaction(f.body);
      if (!c) return "bad compaction record";
      state.apply(*c);
      return nullptr;
    }
  }
  return "unknown record type";
}

inline bool all_zero(std::span<const std::byte> data) noexcept {
  return std::all_of(data.begin(), data.end(), [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace detail

/// The sequence numbers of the segments in `dir`, ascending.
template <file_system FS>
result<std::vector<std::uint64_t>> list_segments(FS& fs, const std::string& dir) {
  auto names = fs.list(dir);
  if (!names) return names.error();
  std::vector<std::uint64_t> seqs;
  for (const std::string& name : *names) {
    if (auto seq = parse_segment_name(name)) seqs.push_back(*seq);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

/// Reads a whole file into `data` (reused across files: no fresh memory per segment).
template <file_system FS>
std::error_code read_file_into(FS& fs, const std::string& path, std::vector<std::byte>& data) {
  auto file = fs.open(path, open_mode::read_only);
  if (!file) return file.error();
  auto size = file->size();
  if (!size) return size.error();
  data.resize(*size);
  auto n = file->read(0, data);
  if (!n) return n.error();
  data.resize(*n);
  return {};
}

/// Reads a whole file.
template <file_system FS>
result<std::vector<std::byte>> read_file(FS& fs, const std::string& path) {
  std::vector<std::byte> data;
  if (auto ec = read_file_into(fs, path, data)) return ec;
  return data;
}

/// Reads the payloads of the newest entries, as many as `budget` bytes
/// hold, back into memory (replay kept none), a segment at a time.
template <file_system FS>
std::error_code load_payloads(FS& fs, const std::string& dir, log_state& state,
                              std::uint64_t budget, std::vector<std::byte>& buffer) {
  const std::uint64_t first = state.first_index();
  std::uint64_t from = state.last_index() + 1;
  std::uint64_t bytes = 0;
  while (from > first) {
    const record_location& at = state.slot(from - 1).location;
    const std::uint64_t payload = at.size > record_size(17) ? at.size - record_size(17) : 0;
    if (bytes + payload > budget) break;
    bytes += payload;
    --from;
  }
  std::uint64_t loaded_segment = 0;
  for (std::uint64_t i = from; i <= state.last_index(); ++i) {
    const record_location at = state.slot(i).location;
    if (loaded_segment != at.segment) {
      if (auto ec = read_file_into(fs, dir + "/" + segment_name(at.segment), buffer)) return ec;
      loaded_segment = at.segment;
    }
    const frame f = read_frame(buffer, at.offset, segment_seed(at.segment));
    auto e = f.status == frame_status::record ? read_entry(f.body) : std::nullopt;
    if (!e || e->index != i) return errc::corrupt_wal;
    state.cache(i, std::move(e->data));
  }
  return {};
}

template <file_system FS>
result<recovered_wal> recover(FS& fs, const std::string& dir, recovery_report& report,
                              std::uint64_t cache_bytes = UINT64_MAX) {
  auto seqs = list_segments(fs, dir);
  if (!seqs) return seqs.error();
  recovered_wal out;
  auto corrupt = [&](std::uint64_t seq, std::uint64_t offset, std::string problem) {
    report.corrupt_file = dir + "/" + segment_name(seq);
    report.corrupt_offset = offset;
    report.problem = std::move(problem);
    return make_error_code(errc::corrupt_wal);
  };
  for (std::size_t i = 1; i < seqs->size(); ++i) {
    if ((*seqs)[i] != (*seqs)[i - 1] + 1) {
      return corrupt((*seqs)[i - 1] + 1, 0,
                     "segment missing (numbers jump from " + segment_name((*seqs)[i - 1]) + " to " +
                         segment_name((*seqs)[i]) + ")");
    }
  }
  // One pass, one buffer. All-zero segments are spares, legal only after
  // the last written one; a torn stop is legal only in the last written one.
  std::vector<std::byte> data;
  std::vector<segment_info> written, spares;
  struct torn_stop {
    std::uint64_t sequence;
    std::uint64_t offset;
    std::string problem;
  };
  std::optional<torn_stop> torn;
  auto cut_torn = [&](segment_info& info, std::uint64_t at, std::string problem) {
    std::uint64_t until = data.size();
    while (until > at && data[until - 1] == std::byte{0}) --until;
    info.zero_until = until;
    report.torn_file = dir + "/" + segment_name(info.sequence);
    report.torn_offset = at;
    report.torn_bytes = until - at;
    torn = torn_stop{info.sequence, at, std::move(problem)};
  };
  bool seen_entry = false;
  for (const std::uint64_t seq : *seqs) {
    if (auto ec = read_file_into(fs, dir + "/" + segment_name(seq), data)) return ec;
    if (detail::all_zero(data)) {
      spares.push_back(segment_info{.sequence = seq, .size = data.size()});
      continue;
    }
    if (!spares.empty()) {
      return corrupt(spares.front().sequence, 0,
                     "segment has no segment header, and a later segment is written");
    }
    if (torn) {
      return corrupt(torn->sequence, torn->offset, torn->problem + " (not in the last segment)");
    }
    segment_info info{.sequence = seq, .size = data.size()};
    const char* problem = nullptr;
    std::uint64_t problem_at = 0;
    bool first = true;
    auto [stop, at] = scan_segment(data, seq, [&](std::uint64_t offset, const frame& f) {
      if (problem != nullptr) return;
      ++report.records;
      report.record_bytes += f.size;
      if (first) {
        first = false;
        auto h = f.type == record_type::segment_header ? read_segment_header(f.body)
                                                       : std::optional<segment_header_body>{};
        if (!h || h->sequence != seq) {
          problem = "segment does not start with its own segment header";
          problem_at = offset;
        }
        return;
      }
      if (const char* p = detail::replay(out.state, f, offset, info, seen_entry)) {
        problem = p;
        problem_at = offset;
      }
    });
    if (problem != nullptr) return corrupt(seq, problem_at, problem);
    const std::uint32_t seed = segment_seed(seq);
    if (first) {
      if (stop.status != frame_status::torn || intact_record_after(data, 0, seed)) {
        return corrupt(seq, 0, "segment has no segment header");
      }
      // A segment that was being started when the power went: its header
      // never became durable, so nothing in it was acknowledged.
      cut_torn(info, 0, "segment header was not completely written");
      written.push_back(info);
      continue;
    }
    info.end = at;
    if (stop.status != frame_status::end) {
      if (stop.status == frame_status::damaged) return corrupt(seq, at, stop.problem);
      if (intact_record_after(data, at, seed)) {
        return corrupt(seq, at, std::string(stop.problem) + ", and intact records follow it");
      }
      cut_torn(info, at, stop.problem);
    }
    written.push_back(info);
  }
  if (out.state.anchor_unknown) {
    return corrupt((*seqs)[0], 0,
                   "the oldest segment starts at entry " +
                       std::to_string(out.state.anchor.index + 1) +
                       " but no compaction point covers the entries before it");
  }
  if (auto ec = load_payloads(fs, dir, out.state, cache_bytes, data)) {
    return corrupt(out.state.first_index(), 0,
                   "an entry record changed while it was being recovered (" + ec.message() + ")");
  }
  report.segments = seqs->size();
  out.segments = std::move(written);
  out.segments.insert(out.segments.end(), spares.begin(), spares.end());
  return out;
}

}  // namespace keel::wal
