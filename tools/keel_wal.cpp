// keel-wal: dumps and verifies a WAL directory, like etcd's dump-logs.
//
//   keel-wal DIR            every record of every segment: offset, type,
//                           the fields that matter (index, term, ...), size
//                           and checksum status; every snapshot file in DIR
//                           (index, term, sizes, checksum status); then the
//                           recovery verdict
//   keel-wal --verify DIR   only the verdicts: exit 0 if the WAL recovers
//                           and every snapshot file checks, 1 (naming the
//                           file and offset) otherwise
//
// It only reads: a torn tail is reported, not cut off.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "keel/wal/recovery.hpp"
#include "keel/wal/snapshot_file.hpp"

namespace {

using namespace keel::wal;

void print_record(std::uint64_t offset, const frame& f) {
  std::printf("  %10" PRIu64 "  %-16s %8" PRIu64 " B  crc ok", offset, to_string(f.type), f.size);
  switch (f.type) {
    case record_type::entry:
      if (auto e = read_entry(f.body)) {
        std::printf("  index %" PRIu64 " term %" PRIu64 " %s data %zu B", e->index, e->term,
                    e->type == keel::raft::entry_type::normal ? "normal" : "conf_change",
                    e->data.size());
      } else {
        std::printf("  (undecodable body)");
      }
      break;
    case record_type::hard_state:
      if (auto hs = read_hard_state(f.body)) {
        std::printf("  term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64, hs->term, hs->vote,
                    hs->commit);
      }
      break;
    case record_type::snapshot_marker:
      if (auto m = read_snapshot_marker(f.body)) {
        std::printf("  index %" PRIu64 " term %" PRIu64 " voters %zu handle \"%s\"%s",
                    m->snapshot.metadata.index, m->snapshot.metadata.term,
                    m->snapshot.metadata.conf.voters.size(), m->snapshot.data.c_str(),
                    m->replaces_log ? " (installed)" : "");
      }
      break;
    case record_type::compaction:
      if (auto c = read_compaction(f.body)) {
        std::printf("  index %" PRIu64 " term %" PRIu64, c->index, c->term);
      }
      break;
    case record_type::metadata:
      if (auto m = read_metadata(f.body)) {
        std::printf("  cluster %" PRIu64 " node %" PRIu64, m->cluster_id, m->node_id);
      }
      break;
    case record_type::segment_header:
      if (auto h = read_segment_header(f.body)) std::printf("  sequence %" PRIu64, h->sequence);
      break;
  }
  std::printf("\n");
}

int dump(posix_file_system& fs, const std::string& dir) {
  auto seqs = list_segments(fs, dir);
  if (!seqs) {
    std::fprintf(stderr, "keel-wal: %s: %s\n", dir.c_str(), seqs.error().message().c_str());
    return 2;
  }
  for (const std::uint64_t seq : *seqs) {
    const std::string path = dir + "/" + segment_name(seq);
    auto data = read_file(fs, path);
    if (!data) {
      std::fprintf(stderr, "keel-wal: %s: %s\n", path.c_str(), data.error().message().c_str());
      return 2;
    }
    std::printf("%s (%zu bytes)\n", path.c_str(), data->size());
    auto [stop, at] = scan_segment(*data, seq, print_record);
    switch (stop.status) {
      case frame_status::end:
        std::printf("  %10" PRIu64 "  end of records\n", at);
        break;
      case frame_status::torn:
        std::printf("  %10" PRIu64 "  TORN: %s\n", at, stop.problem);
        break;
      case frame_status::damaged:
        std::printf("  %10" PRIu64 "  DAMAGED: %s\n", at, stop.problem);
        break;
      case frame_status::record:
        break;
    }
  }
  return 0;
}

/// Prints and checks every snapshot file in dir; false if one is corrupt.
bool check_snapshots(posix_file_system& fs, const std::string& dir) {
  auto names = fs.list(dir);
  if (!names) return true;  // dump() already reported an unreadable directory.
  bool ok = true;
  for (const std::string& name : *names) {
    auto parsed = snapshot_name::parse(name);
    if (!parsed || parsed->kind != snapshot_file_kind::committed) continue;
    const std::string path = dir + "/" + name;
    auto reader = snapshot_reader<posix_file_system>::open(fs, path);
    if (!reader) {
      std::printf("%s: CORRUPT: %s\n", path.c_str(), reader.error().message().c_str());
      ok = false;
      continue;
    }
    const std::error_code ec = reader->verify();
    std::printf("%s: snapshot index %" PRIu64 " term %" PRIu64 " content %" PRIu64
                " B metadata %zu B crc %08x %s\n",
                path.c_str(), reader->index(), reader->term(), reader->size(),
                reader->metadata().size(), reader->crc(),
                ec ? ("BAD: " + ec.message()).c_str() : "ok");
    if (ec) ok = false;
  }
  return ok;
}

int verify(posix_file_system& fs, const std::string& dir, bool quiet) {
  recovery_report report;
  auto rec = recover(fs, dir, report);
  if (!rec) {
    if (rec.error() == keel::errc::corrupt_wal) {
      std::printf("%s\n", report.describe().c_str());
    } else {
      std::printf("keel-wal: %s: %s\n", dir.c_str(), rec.error().message().c_str());
    }
    return 1;
  }
  const log_state& s = rec->state;
  std::printf("%s%s: ok: %s; entries %" PRIu64 "..%" PRIu64 ", hard state term %" PRIu64
              " vote %" PRIu64 " commit %" PRIu64 ", snapshot at %" PRIu64 "\n",
              quiet ? "" : "\n", dir.c_str(), report.describe().c_str(), s.first_index(),
              s.last_index(), s.hard_state.term, s.hard_state.vote, s.hard_state.commit,
              s.snapshot.snapshot.metadata.index);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool only_verify = false;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--verify") {
      only_verify = true;
    } else if (arg == "-h" || arg == "--help") {
      std::printf("usage: keel-wal [--verify] DIR\n");
      return 0;
    } else if (!arg.starts_with("-") && dir.empty()) {
      dir = arg;
    } else {
      std::fprintf(stderr, "keel-wal: unexpected argument %s\nusage: keel-wal [--verify] DIR\n",
                   argv[i]);
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: keel-wal [--verify] DIR\n");
    return 2;
  }
  posix_file_system fs;
  if (!only_verify) {
    if (const int rc = dump(fs, dir); rc != 0) return rc;
  }
  const bool snapshots_ok = check_snapshots(fs, dir);
  const int rc = verify(fs, dir, only_verify);
  return rc != 0 ? rc : snapshots_ok ? 0 : 1;
}
