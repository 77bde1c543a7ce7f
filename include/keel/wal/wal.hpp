// The write-ahead log: the default log storage policy of the Raft core.
//
// A directory of fixed-size, preallocated segments ("%016x.wal") holding
// checksummed records (record.hpp): entries, hard states, snapshot markers,
// compaction points, metadata. The node layer persists each ready with
// append(entries, hard_state) and then sync(): many appends, one sync
// (group commit). Raft reads the log back through the log_storage
// functions, from memory (log_state): the entries after the last
// compaction stay in memory, as etcd's MemoryStorage keeps them.
//
// Every segment starts with the state as of its creation (metadata,
// compaction point, snapshot marker, hard state), so a segment whose
// entries are all compacted can be removed without losing any of it.
// Overwriting a conflicting suffix appends the new entries; replay drops
// the old ones (log_state::apply), so nothing written is ever rewritten.
//
// Failures: a failed write or sync stops the WAL for good (fail-stop:
// errc::wal_failed from then on; the first call returns the system error);
// running out of space while reserving a segment returns errc::no_space,
// acknowledges nothing and takes back what the append wrote.
//
// Thread safety: none; one thread (the node's) uses a WAL.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/raft/storage.hpp"
#include "keel/raft/types.hpp"
#include "keel/result.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/log_state.hpp"
#include "keel/wal/record.hpp"
#include "keel/wal/recovery.hpp"
#include "keel/wal/segment.hpp"

namespace keel::wal {

struct options {
  /// Bytes per segment file (a record larger than that gets a segment of
  /// its own size).
  std::uint64_t segment_size = std::uint64_t{64} << 20;
  write_mode mode = write_mode::mmap;
  /// The next segment is preallocated once the current one is this full.
  unsigned preallocate_at_percent = 50;
  /// Payload bytes of the newest entries kept in memory; older entries are
  /// read back from their segments when Raft asks for them.
  std::uint64_t cache_bytes = std::uint64_t{64} << 20;
  /// pwrite path: buffered bytes pushed to the file before a sync.
  std::uint64_t flush_bytes = std::uint64_t{4} << 20;
};

/// Counters for status pages and benchmarks.
struct wal_stats {
  std::uint64_t appends = 0;
  std::uint64_t syncs = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t segments_created = 0;
  std::uint64_t segments_removed = 0;
};

template <file_system FS = posix_file_system>
class wal {
 public:
  /// Opens the WAL in `dir` (created if missing), recovering what is there.
  /// On errc::corrupt_wal the report says where.
  static result<wal> open(FS fs, std::string dir, options opts = {},
                          recovery_report* report = nullptr) {
    recovery_report local;
    recovery_report& rep = report != nullptr ? *report : local;
    if (opts.segment_size < 4096) return errc::invalid_argument;
    if (auto ec = make_durable_directory(fs, dir)) return ec;
    auto rec = recover(fs, dir, rep, opts.cache_bytes);
    if (!rec) return rec.error();
    wal w(std::move(fs), std::move(dir), opts);
    w.state_ = std::move(rec->state);
    if (auto ec = w.start(std::move(rec->segments))) return ec;
    return w;
  }

  wal(wal&&) noexcept = default;
  wal& operator=(wal&&) noexcept = default;

  // --- raft::log_storage ------------------------------------------------------------

  raft::initial_state initial_state() const {
    return {state_.hard_state, state_.snapshot.snapshot.metadata.conf};
  }

  result<std::vector<raft::entry>> entries(std::uint64_t lo, std::uint64_t hi,
                                           std::uint64_t max_bytes) const {
    if (lo <= state_.anchor.index) return errc::compacted;
    if (hi > last_index() + 1 || lo > hi) return errc::unavailable;
    std::vector<raft::entry> out;
    out.reserve(std::min<std::uint64_t>(hi - lo, 1024));
    std::uint64_t bytes = 0;
    record_reader reader{*this};
    for (std::uint64_t i = lo; i < hi; ++i) {
      const entry_slot& s = state_.slot(i);
      bytes += s.cached ? s.data.size() : s.location.size;
      if (!out.empty() && bytes > max_bytes) break;
      if (s.cached) {
        out.push_back(state_.entry(i));
      } else {
        auto e = reader.read(i, s);
        if (!e) return e.error();
        out.push_back(std::move(*e));
      }
    }
    return out;
  }

  result<std::uint64_t> term(std::uint64_t i) const {
    if (i < state_.anchor.index) return errc::compacted;
    auto t = state_.term(i);
    if (!t) return errc::unavailable;
    return *t;
  }

  std::uint64_t first_index() const { return state_.first_index(); }
  std::uint64_t last_index() const { return state_.last_index(); }
  result<raft::snapshot> snapshot() const { return state_.snapshot.snapshot; }

  // --- writing ------------------------------------------------------------------------

  /// Appends entries (a suffix that conflicts is replaced) and, if it is
  /// not empty and differs from the last one, the hard state. Durable after
  /// sync(). Entries below the first index are ignored; an entry past
  /// last_index() + 1 is errc::index_out_of_range.
  std::error_code append(std::span<const raft::entry> ents, const raft::hard_state& hs = {}) {
    if (failed_) return errc::wal_failed;
    auto first = ents.begin();
    while (first != ents.end() && first->index <= state_.anchor.index) ++first;
    if (first != ents.end()) {
      if (first->index > last_index() + 1) return errc::index_out_of_range;
      for (auto it = first + 1; it != ents.end(); ++it) {
        if (it->index != (it - 1)->index + 1) return errc::invalid_argument;
      }
    }
    const bool write_hs = !hs.empty() && hs != state_.hard_state;
    const std::uint64_t start_seq = current_->sequence();
    const std::uint64_t start_offset = current_->offset();
    locations_.clear();
    for (auto it = first; it != ents.end(); ++it) {
      if (auto ec = write(record_type::entry, entry_body_size(*it), *it)) {
        return undo(ec, start_seq, start_offset);
      }
      locations_.push_back(last_record_);
    }
    if (write_hs) {
      if (auto ec = write(record_type::hard_state, hard_state_body_size, hs)) {
        return undo(ec, start_seq, start_offset);
      }
    }
    for (auto it = first; it != ents.end(); ++it) {
      state_.apply(*it, locations_[static_cast<std::size_t>(it - first)]);
    }
    if (write_hs) state_.apply(hs);
    ++stats_.appends;
    if (current_->buffered() >= opts_.flush_bytes) {
      if (auto ec = current_->flush()) return fail(ec);
    }
    return {};
  }

  /// Makes everything appended so far durable.
  std::error_code sync() {
    if (failed_) return errc::wal_failed;
    if (current_->dirty()) {
      if (auto ec = current_->sync()) return fail(ec);
      ++stats_.syncs;
    }
    // Everything is on disk now: the oldest payloads can be read back from there.
    state_.evict(opts_.cache_bytes);
    return preallocate_if_due();
  }

  /// Records the cluster and node id (in this segment and every later one).
  std::error_code set_metadata(const wal_metadata& m) {
    if (failed_) return errc::wal_failed;
    return write_and_apply(record_type::metadata, metadata_body_size, m);
  }
  std::optional<wal_metadata> metadata() const { return state_.metadata; }

  /// Replaces the whole log by a snapshot a follower received. Durable
  /// after sync().
  std::error_code apply_snapshot(raft::snapshot snap) {
    if (failed_) return errc::wal_failed;
    if (snap.metadata.index <= state_.snapshot.snapshot.metadata.index) {
      return errc::snapshot_out_of_date;
    }
    const snapshot_marker m{.snapshot = std::move(snap), .replaces_log = true};
    return write_and_apply(record_type::snapshot_marker, marker_body_size(m), m);
  }

  /// Records a snapshot the application took at index i (<= last applied),
  /// with configuration cs and handle `data` (e.g. the snapshot file's
  /// name). Entries stay until compact(). Durable after sync().
  result<raft::snapshot> create_snapshot(std::uint64_t i, const raft::conf_state& cs,
                                         std::string data) {
    if (failed_) return errc::wal_failed;
    if (i <= state_.snapshot.snapshot.metadata.index) return errc::snapshot_out_of_date;
    auto t = state_.term(i);
    if (i < state_.anchor.index) return errc::compacted;
    if (!t) return errc::index_out_of_range;
    const snapshot_marker m{
        .snapshot = {.metadata = {.index = i, .term = *t, .conf = cs}, .data = std::move(data)}};
    if (auto ec = write_and_apply(record_type::snapshot_marker, marker_body_size(m), m)) return ec;
    return state_.snapshot.snapshot;
  }

  /// Discards the entries up to compact_index (it becomes the anchor),
  /// syncs, and removes the segments that hold nothing newer.
  std::error_code compact(std::uint64_t compact_index) {
    if (failed_) return errc::wal_failed;
    if (compact_index <= state_.anchor.index) return errc::compacted;
    if (compact_index > last_index()) return errc::index_out_of_range;
    const compaction_point c{compact_index, *state_.term(compact_index)};
    if (auto ec = write_and_apply(record_type::compaction, compaction_body_size, c)) return ec;
    if (auto ec = sync()) return ec;
    return release();
  }

  const raft::hard_state& hard_state() const noexcept { return state_.hard_state; }
  /// The error that stopped the WAL, if one did.
  std::error_code failure() const noexcept { return failed_; }
  const wal_stats& stats() const noexcept { return stats_; }
  const std::string& directory() const noexcept { return dir_; }
  /// Sequence numbers of the segment files, spares included.
  std::vector<std::uint64_t> segment_sequences() const {
    std::vector<std::uint64_t> out;
    for (const auto& s : segments_) out.push_back(s.sequence);
    if (spare_) out.push_back(*spare_);
    return out;
  }

 private:
  wal(FS fs, std::string dir, options opts)
      : fs_(std::move(fs)), dir_(std::move(dir)), opts_(opts) {}

  /// Reads evicted entries back from their segments, keeping the last file
  /// open for the next entry (entries() asks for runs of them).
  class record_reader {
   public:
    explicit record_reader(const wal& w) : wal_(w) {}

    result<raft::entry> read(std::uint64_t index, const entry_slot& s) {
      if (!file_ || sequence_ != s.location.segment) {
        auto f = wal_.fs_.open(wal_.path(s.location.segment), open_mode::read_only);
        if (!f) return f.error();
        file_.emplace(std::move(*f));
        sequence_ = s.location.segment;
      }
      buffer_.resize(s.location.size);
      auto n = file_->read(s.location.offset, buffer_);
      if (!n) return n.error();
      const frame f =
          read_frame(std::span<const std::byte>(buffer_.data(), *n), 0, segment_seed(sequence_));
      std::optional<raft::entry> e;
      if (f.status == frame_status::record && f.type == record_type::entry) e = read_entry(f.body);
      if (!e || e->index != index || e->term != s.term) {
        // The record was intact at recovery or when written: the disk changed under us.
        return errc::corrupt_wal;
      }
      return std::move(*e);
    }

   private:
    const wal& wal_;
    std::optional<typename FS::file_type> file_;
    std::uint64_t sequence_ = 0;
    std::vector<std::byte> buffer_;
  };

  /// Creates dir if needed; its entry in the parent is durable afterwards.
  static std::error_code make_durable_directory(FS& fs, const std::string& dir) {
    if (auto ec = fs.make_directory(dir)) return ec;
    const auto slash = dir.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "."
                               : slash == 0               ? "/"
                                                          : dir.substr(0, slash);
    return fs.sync_directory(parent);
  }

  std::string path(std::uint64_t seq) const { return dir_ + "/" + segment_name(seq); }

  /// Opens the last written segment for appending (or starts the first).
  std::error_code start(std::vector<segment_info> found) {
    std::vector<segment_info> written;
    for (const segment_info& s : found) {
      if (s.end == 0 && s.zero_until > 0) {
        // Torn while being started: remove it; it is made again when needed.
        if (auto ec = fs_.remove(path(s.sequence))) return ec;
        if (auto ec = fs_.sync_directory(dir_)) return ec;
      } else if (s.end > 0) {
        written.push_back(s);
      } else if (!spare_ && (written.empty() || s.sequence == written.back().sequence + 1)) {
        spare_ = s.sequence;
      } else {
        // More than one spare: only one is ever made; drop the others.
        if (auto ec = fs_.remove(path(s.sequence))) return ec;
      }
    }
    if (written.empty()) {
      segments_.clear();
      if (spare_) {
        const std::uint64_t seq = *spare_;
        spare_.reset();
        if (auto ec = fs_.remove(path(seq))) return ec;
      }
      return open_new_segment(1, record_size(0));
    }
    segments_ = std::move(written);
    segment_info& last = segments_.back();
    auto file = fs_.open(path(last.sequence), open_mode::read_write);
    if (!file) return file.error();
    auto w =
        segment_writer<FS>::open(std::move(*file), last.sequence,
                                 std::max(last.size, opts_.segment_size), last.end, opts_.mode);
    if (!w) return w.error();
    current_.emplace(std::move(*w));
    if (last.zero_until > last.end) {
      // Clear the torn tail so that new records are not followed by old bytes.
      if (auto ec = current_->clear(last.end, last.zero_until)) return ec;
      last.zero_until = 0;
    }
    return {};
  }

  /// Creates (or takes the spare as) segment `seq`, large enough for a
  /// record of `need` bytes after the state records. Nothing changes on
  /// failure.
  result<segment_writer<FS>> prepare_segment(std::uint64_t seq, std::uint64_t need) {
    const std::uint64_t capacity = std::max(opts_.segment_size, align8(need + state_size() + 4096));
    const bool reuse = spare_ && *spare_ == seq;
    auto file = fs_.open(path(seq), reuse ? open_mode::read_write : open_mode::create);
    if (!file) return space_error(file.error());
    auto w = segment_writer<FS>::open(std::move(*file), seq, capacity, 0, opts_.mode);
    if (!w) {
      if (!reuse) (void)fs_.remove(path(seq));
      return w.error();
    }
    return w;
  }

  /// Makes `w` the current segment and writes the state records into it;
  /// durable, directory entry included, when this returns.
  std::error_code begin_segment(segment_writer<FS> w) {
    const std::uint64_t seq = w.sequence();
    const bool created = !(spare_ && *spare_ == seq);
    if (!created) spare_.reset();
    current_.emplace(std::move(w));
    segments_.push_back(segment_info{.sequence = seq, .size = current_->capacity()});
    ++stats_.segments_created;
    write_raw(record_type::segment_header, segment_header_body_size, segment_header_body{seq});
    if (state_.metadata) write_raw(record_type::metadata, metadata_body_size, *state_.metadata);
    if (state_.anchor.index > 0) {
      write_raw(record_type::compaction, compaction_body_size, state_.anchor);
    }
    if (!state_.snapshot.snapshot.empty()) {
      write_raw(record_type::snapshot_marker, marker_body_size(state_.snapshot), state_.snapshot);
    }
    if (!state_.hard_state.empty()) {
      write_raw(record_type::hard_state, hard_state_body_size, state_.hard_state);
    }
    // A segment is absent, all zeros (a spare), or starts with its header.
    if (auto ec = current_->sync()) return fail(ec);
    if (created) {
      if (auto ec = fs_.sync_directory(dir_)) return fail(ec);
    }
    return {};
  }

  std::error_code open_new_segment(std::uint64_t seq, std::uint64_t need) {
    auto w = prepare_segment(seq, need);
    if (!w) return w.error();
    return begin_segment(std::move(*w));
  }

  std::uint64_t state_size() const {
    return record_size(segment_header_body_size) + record_size(metadata_body_size) +
           record_size(compaction_body_size) + record_size(marker_body_size(state_.snapshot)) +
           record_size(hard_state_body_size);
  }

  /// Builds a record in the current segment. Requires: room for it.
  template <class Body>
  void write_raw(record_type type, std::uint64_t body_size, const Body& body) {
    const std::uint64_t size = record_size(body_size);
    last_record_ = {current_->sequence(), current_->offset(), size};
    std::byte* p = current_->reserve(size);
    write_body(p + record_header_size, body);
    seal_record(p, type, body_size, segment_seed(current_->sequence()));
    current_->commit(size);
    if constexpr (std::is_same_v<Body, raft::entry>) {
      // Per segment, even when one append spans several: release() relies on it.
      segments_.back().last_entry = std::max(segments_.back().last_entry, body.index);
    }
    ++stats_.records;
    stats_.bytes += size;
  }

  /// Builds a record, moving to a new segment first if it does not fit.
  template <class Body>
  std::error_code write(record_type type, std::uint64_t body_size, const Body& body) {
    if (body_size > max_record_body) return errc::invalid_argument;
    const std::uint64_t size = record_size(body_size);
    if (size > current_->room()) {
      if (auto ec = roll(size)) return ec;
    }
    write_raw(type, body_size, body);
    return {};
  }

  template <class Body>
  std::error_code write_and_apply(record_type type, std::uint64_t body_size, const Body& body) {
    const std::uint64_t start_seq = current_->sequence();
    const std::uint64_t start_offset = current_->offset();
    if (auto ec = write(type, body_size, body)) return undo(ec, start_seq, start_offset);
    state_.apply(body);
    return {};
  }

  /// Closes the current segment (durable first: only the last segment may
  /// end torn) and continues in the next, which is ready before anything
  /// is synced, so running out of space changes nothing.
  std::error_code roll(std::uint64_t need) {
    auto next = prepare_segment(current_->sequence() + 1, need);
    if (!next) return next.error();
    if (auto ec = current_->sync()) return fail(ec);
    ++stats_.syncs;
    return begin_segment(std::move(*next));
  }

  /// Takes back a failed append's records; a failure that cannot be taken
  /// back (after a segment change, or a write error) stops the WAL.
  std::error_code undo(std::error_code ec, std::uint64_t seq, std::uint64_t offset) {
    if ((ec == errc::no_space || ec == errc::invalid_argument) && current_->sequence() == seq) {
      if (auto e = current_->rollback(offset)) return fail(e);
      return ec;
    }
    return fail(ec);
  }

  std::error_code fail(std::error_code ec) {
    if (!failed_) failed_ = ec;
    return ec;
  }

  /// Prepares the next segment once the current one is filling up.
  std::error_code preallocate_if_due() {
    if (spare_ || current_->offset() * 100 < current_->capacity() * opts_.preallocate_at_percent) {
      return {};
    }
    const std::uint64_t seq = current_->sequence() + 1;
    auto file = fs_.open(path(seq), open_mode::create);
    if (!file) return {};  // Not fatal now; the roll will try again and report.
    if (auto ec = file->allocate(0, opts_.segment_size); ec || file->sync()) {
      (void)fs_.remove(path(seq));
      return {};
    }
    if (fs_.sync_directory(dir_)) return {};
    spare_ = seq;
    return {};
  }

  /// Removes the segments, before the current one, that hold no entry
  /// after the anchor.
  std::error_code release() {
    std::size_t n = 0;
    while (n + 1 < segments_.size() && segments_[n].last_entry <= state_.anchor.index) ++n;
    if (n == 0) return {};
    for (std::size_t i = 0; i < n; ++i) {
      if (auto ec = fs_.remove(path(segments_[i].sequence))) return ec;
      ++stats_.segments_removed;
    }
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(n));
    return fs_.sync_directory(dir_);
  }

  mutable FS fs_;  ///< Mutable: entries() reads evicted records through it.
  std::string dir_;
  options opts_;
  log_state state_;
  std::vector<segment_info> segments_;
  std::optional<segment_writer<FS>> current_;
  std::optional<std::uint64_t> spare_;
  record_location last_record_{};           ///< Where write_raw put the last record.
  std::vector<record_location> locations_;  ///< Scratch of append().
  std::error_code failed_;
  wal_stats stats_;
};

static_assert(raft::log_storage<wal<>>);

}  // namespace keel::wal
