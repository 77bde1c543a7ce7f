// keel::store object traits: the `object` concept, a plain struct with
// hand-written traits and codec, the primary index, and (when protobuf was
// found) the protobuf traits of the example objects and their indexes.
// Randomized cases are seeded: a failure prints the seed; replay one with
// KEEL_SEED=<seed>.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "keel/store/indexer.hpp"
#include "keel/store/object_traits.hpp"
#include "keel/store/protobuf_traits.hpp"

#if defined(KEEL_HAS_EXAMPLE_OBJECTS)
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include "keel/objects_traits.hpp"
#endif

using namespace std::literals;
namespace store = keel::store;

namespace {

std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* env = std::getenv("KEEL_SEED")) return std::strtoull(env, nullptr, 10);
  return fallback;
}

// --- a plain struct, with its own codec ------------------------------------------------------

struct plain_task {
  std::string id;
  std::uint64_t version = 0;
  std::string name;
  std::string service_id;
  std::uint64_t slot = 0;
  std::int32_t state = 0;
  std::map<std::string, std::string> labels;

  bool operator==(const plain_task&) const = default;
};

// Format: "pt1", then id, version, name, service_id, slot, state, the label
// count and each label's key and value. Strings are a 4-byte little-endian
// length and the bytes; integers are little-endian, fixed width. Nothing may
// follow.
class plain_writer {
 public:
  void u64(std::uint64_t v) { put(v, 8); }
  void u32(std::uint32_t v) { put(v, 4); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  std::string out_ = "pt1";
};

class plain_reader {
 public:
  explicit plain_reader(std::string_view in) : in_(in) {}
  bool magic() { return take(3) == "pt1"; }
  bool u64(std::uint64_t& v) { return get(v, 8); }
  bool u32(std::uint32_t& v) {
    std::uint64_t wide = 0;
    if (!get(wide, 4)) return false;
    v = static_cast<std::uint32_t>(wide);
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t size = 0;
    if (!u32(size) || size > in_.size()) return false;
    s = take(size);
    return true;
  }
  bool done() const { return ok_ && in_.empty(); }
  std::size_t left() const { return in_.size(); }

 private:
  bool get(std::uint64_t& v, std::size_t n) {
    if (in_.size() < n) return ok_ = false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(n);
    return true;
  }
  std::string take(std::size_t n) {
    if (in_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::string_view in_;
  bool ok_ = true;
};

constexpr store::string_indexer plain_by_name{&plain_task::name, store::case_fold::lower};
constexpr store::compound_indexer plain_by_slot{store::string_indexer{&plain_task::service_id},
                                                store::integer_indexer{&plain_task::slot}};
constexpr store::map_indexer plain_by_label{&plain_task::labels};

}  // namespace

template <>
struct keel::store::object_traits<plain_task> {
  static constexpr std::string_view table = "plain_task";
  static std::string_view id(const plain_task& t) { return t.id; }
  static std::uint64_t version(const plain_task& t) { return t.version; }
  static void set_version(plain_task& t, std::uint64_t v) { t.version = v; }

  static std::string encode(const plain_task& t) {
    plain_writer w;
    w.str(t.id);
    w.u64(t.version);
    w.str(t.name);
    w.str(t.service_id);
    w.u64(t.slot);
    w.u32(static_cast<std::uint32_t>(t.state));
    w.u32(static_cast<std::uint32_t>(t.labels.size()));
    for (const auto& [k, v] : t.labels) {
      w.str(k);
      w.str(v);
    }
    return w.take();
  }

  static keel::result<plain_task> decode(std::string_view bytes) {
    plain_reader r(bytes);
    plain_task t;
    std::uint32_t state = 0, labels = 0;
    if (!r.magic() || !r.str(t.id) || !r.u64(t.version) || !r.str(t.name) || !r.str(t.service_id) ||
        !r.u64(t.slot) || !r.u32(state) || !r.u32(labels)) {
      return keel::errc::invalid_object;
    }
    t.state = static_cast<std::int32_t>(state);
    // Each label takes at least 8 bytes: a count beyond that is a lie, not a
    // reason to allocate.
    if (labels > r.left() / 8) return keel::errc::invalid_object;
    for (std::uint32_t i = 0; i < labels; ++i) {
      std::string k, v;
      if (!r.str(k) || !r.str(v)) return keel::errc::invalid_object;
      if (!t.labels.emplace(std::move(k), std::move(v)).second) return keel::errc::invalid_object;
    }
    if (!r.done()) return keel::errc::invalid_object;
    return t;
  }

  static constexpr auto indexes() {
    return std::tuple{
        index_schema{.name = "name", .unique = true, .indexer = plain_by_name},
        index_schema{.name = "slot", .allow_missing = true, .indexer = plain_by_slot},
        index_schema{.name = "labels", .allow_missing = true, .indexer = plain_by_label},
    };
  }
};

namespace {

plain_task sample_plain() {
  plain_task t;
  t.id = "task-1";
  t.version = 7;
  t.name = "Web.1";
  t.service_id = "svc";
  t.slot = 1;
  t.state = -3;
  t.labels = {{"env", "prod"}, {"zone", "a\0b"s}};
  return t;
}

// --- traits that break the contract ----------------------------------------------------------

struct without_traits {};

struct without_decode {
  std::string id;
};
struct wrong_version_type {
  std::string id;
};
struct runtime_table_name {
  std::string id;
};
struct foreign_index {
  std::string id;
};
struct reuses_id_name {
  std::string id;
};

/// Everything but table and indexes, right.
template <class T>
struct base_traits {
  static std::string_view id(const T& t) { return t.id; }
  static std::uint64_t version(const T&) { return 0; }
  static void set_version(T&, std::uint64_t) {}
  static std::string encode(const T& t) { return t.id; }
  static keel::result<T> decode(std::string_view b) { return T{std::string(b)}; }
  static constexpr auto indexes() { return std::tuple{}; }
};

}  // namespace

template <>
struct keel::store::object_traits<without_decode> {
  static constexpr std::string_view table = "x";
  static std::string_view id(const without_decode& t) { return t.id; }
  static std::uint64_t version(const without_decode&) { return 0; }
  static void set_version(without_decode&, std::uint64_t) {}
  static std::string encode(const without_decode& t) { return t.id; }
  static constexpr auto indexes() { return std::tuple{}; }
};

template <>
struct keel::store::object_traits<wrong_version_type> : base_traits<wrong_version_type> {
  static constexpr std::string_view table = "x";
  static int version(const wrong_version_type&) { return 0; }
};

template <>
struct keel::store::object_traits<runtime_table_name> : base_traits<runtime_table_name> {
  static inline std::string_view table = "x";  // not a constant
};

template <>
struct keel::store::object_traits<foreign_index> : base_traits<foreign_index> {
  static constexpr std::string_view table = "x";
  static constexpr auto indexes() {
    return std::tuple{
        index_schema{.name = "name", .indexer = plain_by_name}};  // indexes plain_task
  }
};

template <>
struct keel::store::object_traits<reuses_id_name> : base_traits<reuses_id_name> {
  static constexpr std::string_view table = "x";
  static constexpr auto indexes() {
    return std::tuple{index_schema{.name = "id", .indexer = string_indexer{&reuses_id_name::id}}};
  }
};

// --- the concept ------------------------------------------------------------------------------

TEST_CASE("a plain struct with complete traits is an object") {
  STATIC_REQUIRE(store::object<plain_task>);
  STATIC_REQUIRE_FALSE(store::object_with_created_at<plain_task>);
  STATIC_REQUIRE_FALSE(store::object_with_updated_at<plain_task>);
  STATIC_REQUIRE(store::index_names_valid(store::table_indexes<plain_task>()));
  CHECK_FALSE(store::check_indexes<plain_task>());
}

TEST_CASE("types whose traits break the contract are not objects") {
  STATIC_REQUIRE_FALSE(store::object<without_traits>);
  STATIC_REQUIRE_FALSE(store::object<without_decode>);
  STATIC_REQUIRE_FALSE(store::object<wrong_version_type>);
  STATIC_REQUIRE_FALSE(store::object<runtime_table_name>);
  STATIC_REQUIRE_FALSE(store::object<foreign_index>);
}

TEST_CASE("a secondary index may not take the primary index's name") {
  STATIC_REQUIRE(store::object<reuses_id_name>);
  STATIC_REQUIRE_FALSE(store::index_names_valid(store::table_indexes<reuses_id_name>()));
  CHECK(store::check_indexes<reuses_id_name>() == keel::errc::invalid_index_schema);
}

// --- the plain struct -----------------------------------------------------------------------

TEST_CASE("a plain object survives an encode and decode round trip") {
  using traits = store::object_traits<plain_task>;
  const plain_task t = sample_plain();
  const auto decoded = traits::decode(traits::encode(t));
  REQUIRE(decoded);
  CHECK(*decoded == t);
  CHECK(traits::decode(traits::encode(plain_task{})).value() == plain_task{});
}

TEST_CASE("a plain object's version is read and written through its traits") {
  using traits = store::object_traits<plain_task>;
  plain_task t = sample_plain();
  CHECK(traits::version(t) == 7);
  traits::set_version(t, 190);
  CHECK(traits::version(t) == 190);
  CHECK(traits::id(t) == "task-1");
  store::set_created_at(t, 5);  // no timestamps: does nothing
  store::set_updated_at(t, 5);
  CHECK(traits::version(t) == 190);
}

TEST_CASE("decoding bytes that are not a plain object gives an error, never a crash") {
  using traits = store::object_traits<plain_task>;
  const std::string good = traits::encode(sample_plain());
  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    const auto decoded = traits::decode(std::string_view(good).substr(0, n));
    REQUIRE_FALSE(decoded);
    REQUIRE(decoded.error() == keel::errc::invalid_object);
  }
  CHECK_FALSE(traits::decode(good + "x"));
  // A label count that the remaining bytes cannot hold.
  std::string lying = traits::encode(plain_task{});
  lying.replace(lying.size() - 4, 4, "\xff\xff\xff\x7f");
  CHECK(traits::decode(lying).error() == keel::errc::invalid_object);

  const std::uint64_t seed = test_seed(21);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::string garbage = good;
    garbage[rng() % garbage.size()] = static_cast<char>(rng());
    garbage.resize(rng() % (garbage.size() + 1));
    const auto decoded = traits::decode(garbage);  // may or may not parse; must not crash
    if (!decoded) CHECK(decoded.error() == keel::errc::invalid_object);
  }
}

// --- the primary index ------------------------------------------------------------------------

TEST_CASE("every table's first index is the unique primary index on the id") {
  const auto indexes = store::table_indexes<plain_task>();
  STATIC_REQUIRE(std::tuple_size_v<decltype(indexes)> == 4);
  const auto& primary = std::get<0>(indexes);
  CHECK(primary.name == "id");
  CHECK(primary.unique);
  CHECK_FALSE(primary.allow_missing);
  std::vector<std::string> entries;
  REQUIRE_FALSE(store::append_entry_keys(primary, sample_plain(), "task-1", entries));
  CHECK(entries == std::vector{"task-1\0"s});
  CHECK(primary.indexer.exact("task-1") == "task-1\0"s);
  CHECK(primary.indexer.prefix("task") == "task");
  // An object without an id cannot be stored.
  entries.clear();
  CHECK(store::append_entry_keys(primary, plain_task{}, "", entries) ==
        keel::errc::missing_index_value);
  CHECK(std::get<1>(indexes).name == "name");
}

TEST_CASE("a plain object's secondary indexes give the keys the schema describes") {
  const auto indexes = store::table_indexes<plain_task>();
  const plain_task t = sample_plain();
  std::vector<std::string> entries;
  REQUIRE_FALSE(store::append_entry_keys(std::get<1>(indexes), t, t.id, entries));
  CHECK(entries == std::vector{"web.1\0"s});  // unique, lower-cased
  entries.clear();
  REQUIRE_FALSE(store::append_entry_keys(std::get<2>(indexes), t, t.id, entries));
  CHECK(entries == std::vector{"svc\0"s + store::encode_integer(std::uint64_t{1}) + "task-1\0"s});
  CHECK(entries[0].starts_with(plain_by_slot.exact("svc", 1)));
  entries.clear();
  REQUIRE_FALSE(store::append_entry_keys(std::get<3>(indexes), t, t.id, entries));
  CHECK(entries == std::vector{"env\0prod\0task-1\0"s,
                               "zone\0a\x01\x01"
                               "b\0task-1\0"s});
}

// --- protobuf objects -------------------------------------------------------------------------

TEST_CASE("a type without protobuf's generated members is not a protobuf object") {
  struct not_protobuf {
    std::string id;
  };
  STATIC_REQUIRE_FALSE(store::protobuf_object<not_protobuf>);
}

#if defined(KEEL_HAS_EXAMPLE_OBJECTS)

namespace pb = keel::objects;

namespace {

pb::Task sample_task() {
  pb::Task t;
  t.set_id("task-1");
  t.mutable_meta()->set_version(189);
  t.mutable_meta()->set_created_at(-1);
  t.mutable_meta()->set_updated_at(1'700'000'000'000'000'000);
  t.set_name("Web.1.task-1");
  t.set_service_id("svc-1");
  t.set_node_id("node-1");
  t.set_slot(1);
  t.set_desired_state(pb::RUNNING);
  t.mutable_status()->set_state(pb::RUNNING);
  t.mutable_status()->set_message("started");
  return t;
}

pb::Service sample_service() {
  pb::Service s;
  s.set_id("svc-1");
  s.mutable_meta()->set_version(3);
  s.set_name("Web");
  (*s.mutable_labels())["env"] = "prod";
  (*s.mutable_labels())["tier"] = "front";
  s.mutable_spec()->set_replicas(4);
  s.mutable_spec()->set_image("registry:2.3.0");
  return s;
}

pb::Node sample_node() {
  pb::Node n;
  n.set_id("node-1");
  n.set_name("Host-A");
  (*n.mutable_labels())["zone"] = "eu";
  n.mutable_status()->set_state(pb::NodeStatus::READY);
  n.mutable_status()->set_addr("10.0.0.1");
  n.set_role(pb::MANAGER);
  return n;
}

template <class M>
M sample();
template <>
pb::Task sample<pb::Task>() {
  return sample_task();
}
template <>
pb::Service sample<pb::Service>() {
  return sample_service();
}
template <>
pb::Node sample<pb::Node>() {
  return sample_node();
}
template <>
pb::Cluster sample<pb::Cluster>() {
  pb::Cluster c;
  c.set_id("cluster-1");
  c.set_name("default");
  c.mutable_meta()->set_version(1);
  return c;
}
template <>
pb::Network sample<pb::Network>() {
  pb::Network n;
  n.set_id("net-1");
  n.set_name("ingress");
  n.set_driver("overlay");
  return n;
}

template <class M>
bool same(const M& a, const M& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

/// The sorted entry keys of obj in the index `name` of its table.
template <class M>
std::vector<std::string> entries_of(const M& obj, std::string_view name,
                                    std::error_code* error = nullptr) {
  std::vector<std::string> entries;
  const bool found = store::visit_index(store::table_indexes<M>(), name, [&](const auto& schema) {
    const auto e = store::append_entry_keys(schema, obj, obj.id(), entries);
    if (error) *error = e;
  });
  REQUIRE(found);
  return entries;
}

}  // namespace

TEMPLATE_TEST_CASE("the example protobuf objects satisfy the object traits policy", "", pb::Task,
                   pb::Service, pb::Node, pb::Cluster, pb::Network) {
  STATIC_REQUIRE(store::protobuf_object<TestType>);
  STATIC_REQUIRE(store::object<TestType>);
  STATIC_REQUIRE(store::object_with_created_at<TestType>);
  STATIC_REQUIRE(store::object_with_updated_at<TestType>);
  STATIC_REQUIRE(store::index_names_valid(store::table_indexes<TestType>()));
  STATIC_REQUIRE(!store::object_traits<TestType>::table.empty());
}

TEMPLATE_TEST_CASE("an example protobuf object survives an encode and decode round trip", "",
                   pb::Task, pb::Service, pb::Node, pb::Cluster, pb::Network) {
  using traits = store::object_traits<TestType>;
  const TestType obj = sample<TestType>();
  const auto decoded = traits::decode(traits::encode(obj));
  REQUIRE(decoded);
  CHECK(same(*decoded, obj));
  CHECK(traits::id(*decoded) == obj.id());
  const auto empty = traits::decode("");  // the empty message is a valid, empty object
  REQUIRE(empty);
  CHECK(traits::id(*empty).empty());
}

TEMPLATE_TEST_CASE("an example protobuf object's meta is read and written through its traits", "",
                   pb::Task, pb::Service, pb::Node, pb::Cluster, pb::Network) {
  using traits = store::object_traits<TestType>;
  TestType obj = sample<TestType>();
  traits::set_version(obj, 190);
  CHECK(traits::version(obj) == 190);
  CHECK(obj.meta().version() == 190);
  store::set_created_at(obj, 11);
  store::set_updated_at(obj, 12);
  CHECK(obj.meta().created_at() == 11);
  CHECK(obj.meta().updated_at() == 12);
}

TEMPLATE_TEST_CASE("decoding bytes that are not a protobuf object gives an error, never a crash",
                   "", pb::Task, pb::Service, pb::Node, pb::Cluster, pb::Network) {
  using traits = store::object_traits<TestType>;
  // protobuf logs each string with invalid UTF-8 it refuses; keep the output readable.
  const google::protobuf::LogSilencer quiet;
  const std::vector<std::string> bad = {
      "\xff"s,  // a truncated varint tag
      "\x0a\x05"
      "ab"s,                // field 1 (id) says 5 bytes, 2 follow
      "\x0a\x02\xc3\x28"s,  // id is not valid UTF-8 (proto3 strings must be)
      "\x0c"s,              // an end-group without a start
      "\x0f"s,              // wire type 7 does not exist
      "\x00"s,              // field number 0 is invalid
      "\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"s,  // an 11-byte varint length
  };
  for (const auto& bytes : bad) {
    CAPTURE(bytes);
    const auto decoded = traits::decode(bytes);
    REQUIRE_FALSE(decoded);
    CHECK(decoded.error() == keel::errc::invalid_object);
  }
  const std::uint64_t seed = test_seed(22);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  const std::string good = traits::encode(sample<TestType>());
  int rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string garbage = good;
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
      garbage[rng() % garbage.size()] = static_cast<char>(rng());
    }
    garbage.resize(rng() % (garbage.size() + 1));
    const auto decoded = traits::decode(garbage);  // may parse; must not crash
    if (!decoded) {
      ++rejected;
      CHECK(decoded.error() == keel::errc::invalid_object);
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("a task is indexed by service, node, service and slot, desired state, name and state") {
  const pb::Task t = sample_task();
  using ix = keel::example_objects::task_indexes;
  CHECK(entries_of(t, "id") == std::vector{"task-1\0"s});
  CHECK(entries_of(t, "service_id") == std::vector{"svc-1\0task-1\0"s});
  CHECK(entries_of(t, "node_id") == std::vector{"node-1\0task-1\0"s});
  CHECK(entries_of(t, "slot") == std::vector{ix::service_slot.exact("svc-1", 1) + "task-1\0"s});
  CHECK(entries_of(t, "slot")[0].starts_with(ix::service_slot.leading("svc-1")));
  CHECK(entries_of(t, "desired_state") ==
        std::vector{store::encode_integer(std::int32_t{512}) + "task-1\0"s});
  CHECK(entries_of(t, "name") == std::vector{"web.1.task-1\0task-1\0"s});
  CHECK(entries_of(t, "running") == std::vector{"\x01task-1\0"s});
  // States order as SwarmKit's: NEW < PENDING < ... < RUNNING < ... < ORPHANED.
  CHECK(ix::desired_state.exact(pb::NEW) < ix::desired_state.exact(pb::PENDING));
  CHECK(ix::desired_state.exact(pb::RUNNING) < ix::desired_state.exact(pb::COMPLETE));
  CHECK(ix::desired_state.exact(pb::REMOVE) < ix::desired_state.exact(pb::ORPHANED));
}

TEST_CASE("an unassigned task is left out of the node index") {
  pb::Task t = sample_task();
  t.clear_node_id();
  std::error_code error;
  CHECK(entries_of(t, "node_id", &error).empty());
  CHECK_FALSE(error);
  t.clear_id();
  CHECK(entries_of(t, "id", &error).empty());
  CHECK(error == keel::errc::missing_index_value);
}

TEST_CASE("a service is indexed by its lower-cased name and by each label") {
  const pb::Service s = sample_service();
  CHECK(entries_of(s, "name") == std::vector{"web\0"s});  // unique: no id appended
  CHECK(entries_of(s, "labels") == std::vector{"env\0prod\0svc-1\0"s, "tier\0front\0svc-1\0"s});
  pb::Service unlabelled = s;
  unlabelled.clear_labels();
  std::error_code error;
  CHECK(entries_of(unlabelled, "labels", &error).empty());
  CHECK_FALSE(error);
  pb::Service unnamed = s;
  unnamed.clear_name();
  entries_of(unnamed, "name", &error);
  CHECK(error == keel::errc::missing_index_value);
}

TEST_CASE("a node is indexed by name, label and role") {
  const pb::Node n = sample_node();
  using ix = keel::example_objects::node_indexes;
  CHECK(entries_of(n, "name") == std::vector{"host-a\0node-1\0"s});
  CHECK(entries_of(n, "labels") == std::vector{"zone\0eu\0node-1\0"s});
  CHECK(entries_of(n, "role") == std::vector{ix::role.exact(pb::MANAGER) + "node-1\0"s});
  CHECK(ix::role.exact(pb::WORKER) < ix::role.exact(pb::MANAGER));
}

TEST_CASE("clusters and networks are indexed by unique lower-cased name") {
  CHECK(entries_of(sample<pb::Cluster>(), "name") == std::vector{"default\0"s});
  CHECK(entries_of(sample<pb::Network>(), "name") == std::vector{"ingress\0"s});
}

#endif  // KEEL_HAS_EXAMPLE_OBJECTS
