// keelctl's offline commands on the data directory of a real node: the WAL
// dumped and verified (and a damaged copy refused, naming the offset), the
// snapshot inspected, the store rebuilt and printed as JSON that matches
// what the node's store held, through the compiled messages and through a
// descriptor set; damaged and truncated input is an error, never a crash.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <google/protobuf/util/message_differencer.h>

#include "keelctl_test_support.hpp"

using namespace keel::test::tools;
namespace fs = std::filesystem;

namespace {

/// One sample data directory for every test case: writing it takes a cluster.
struct sample {
  keel::test::temp_dir root;
  expected_objects expected;
  std::string dir;
  sample() { dir = write_sample_data_dir(root.path(), expected); }
};

const sample& the_sample() {
  static const sample s;
  return s;
}

/// A copy of the sample's data directory to damage.
std::string copy_of(const sample& s, const keel::test::temp_dir& into) {
  const std::string to = into.path() + "/copy";
  fs::copy(s.dir, to, fs::copy_options::recursive);
  return to;
}

std::vector<fs::path> files_in(const std::string& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().string().ends_with(suffix)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void flip_byte(const fs::path& file, std::uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The offset of the first entry record the dump lists, in the first segment.
std::uint64_t first_entry_offset(const std::string& dump) {
  for (const std::string& line : lines_of(dump)) {
    if (contains(line, " entry ") && contains(line, "actions")) return std::stoull(line);
  }
  FAIL("no entry with store actions in the dump");
  return 0;
}

}  // namespace

TEST_CASE("wal dump lists every record with its store actions and conf state, then the verdict",
          "[keelctl][wal]") {
  const sample& s = the_sample();
  const auto r = run_keelctl({"wal", "dump", s.dir});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(contains(r.out, "segment_header"));
  CHECK(contains(r.out, "hard_state"));
  CHECK(contains(r.out, "snapshot_marker"));
  CHECK(contains(r.out, "actions 1 at version"));
  CHECK(contains(r.out, "task +1"));
  CHECK(contains(r.out, "task ~1"));
  CHECK(contains(r.out, "task -1"));
  CHECK(contains(r.out, "service +1"));
  CHECK(contains(r.out, "crc"));
  CHECK(contains(r.out, ": ok: "));
}

TEST_CASE("wal verify accepts the node's WAL and snapshots", "[keelctl][wal]") {
  const auto r = run_keelctl({"wal", "verify", the_sample().dir});
  INFO(r.out << r.err);
  CHECK(r.rc == 0);
  CHECK(contains(r.out, ": ok: "));
  CHECK(contains(r.out, ".snap: snapshot index"));
}

TEST_CASE("wal verify refuses a damaged record and names its file and offset", "[keelctl][wal]") {
  keel::test::temp_dir tmp;
  const std::string dir = copy_of(the_sample(), tmp);
  const auto dump = run_keelctl({"wal", "dump", dir});
  REQUIRE(dump.rc == 0);
  const std::uint64_t at = first_entry_offset(dump.out);
  const auto segments = files_in(dir + "/wal", ".wal");
  REQUIRE_FALSE(segments.empty());
  flip_byte(segments.front(), at + 20);
  const auto r = run_keelctl({"wal", "verify", dir});
  INFO(r.out << r.err);
  CHECK(r.rc == 1);
  CHECK(contains(r.out, "corrupt WAL"));
  CHECK(contains(r.out, segments.front().filename().string()));
  CHECK(contains(r.out, "at offset " + std::to_string(at)));
}

TEST_CASE("wal commands refuse a missing directory", "[keelctl][wal]") {
  keel::test::temp_dir tmp;
  for (const char* verb : {"dump", "verify"}) {
    const auto r = run_keelctl({"wal", verb, tmp.path() + "/nothing-here"});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "no such directory"));
  }
}

TEST_CASE("wal commands and store dump refuse a directory without WAL segments", "[keelctl][wal]") {
  keel::test::temp_dir tmp;
  fs::create_directories(tmp.path() + "/n1/wal");
  fs::create_directories(tmp.path() + "/n1/snap");
  for (const char* verb : {"dump", "verify"}) {
    const auto r = run_keelctl({"wal", verb, tmp.path() + "/n1"});
    INFO(r.out << r.err);
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "no WAL segments in " + tmp.path() + "/n1/wal"));
  }
  const auto r = run_keelctl({"store", "dump", tmp.path() + "/n1"});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "no WAL segments in"));
}

TEST_CASE("wal verify refuses a WAL whose snapshot file is missing", "[keelctl][wal]") {
  keel::test::temp_dir tmp;
  const std::string dir = copy_of(the_sample(), tmp);
  const auto snaps = files_in(dir + "/snap", ".snap");
  REQUIRE_FALSE(snaps.empty());
  for (const auto& f : snaps) fs::remove(f);
  for (const char* verb : {"verify", "dump"}) {
    const auto r = run_keelctl({"wal", verb, dir});
    INFO(r.out << r.err);
    CHECK(r.rc == 1);
    CHECK(contains(r.out, "FAILED: the WAL starts from snapshot"));
    CHECK(contains(r.out, snaps.back().filename().string()));
  }
}

TEST_CASE("a WAL directory given with a trailing slash finds the snapshots beside it",
          "[keelctl][wal]") {
  const std::string dir = the_sample().dir;
  for (const std::string& given : {dir + "/wal/", dir + "/wal//", dir + "/wal/."}) {
    const auto r = run_keelctl({"wal", "verify", given});
    INFO(given << "\n" << r.out << r.err);
    CHECK(r.rc == 0);
    CHECK(contains(r.out, dir + "/snap/"));
    CHECK_FALSE(contains(r.out, "wal/snap"));
  }
  CHECK(run_keelctl({"store", "dump", dir + "/"}).rc == 0);
}

TEST_CASE("snapshot inspect shows the header, the members and the tables inside",
          "[keelctl][snapshot]") {
  const sample& s = the_sample();
  const auto r = run_keelctl({"snapshot", "inspect", s.dir});
  INFO(r.out << r.err);
  CHECK(r.rc == 0);
  CHECK(contains(r.out, "content crc"));
  CHECK(contains(r.out, ": ok"));
  CHECK(contains(r.out, "members: voters 1; learners none"));
  CHECK(contains(r.out, "stream crc ok"));
  CHECK(contains(r.out, "    task "));

  // One file by its path, too.
  const auto snaps = files_in(s.dir + "/snap", ".snap");
  REQUIRE_FALSE(snaps.empty());
  const auto one = run_keelctl({"snapshot", "inspect", snaps.back().string()});
  CHECK(one.rc == 0);
  CHECK(contains(one.out, "members: voters 1"));
}

TEST_CASE("snapshot inspect refuses a truncated file and a file with a wrong magic",
          "[keelctl][snapshot]") {
  keel::test::temp_dir tmp;
  const std::string dir = copy_of(the_sample(), tmp);
  const auto snaps = files_in(dir + "/snap", ".snap");
  REQUIRE_FALSE(snaps.empty());
  const fs::path file = snaps.back();

  SECTION("truncated") {
    fs::resize_file(file, fs::file_size(file) - 7);
    const auto r = run_keelctl({"snapshot", "inspect", file.string()});
    CHECK(r.rc == 1);
    CHECK(contains(r.out, "CORRUPT"));
  }
  SECTION("wrong magic") {
    flip_byte(file, 0);
    const auto r = run_keelctl({"snapshot", "inspect", file.string()});
    CHECK(r.rc == 1);
  }
  SECTION("damaged content") {
    flip_byte(file, fs::file_size(file) - 3);
    const auto r = run_keelctl({"snapshot", "inspect", file.string()});
    CHECK(r.rc == 1);
    CHECK(contains(r.out, "BAD"));
  }
  SECTION("not there") {
    const auto r = run_keelctl({"snapshot", "inspect", dir + "/nothing.snap"});
    CHECK(r.rc == 1);
  }
}

namespace {

/// The dump's objects: table -> id -> the "object" member as JSON.
expected_objects objects_of(const std::string& out) {
  expected_objects got;
  for (const std::string& line : lines_of(out)) {
    const auto j = parse_json(line);
    const auto& f = j.fields();
    REQUIRE(f.contains("table"));
    REQUIRE(f.contains("id"));
    REQUIRE(f.contains("object"));
    std::string object;
    REQUIRE(google::protobuf::util::MessageToJsonString(f.at("object"), &object).ok());
    got[f.at("table").string_value()][f.at("id").string_value()] = object;
  }
  return got;
}

/// Whether two JSON texts hold the same value (objects compared by key).
bool same_json(const std::string& a, const std::string& b) {
  google::protobuf::Value va;
  google::protobuf::Value vb;
  REQUIRE(google::protobuf::util::JsonStringToMessage(a, &va).ok());
  REQUIRE(google::protobuf::util::JsonStringToMessage(b, &vb).ok());
  return google::protobuf::util::MessageDifferencer::Equals(va, vb);
}

/// The expected objects re-encoded the way objects_of() does (through Struct).
expected_objects normalized(const expected_objects& in) {
  expected_objects out;
  for (const auto& [table, objects] : in) {
    for (const auto& [id, json] : objects) {
      google::protobuf::Value v;
      REQUIRE(google::protobuf::util::JsonStringToMessage(json, &v).ok());
      REQUIRE(google::protobuf::util::MessageToJsonString(v, &out[table][id]).ok());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("store dump rebuilds the store: every object as the node's store held it",
          "[keelctl][store]") {
  const sample& s = the_sample();
  const auto r = run_keelctl({"store", "dump", s.dir});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  const auto got = objects_of(r.out);
  const auto want = normalized(s.expected);
  REQUIRE(got.size() == want.size());
  for (const auto& [table, objects] : want) {
    REQUIRE(got.contains(table));
    CHECK(got.at(table).size() == objects.size());
    for (const auto& [id, json] : objects) {
      INFO(table << " " << id);
      REQUIRE(got.at(table).contains(id));
      CHECK(same_json(got.at(table).at(id), json));
    }
  }
  CHECK(got.at("task").size() == 89);
  CHECK_FALSE(got.at("task").contains("task-4"));

  // One field read back out of the JSON, against the store's view.
  bool found = false;
  for (const std::string& line : lines_of(r.out)) {
    const auto j = parse_json(line);
    if (j.fields().at("id").string_value() != "task-3") continue;
    found = true;
    const auto& object = j.fields().at("object").struct_value().fields();
    CHECK(object.at("node_id").string_value() == "node-7");
    CHECK(object.at("service_id").string_value() == "web");
    CHECK(j.fields().at("type").string_value() == "keel.objects.Task");
    CHECK(j.fields().at("version").number_value() > 0);
  }
  CHECK(found);
}

TEST_CASE("store dump filters tables and refuses an unknown one", "[keelctl][store]") {
  const sample& s = the_sample();
  const auto r = run_keelctl({"store", "dump", s.dir, "--table", "service"});
  REQUIRE(r.rc == 0);
  CHECK(lines_of(r.out).size() == 3);
  const auto empty = run_keelctl({"store", "dump", s.dir, "--table", "network"});
  CHECK(empty.rc == 0);  // In the snapshot, with no objects.
  CHECK(empty.out.empty());
  const auto unknown = run_keelctl({"store", "dump", s.dir, "--table", "volume"});
  CHECK(unknown.rc == 1);
  CHECK(contains(unknown.err, "unknown table volume"));
  CHECK(unknown.out.empty());
}

TEST_CASE("store dump --array prints one JSON array", "[keelctl][store]") {
  const auto r = run_keelctl({"store", "dump", the_sample().dir, "--array", "--table", "service"});
  REQUIRE(r.rc == 0);
  google::protobuf::Value v;
  REQUIRE(google::protobuf::util::JsonStringToMessage(r.out, &v).ok());
  CHECK(v.list_value().values_size() == 3);
}

#ifdef KEELCTL_TEST_DESCRIPTOR_SET
TEST_CASE("store dump with a descriptor set prints what the compiled messages print",
          "[keelctl][store]") {
  const sample& s = the_sample();
  const auto compiled = run_keelctl({"store", "dump", s.dir});
  const auto dynamic =
      run_keelctl({"store", "dump", s.dir, "--descriptor-set", KEELCTL_TEST_DESCRIPTOR_SET});
  INFO(dynamic.err);
  REQUIRE(dynamic.rc == 0);
  CHECK(dynamic.out == compiled.out);

  // An explicit type for a table, by its full name.
  const auto typed = run_keelctl({"store", "dump", s.dir, "--descriptor-set",
                                  KEELCTL_TEST_DESCRIPTOR_SET, "--type", "task=keel.objects.Task"});
  CHECK(typed.out == compiled.out);
  const auto bad_type =
      run_keelctl({"store", "dump", s.dir, "--descriptor-set", KEELCTL_TEST_DESCRIPTOR_SET,
                   "--type", "task=keel.objects.Nope"});
  CHECK(bad_type.rc == 1);
  CHECK(contains(bad_type.err, "keel.objects.Nope"));
}
#endif

TEST_CASE("store dump prints objects of a table without a type as base64 with id and version",
          "[keelctl][store]") {
  // Mapping a table to a message of another shape leaves the bytes unparsed
  // only if they fail to parse; instead give no schema for it: a descriptor
  // set of the well-known Struct type only.
  keel::test::temp_dir tmp;
  const std::string set_path = tmp.path() + "/empty.desc";
  {
    google::protobuf::FileDescriptorSet set;
    google::protobuf::Struct::descriptor()->file()->CopyTo(set.add_file());
    std::ofstream out(set_path, std::ios::binary);
    REQUIRE(set.SerializeToOstream(&out));
  }
  const auto r = run_keelctl(
      {"store", "dump", the_sample().dir, "--descriptor-set", set_path, "--table", "task"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  const auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 89);
  const auto j = parse_json(lines.front());
  CHECK_FALSE(j.fields().contains("object"));
  CHECK(j.fields().contains("bytes"));
  CHECK(j.fields().at("id").string_value().starts_with("task-"));
  CHECK(j.fields().at("version").number_value() > 0);
}

TEST_CASE("store dump refuses damaged input with a message", "[keelctl][store]") {
  keel::test::temp_dir tmp;
  const std::string dir = copy_of(the_sample(), tmp);

  SECTION("a damaged WAL") {
    const auto dump = run_keelctl({"wal", "dump", dir});
    const auto segments = files_in(dir + "/wal", ".wal");
    flip_byte(segments.front(), first_entry_offset(dump.out) + 20);
    const auto r = run_keelctl({"store", "dump", dir});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "corrupt WAL"));
  }
  SECTION("a truncated snapshot file") {
    for (const auto& f : files_in(dir + "/snap", ".snap")) {
      fs::resize_file(f, fs::file_size(f) / 2);
    }
    const auto r = run_keelctl({"store", "dump", dir});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, ".snap"));
  }
  SECTION("not a descriptor set") {
    const auto r = run_keelctl({"store", "dump", dir, "--descriptor-set", dir + "/wal"});
    CHECK(r.rc == 1);
    CHECK(contains(r.err, "descriptor set"));
  }
  SECTION("no data directory") {
    const auto r = run_keelctl({"store", "dump", dir + "/nothing"});
    CHECK(r.rc == 1);
  }
}

TEST_CASE("keelctl answers usage errors with exit status 2", "[keelctl]") {
  CHECK(run_keelctl({}).rc == 2);
  CHECK(run_keelctl({"wal"}).rc == 2);
  CHECK(run_keelctl({"wal", "dump"}).rc == 2);
  CHECK(run_keelctl({"wal", "dump", "a", "b"}).rc == 2);
  CHECK(run_keelctl({"store", "dump", "x", "--bogus"}).rc == 2);
  CHECK(run_keelctl({"frobnicate"}).rc == 2);
  CHECK(run_keelctl({"--help"}).rc == 0);
}
