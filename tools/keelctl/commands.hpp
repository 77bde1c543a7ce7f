// keelctl's command line: the subcommands and their flags, dispatched to
// the headers that implement them. run() is main() without the process, so
// tests call it with their own streams: it never looks at the process's own
// stderr (main says whether that is a terminal).
//
// Exit status: 0 success; 1 a failed check, bad input or a failed call;
// 2 a usage error.
//
// Thread safety: run() uses only its arguments.
#pragma once

#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "keelctl/admin_commands.hpp"
#include "keelctl/args.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/snapshot_commands.hpp"
#include "keelctl/store_dump.hpp"
#include "keelctl/wal_commands.hpp"

namespace keelctl {

inline constexpr const char* usage_text =
    R"(usage: keelctl COMMAND [ARGS] [FLAGS]

Offline, on a stopped node's data directory (DIR holds wal/ and snap/; a WAL
directory works too):
  wal dump DIR              every WAL record, entry payloads decoded, the
                            snapshot files, then the recovery verdict
  wal verify DIR            only the verdicts: exit 0 if the WAL recovers and
                            every snapshot file checks, else 1
  snapshot inspect FILE|DIR a snapshot file's header, CRC check, members and
                            the tables of the store inside
  store dump DIR            every object of the store as JSON lines
      --descriptor-set FILE   the objects' types (protoc --include_imports
                              --descriptor_set_out=FILE)
      --type TABLE=NAME       a table's message type (repeatable)
      --table NAME            only this table (repeatable)
      --array                 one JSON array instead of lines

Online, against a running node's admin service:
  status                    members, leader, term, commit/applied, peers
  member add ID ADDRESS     add a member as a learner (promoted once caught up)
  member remove ID          remove a member
  metrics                   the node's metrics text
      --endpoint HOST:PORT    the node's admin address (required)
      --cacert FILE --cert FILE --key FILE   mutual TLS (PEM)
      --server-name NAME      identity the node's certificate proves
      --insecure              plaintext
      --timeout SECONDS       per call (default 10)

Common:
  --progress                progress on stderr even when it is not a terminal
  -h, --help                this text

Exit status: 0 success, 1 failure (bad input, failed check or call), 2 usage.
)";

/// Runs keelctl with `words` (argv without the program name); progress goes
/// to `err` as a bar when `err_is_terminal`, as lines with --progress
/// otherwise.
inline int run(const std::vector<std::string>& words, std::ostream& out, std::ostream& err,
               bool err_is_terminal = false) {
  if (words.empty()) {
    err << usage_text;
    return 2;
  }
  if (words[0] == "-h" || words[0] == "--help" || words[0] == "help") {
    out << usage_text;
    return 0;
  }
  auto usage = [&](const std::string& problem) {
    err << "keelctl: " << problem << "\n" << usage_text;
    return 2;
  };
  const std::string group = words[0];
  const bool two_words =
      group == "wal" || group == "snapshot" || group == "store" || group == "member";
  if (two_words && words.size() < 2) return usage(group + " needs a subcommand");
  const std::string verb = two_words ? words[1] : std::string();
  const std::vector<std::string> rest(words.begin() + (two_words ? 2 : 1), words.end());

  std::set<std::string> valued;
  std::set<std::string> flags = {"progress", "help"};
  const bool online = group == "status" || group == "member" || group == "metrics";
  if (online) {
    valued = connection_options();
    flags.insert("insecure");
  }
  if (group == "store") {
    valued.insert({"descriptor-set", "type", "table"});
    flags.insert("array");
  }
  const args a = parse_args(rest, valued, flags);
  if (!a.error.empty()) return usage(a.error);
  if (a.has("help")) {
    out << usage_text;
    return 0;
  }
  const progress_mode mode = choose_progress(a.has("progress"), err_is_terminal);

  // The one positional argument a command takes, or null.
  auto one_path = [&]() -> const std::string* {
    return a.positional.size() == 1 ? &a.positional[0] : nullptr;
  };
  if (group == "wal" && (verb == "dump" || verb == "verify")) {
    const std::string* dir = one_path();
    if (dir == nullptr) return usage("wal " + verb + " takes one DIR");
    return verb == "dump" ? wal_dump(*dir, out, err, mode) : wal_verify(*dir, out, err, mode);
  }
  if (group == "snapshot" && verb == "inspect") {
    const std::string* target = one_path();
    if (target == nullptr) return usage("snapshot inspect takes one FILE or DIR");
    return snapshot_inspect(*target, out, err, mode);
  }
  if (group == "store" && verb == "dump") {
    const std::string* dir = one_path();
    if (dir == nullptr) return usage("store dump takes one DIR");
    store_dump_options o{.descriptor_set = a.value("descriptor-set"),
                         .types = a.all("type"),
                         .tables = a.all("table"),
                         .array = a.has("array"),
                         .progress = mode};
    return store_dump(*dir, o, out, err);
  }
  if (group == "status" && a.positional.empty()) return admin_status(a, out, err);
  if (group == "metrics" && a.positional.empty()) return admin_metrics(a, out, err);
  if (group == "member" && verb == "add") return admin_member_add(a, out, err);
  if (group == "member" && verb == "remove") return admin_member_remove(a, out, err);
  return usage("unknown command: " + group + (verb.empty() ? "" : " " + verb));
}

}  // namespace keelctl
