// keelctl wal dump / wal verify: a WAL directory record by record, and the
// recovery verdict the node itself would reach (like etcd's dump-logs).
//
//   dump    every record of every segment: offset, type, size, checksum
//           status and the fields that matter; entry payloads decoded one
//           level further (store actions: tables and change counts; conf
//           changes: which member); every committed snapshot file; then the
//           verdict
//   verify  only the verdicts: 0 when the WAL recovers and every snapshot
//           file checks, 1 (naming the file and offset) otherwise
//
// Both only read: a torn tail is reported, never cut off.
//
// Thread safety: each call uses only its arguments.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>

#include "keel/node/store_actions.hpp"
#include "keel/raft/conf_change.hpp"
#include "keel/wal/recovery.hpp"
#include "keel/wal/snapshot_file.hpp"
#include "keel/wal/snapshot_store.hpp"
#include "keelctl/data_dir.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/text.hpp"

namespace keelctl {

/// A conf change's kind in words.
inline const char* to_string(keel::raft::conf_change_type t) {
  switch (t) {
    case keel::raft::conf_change_type::add_node:
      return "add voter";
    case keel::raft::conf_change_type::remove_node:
      return "remove";
    case keel::raft::conf_change_type::add_learner:
      return "add learner";
  }
  return "?";
}

/// What an entry's payload holds, in a few words: "leader no-op",
/// "actions 3: task +2 ~1; service -1", "conf change: add learner 4".
inline std::string describe_payload(keel::raft::entry_type type, std::string_view data) {
  if (type == keel::raft::entry_type::conf_change) {
    auto cc = keel::raft::decode_conf_change(data);
    if (!cc) return "conf change (undecodable)";
    std::string out = "conf change:";
    for (const auto& c : cc->changes) out += strf(" %s %" PRIu64, to_string(c.type), c.node);
    return out;
  }
  if (data.empty()) return "leader no-op";
  auto decoded = keel::node::decode_actions(data);
  if (!decoded) return "store actions (undecodable)";
  struct counts {
    int created = 0, updated = 0, removed = 0;
  };
  std::map<std::string, counts, std::less<>> tables;
  for (const auto& a : decoded->actions) {
    counts& c = tables[std::string(a.table)];
    if (a.kind == keel::node::action_kind::create) ++c.created;
    if (a.kind == keel::node::action_kind::update) ++c.updated;
    if (a.kind == keel::node::action_kind::remove) ++c.removed;
  }
  std::string out =
      strf("actions %zu at version %" PRIu64 ":", decoded->actions.size(), decoded->version);
  const char* sep = " ";
  for (const auto& [name, c] : tables) {
    out += sep + name;
    if (c.created) out += strf(" +%d", c.created);
    if (c.updated) out += strf(" ~%d", c.updated);
    if (c.removed) out += strf(" -%d", c.removed);
    sep = "; ";
  }
  return out;
}

/// One record's line.
inline std::string describe_record(std::uint64_t offset, const keel::wal::frame& f) {
  using keel::wal::record_type;
  std::string out =
      strf("  %10" PRIu64 "  %-16s %8" PRIu64 " B  crc ok", offset, to_string(f.type), f.size);
  switch (f.type) {
    case record_type::entry:
      if (auto e = keel::wal::read_entry(f.body)) {
        out += strf("  index %" PRIu64 " term %" PRIu64 " %s data %zu B: ", e->index, e->term,
                    e->type == keel::raft::entry_type::normal ? "normal" : "conf_change",
                    e->data.size());
        out += describe_payload(e->type, e->data.view());
      } else {
        out += "  (undecodable body)";
      }
      break;
    case record_type::hard_state:
      if (auto hs = keel::wal::read_hard_state(f.body)) {
        out += strf("  term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64, hs->term, hs->vote,
                    hs->commit);
      }
      break;
    case record_type::snapshot_marker:
      if (auto m = keel::wal::read_snapshot_marker(f.body)) {
        out +=
            strf("  index %" PRIu64 " term %" PRIu64 " voters %zu learners %zu handle %s%s",
                 m->snapshot.metadata.index, m->snapshot.metadata.term,
                 m->snapshot.metadata.conf.voters.size(), m->snapshot.metadata.conf.learners.size(),
                 json_string(m->snapshot.data).c_str(), m->replaces_log ? " (installed)" : "");
      }
      break;
    case record_type::compaction:
      if (auto c = keel::wal::read_compaction(f.body)) {
        out += strf("  index %" PRIu64 " term %" PRIu64, c->index, c->term);
      }
      break;
    case record_type::metadata:
      if (auto m = keel::wal::read_metadata(f.body)) {
        out += strf("  cluster %" PRIu64 " node %" PRIu64, m->cluster_id, m->node_id);
      }
      break;
    case record_type::segment_header:
      if (auto h = keel::wal::read_segment_header(f.body)) {
        out += strf("  sequence %" PRIu64, h->sequence);
      }
      break;
  }
  return out;
}

/// Prints every record of every segment in `wal_dir`; 1 if a segment
/// cannot be listed or read.
inline int dump_segments(const std::string& wal_dir, std::ostream& out, std::ostream& err,
                         progress_mode mode) {
  keel::wal::posix_file_system fs;
  auto seqs = keel::wal::list_segments(fs, wal_dir);
  if (!seqs) {
    err << "keelctl: " << wal_dir << ": " << seqs.error().message() << "\n";
    return 1;
  }
  std::uint64_t total = 0;
  for (const std::uint64_t seq : *seqs) {
    std::error_code ec;
    total += std::filesystem::file_size(wal_dir + "/" + keel::wal::segment_name(seq), ec);
  }
  progress bar(err, mode, "wal dump", total);
  std::uint64_t scanned = 0;
  for (const std::uint64_t seq : *seqs) {
    const std::string path = wal_dir + "/" + keel::wal::segment_name(seq);
    auto data = keel::wal::read_file(fs, path);
    if (!data) {
      err << "keelctl: " << path << ": " << data.error().message() << "\n";
      return 1;
    }
    out << strf("%s (%zu bytes)\n", path.c_str(), data->size());
    auto [stop, at] =
        keel::wal::scan_segment(*data, seq, [&](std::uint64_t offset, const keel::wal::frame& f) {
          out << describe_record(offset, f) << "\n";
          bar.update(scanned + offset + f.size);
        });
    switch (stop.status) {
      case keel::wal::frame_status::end:
        out << strf("  %10" PRIu64 "  end of records\n", at);
        break;
      case keel::wal::frame_status::torn:
        out << strf("  %10" PRIu64 "  TORN: %s\n", at, stop.problem);
        break;
      case keel::wal::frame_status::damaged:
        out << strf("  %10" PRIu64 "  DAMAGED: %s\n", at, stop.problem);
        break;
      case keel::wal::frame_status::record:
        break;
    }
    scanned += data->size();
    bar.update(scanned);
  }
  bar.finish();
  return 0;
}

/// Prints and checks every committed snapshot file in `snap_dir`; false if
/// one is corrupt.
inline bool check_snapshot_files(const std::string& snap_dir, std::ostream& out, progress_mode mode,
                                 std::ostream& err) {
  keel::wal::posix_file_system fs;
  auto names = fs.list(snap_dir);
  if (!names) return true;  // No snapshot directory: nothing to check.
  bool ok = true;
  for (const std::string& name : *names) {
    auto parsed = keel::wal::snapshot_name::parse(name);
    if (!parsed || parsed->kind != keel::wal::snapshot_file_kind::committed) continue;
    const std::string path = snap_dir + "/" + name;
    auto reader = keel::wal::snapshot_reader<keel::wal::posix_file_system>::open(fs, path);
    if (!reader) {
      out << path << ": CORRUPT: " << reader.error().message() << "\n";
      ok = false;
      continue;
    }
    std::error_code ec;
    {
      progress bar(err, mode, "snapshot crc", reader->size());
      ec = reader->verify();
    }
    out << strf("%s: snapshot index %" PRIu64 " term %" PRIu64 " content %" PRIu64
                " B metadata %zu B crc %08x %s\n",
                path.c_str(), reader->index(), reader->term(), reader->size(),
                reader->metadata().size(), reader->crc(),
                ec ? ("BAD: " + ec.message()).c_str() : "ok");
    if (ec) ok = false;
  }
  return ok;
}

/// The recovery verdict for `wal_dir`: 0 if it recovers (and the snapshot
/// file its snapshot marker names, if any, is in `snap_dir` and checks), 1
/// otherwise. A directory without segments is no WAL: 1.
inline int recovery_verdict(const std::string& wal_dir, const std::string& snap_dir,
                            std::ostream& out, std::ostream& err) {
  keel::wal::posix_file_system fs;
  if (!is_directory(wal_dir)) {
    err << "keelctl: " << wal_dir << ": no such directory\n";
    return 1;
  }
  if (std::string problem = missing_segments(wal_dir); !problem.empty()) {
    err << "keelctl: " << problem << "\n";
    return 1;
  }
  keel::wal::recovery_report report;
  auto rec = keel::wal::recover(fs, wal_dir, report, 0);
  if (!rec) {
    if (rec.error() == keel::errc::corrupt_wal) {
      out << report.describe() << "\n";
    } else {
      err << "keelctl: " << wal_dir << ": " << rec.error().message() << "\n";
    }
    return 1;
  }
  const keel::wal::log_state& s = rec->state;
  const auto& snap = s.snapshot.snapshot;
  if (snap.data == snapshot_in_file) {
    // The snapshot the node would restore from: recovery needs its file.
    keel::wal::snapshot_store<keel::wal::posix_file_system> files(fs, snap_dir);
    const std::string path = files.path_of(snap.metadata.index, snap.metadata.term);
    auto reader = files.open(snap.metadata.index, snap.metadata.term);
    std::error_code ec = reader ? reader->verify() : reader.error();
    if (ec) {
      out << strf("%s: FAILED: the WAL starts from snapshot %" PRIu64 " term %" PRIu64
                  ", whose file %s %s: %s\n",
                  wal_dir.c_str(), snap.metadata.index, snap.metadata.term, path.c_str(),
                  reader ? "is damaged" : "cannot be read", ec.message().c_str());
      return 1;
    }
  }
  out << strf("%s: ok: %s; entries %" PRIu64 "..%" PRIu64 ", hard state term %" PRIu64
              " vote %" PRIu64 " commit %" PRIu64 ", snapshot at %" PRIu64 "\n",
              wal_dir.c_str(), report.describe().c_str(), s.first_index(), s.last_index(),
              s.hard_state.term, s.hard_state.vote, s.hard_state.commit,
              s.snapshot.snapshot.metadata.index);
  return 0;
}

/// keelctl wal dump DIR.
inline int wal_dump(const std::string& dir, std::ostream& out, std::ostream& err,
                    progress_mode mode = progress_mode::off) {
  const data_dirs dirs = locate(dir);
  if (!is_directory(dirs.wal)) {
    err << "keelctl: " << dirs.wal << ": no such directory\n";
    return 1;
  }
  if (const int rc = dump_segments(dirs.wal, out, err, mode); rc != 0) return rc;
  const bool snapshots_ok = check_snapshot_files(dirs.snap, out, mode, err);
  out << "\n";
  const int rc = recovery_verdict(dirs.wal, dirs.snap, out, err);
  return rc != 0 ? rc : snapshots_ok ? 0 : 1;
}

/// keelctl wal verify DIR.
inline int wal_verify(const std::string& dir, std::ostream& out, std::ostream& err,
                      progress_mode mode = progress_mode::off) {
  const data_dirs dirs = locate(dir);
  if (!is_directory(dirs.wal)) {
    err << "keelctl: " << dirs.wal << ": no such directory\n";
    return 1;
  }
  const bool snapshots_ok = check_snapshot_files(dirs.snap, out, mode, err);
  const int rc = recovery_verdict(dirs.wal, dirs.snap, out, err);
  return rc != 0 ? rc : snapshots_ok ? 0 : 1;
}

}  // namespace keelctl
