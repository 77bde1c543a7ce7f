// A downstream program that uses keel's core as a user would: a store of
// plain structs with hand-written traits, one write transaction and a
// compare-and-set that must fail, then a single-node Raft group over
// memory_storage that elects itself and commits proposals.
//
// It includes only <keel/keel.hpp>, so it builds against an installed keel,
// a keel added with add_subdirectory() and the amalgamated single header
// alike. Exits 0 when everything behaved, 1 with a message otherwise.
#include <keel/keel.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

namespace app {

/// The objects this program keeps: a note with a name and some text.
struct note {
  std::string id;
  std::string name;
  std::string text;
  std::uint64_t version = 0;
};

struct note_indexes {
  static constexpr keel::store::string_indexer name{&note::name};
};

}  // namespace app

template <>
struct keel::store::object_traits<app::note> {
  static constexpr std::string_view table = "note";
  static std::string_view id(const app::note& n) { return n.id; }
  static std::uint64_t version(const app::note& n) { return n.version; }
  static void set_version(app::note& n, std::uint64_t v) { n.version = v; }

  // Three fields separated by NUL; the version comes back from the log.
  static std::string encode(const app::note& n) { return n.id + '\0' + n.name + '\0' + n.text; }
  static keel::result<app::note> decode(std::string_view in) {
    const auto first = in.find('\0');
    const auto second = first == std::string_view::npos ? first : in.find('\0', first + 1);
    if (second == std::string_view::npos) return keel::errc::invalid_object;
    return app::note{.id = std::string(in.substr(0, first)),
                     .name = std::string(in.substr(first + 1, second - first - 1)),
                     .text = std::string(in.substr(second + 1))};
  }

  static constexpr auto indexes() {
    return std::tuple{index_schema{.name = "name", .indexer = app::note_indexes::name}};
  }
};

namespace {

int failures = 0;

void check(bool ok, std::string_view what) {
  if (!ok) {
    std::cerr << "consumer: FAILED: " << what << '\n';
    ++failures;
  }
}

/// Creates a note, reads it back by id and by name, and updates it once with
/// its current version and once with a stale one.
void use_the_store() {
  keel::store::store<app::note> notes;
  std::error_code ec = notes.update(
      [](auto& tx) { return tx.create(app::note{.id = "n1", .name = "todo", .text = "ship"}); });
  check(!ec, "creating a note");

  const auto read = notes.begin_read();
  const auto stored = read.get<app::note>("n1");
  check(stored != nullptr && stored->text == "ship" && stored->version == 1,
        "reading the note back at version 1");
  const auto found = read.find<app::note>(keel::store::by_name("todo"));
  check(found.has_value() && found->size() == 1, "finding the note by name");

  app::note edited = *stored;
  edited.text = "shipped";
  ec = notes.update([&](auto& tx) { return tx.update(edited); });
  check(!ec, "updating the note at its version");
  ec = notes.update([&](auto& tx) { return tx.update(edited); });  // edited.version is stale now
  check(ec == keel::errc::sequence_conflict, "a stale update is a sequence conflict");
  check(notes.begin_read().get<app::note>("n1")->text == "shipped", "the update is visible");
}

/// Plays the node layer for one node: persists, applies and advances until
/// raft has nothing more to do; returns the payloads applied.
template <class Node>
std::vector<std::string> drain(Node& node, keel::raft::memory_storage& storage) {
  std::vector<std::string> applied;
  while (node.has_ready()) {
    keel::raft::ready rd = node.ready();
    if (rd.snapshot) check(!storage.apply_snapshot(*rd.snapshot), "installing a snapshot");
    if (!rd.entries.empty()) check(!storage.append(rd.entries), "appending entries");
    if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
    for (const keel::raft::entry& e : rd.committed_entries) {
      if (!e.data.empty()) applied.push_back(e.data.str());
    }
    node.advance();
  }
  return applied;
}

/// A single-voter group commits what it is given, in order.
void use_raft() {
  keel::raft::memory_storage storage;
  keel::raft::snapshot boot;
  boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1}}};
  check(!storage.apply_snapshot(boot), "bootstrapping the log");

  auto created = keel::raft::raw_node<keel::raft::memory_storage>::create(
      keel::raft::config{.id = 1}, storage);
  check(created.has_value(), "creating the raft node");
  if (!created) return;
  auto& node = *created;
  node.campaign();
  drain(node, storage);
  check(node.status().soft_state.lead == 1, "the only voter leads");

  std::vector<std::string> applied;
  for (std::string cmd : {"one", "two", "three"}) {
    check(!node.propose(cmd), "proposing " + cmd);
    for (std::string& data : drain(node, storage)) applied.push_back(std::move(data));
  }
  check((applied == std::vector<std::string>{"one", "two", "three"}), "applying in order");
  check(storage.last_index() == node.status().hard_state.commit, "everything committed");
}

}  // namespace

int main() {
  use_the_store();
  use_raft();
  if (failures != 0) return EXIT_FAILURE;
  std::cout << "consumer: keel's store and raft work\n";
  return EXIT_SUCCESS;
}
