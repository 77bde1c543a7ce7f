// Store snapshots (keel/node/store_snapshot.hpp): a store streamed out in
// bounded pieces and restored into another store gives the same objects,
// versions and index answers; a restore over a different state tells its
// watchers exactly what changed; damaged or hostile streams are refused and
// leave the store, its version and its watchers untouched; the pieces go
// through a snapshot file on the simulated disk as the replica will use it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/detail/codec.hpp"
#include "keel/node/store_snapshot.hpp"
#include "keel/sim/disk.hpp"
#include "keel/store/selector.hpp"
#include "keel/wal/crc32c.hpp"
#include "keel/wal/snapshot_store.hpp"

using keel::errc;
using keel::node::restore_store_snapshot;
using keel::node::restore_summary;
using keel::node::write_store_snapshot;
using keel::store::change_kind;
using keel::store::object_traits;
using keel::test::plain::make_node;
using keel::test::plain::make_service;
using keel::test::plain::make_task;
using keel::test::plain::node;
using keel::test::plain::plain_change;
using keel::test::plain::plain_store;
using keel::test::plain::service;
using keel::test::plain::task;

namespace {

using bytes = std::vector<std::byte>;

/// The snapshot of s's current state, written in pieces of piece_bytes.
bytes snapshot_of(const plain_store& s, std::size_t piece_bytes = 4096) {
  bytes out;
  const auto ec = write_store_snapshot(
      s.begin_read(),
      [&](std::span<const std::byte> piece) {
        out.insert(out.end(), piece.begin(), piece.end());
        return std::error_code{};
      },
      piece_bytes);
  REQUIRE_FALSE(ec);
  return out;
}

/// Hands out `data` at most `step` bytes per call, like a file read in pieces.
struct memory_source {
  std::span<const std::byte> data;
  std::size_t step = 1000;
  std::size_t at = 0;

  keel::result<std::size_t> operator()(std::span<std::byte> out) {
    const std::size_t n = std::min({out.size(), step, data.size() - at});
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(at), n, out.begin());
    at += n;
    return n;
  }
};

keel::result<restore_summary> restore(plain_store& s, std::uint64_t version,
                                      std::span<const std::byte> data, std::size_t step = 1000,
                                      std::size_t max_object_bytes = std::size_t{64} << 20) {
  return restore_store_snapshot(s, version, memory_source{data, step}, max_object_bytes);
}

bytes to_bytes(std::string_view s) {
  const auto b = std::as_bytes(std::span(s.data(), s.size()));
  return bytes(b.begin(), b.end());
}

/// Commits fn's writes at `version`.
template <class F>
void write_at(plain_store& s, std::uint64_t version, F fn) {
  auto tx = s.begin_write_at(version);
  fn(tx);
  s.commit(std::move(tx));
}

/// A few thousand objects over several commits, so versions differ.
void fill(plain_store& s) {
  write_at(s, 10, [](auto& tx) {
    for (int i = 0; i < 40; ++i) {
      REQUIRE_FALSE(
          tx.create(make_service("svc-" + std::to_string(i), "Service " + std::to_string(i),
                                 {{"tier", i % 2 ? "web" : "db"}})));
    }
    for (int i = 0; i < 300; ++i) {
      REQUIRE_FALSE(tx.create(make_node("node-" + std::to_string(i), i - 150,
                                        i % 5 ? "host" + std::to_string(i % 7) : "")));
    }
  });
  for (int batch = 0; batch < 4; ++batch) {
    write_at(s, 20 + static_cast<std::uint64_t>(batch), [&](auto& tx) {
      for (int i = batch * 800; i < (batch + 1) * 800; ++i) {
        REQUIRE_FALSE(tx.create(make_task(
            "task-" + std::to_string(i), "svc-" + std::to_string(i % 40),
            static_cast<std::uint64_t>(i / 40),
            i % 3 ? keel::test::plain::task_state::running : keel::test::plain::task_state::pending,
            i % 4 ? "node-" + std::to_string(i % 300) : "", "web")));
      }
    });
  }
  write_at(s, 30, [](auto& tx) {
    for (int i = 0; i < 3200; i += 7) {
      auto t = tx.template get<task>("task-" + std::to_string(i));
      REQUIRE(t);
      task changed = *t;
      changed.desired_state = keel::test::plain::task_state::shutdown;
      REQUIRE_FALSE(tx.update(changed));
    }
  });
}

/// Every object of T in both stores, with its version, is the same.
template <class T>
void require_same_table(const plain_store& a, const plain_store& b) {
  const auto ta = a.begin_read();
  const auto tb = b.begin_read();
  REQUIRE(ta.template count<T>() == tb.template count<T>());
  auto ib = tb.template table<T>().primary().begin();
  for (const auto& e : ta.template table<T>().primary()) {
    REQUIRE(*e.value == *(*ib).value);
    ++ib;
  }
}

void require_same(const plain_store& a, const plain_store& b) {
  require_same_table<task>(a, b);
  require_same_table<service>(a, b);
  require_same_table<node>(a, b);
}

std::vector<std::string> ids_of(const std::vector<keel::store::object_ptr<task>>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t->id);
  return out;
}

/// Crafts snapshots by hand, to feed the decoder what a writer never would.
class snapshot_builder {
 public:
  explicit snapshot_builder(std::uint64_t version = 1, std::uint8_t format = 1) {
    out_ = "KEELSTOR";
    out_.push_back(static_cast<char>(format));
    u64(version);
  }

  snapshot_builder& section(std::string_view table, const std::vector<std::string>& objects,
                            std::optional<std::uint64_t> count = std::nullopt) {
    out_.push_back('T');
    string(table);
    u64(count.value_or(objects.size()));
    for (const auto& o : objects) string(o);
    ++sections_;
    objects_ += objects.size();
    return *this;
  }

  /// The end marker, the counts and the CRC (which trailing bytes follow).
  bytes finish(std::string_view trailing = {}) {
    out_.push_back('E');
    u32(sections_);
    u64(objects_);
    u32(keel::wal::crc32c(out_));
    out_.append(trailing);
    return to_bytes(out_);
  }

 private:
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void string(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

  std::string out_;
  std::uint32_t sections_ = 0;
  std::uint64_t objects_ = 0;
};

template <class T>
std::string encoded(T obj, std::uint64_t version) {
  object_traits<T>::set_version(obj, version);
  return object_traits<T>::encode(obj);
}

/// A store with a little of everything, at version 5.
void small_state(plain_store& s) {
  write_at(s, 5, [](auto& tx) {
    REQUIRE_FALSE(tx.create(make_service("s1", "web", {{"tier", "front"}})));
    REQUIRE_FALSE(tx.create(make_task("t1", "s1", 1)));
    REQUIRE_FALSE(tx.create(make_task("t2", "s1", 2)));
    REQUIRE_FALSE(tx.create(make_node("n1", 3, "host")));
  });
}

/// Restoring `data` into s fails, and s is exactly as it was: content,
/// version, and no event for a watcher.
void require_refused(plain_store& s, std::span<const std::byte> data, std::size_t step = 1000,
                     std::size_t max_object_bytes = std::size_t{64} << 20) {
  const bytes before = snapshot_of(s);
  const std::uint64_t version = s.version();
  auto w = s.watch(keel::store::accept_all{});
  auto r = restore(s, version + 10, data, step, max_object_bytes);
  REQUIRE_FALSE(r);
  CHECK(s.version() == version);
  CHECK(snapshot_of(s) == before);
  CHECK_FALSE(w.try_next());
}

}  // namespace

TEST_CASE("a store restored from its snapshot into an empty store is the same store") {
  plain_store source;
  fill(source);
  const bytes data = snapshot_of(source, 4096);

  plain_store target;
  auto summary = restore(target, 100, data);
  REQUIRE(summary);
  CHECK(summary->objects == 40 + 300 + 3200);
  CHECK(summary->created == summary->objects);
  CHECK(summary->updated == 0);
  CHECK(summary->removed == 0);
  CHECK(target.version() == 100);
  require_same(source, target);

  // Secondary indexes were built along: they answer as the source's do.
  target.view([&](const auto& tx) {
    auto by_service = tx.template find<task>(keel::store::by_service_id("svc-3"));
    REQUIRE(by_service);
    CHECK(by_service->size() == 80);
    source.view([&](const auto& stx) {
      CHECK(ids_of(*by_service) ==
            ids_of(*stx.template find<task>(keel::store::by_service_id("svc-3"))));
    });
    auto by_name = tx.template find<service>(keel::store::by_name("service 7"));
    REQUIRE(by_name);
    REQUIRE(by_name->size() == 1);
    CHECK((*by_name)[0]->id == "svc-7");
    auto t = tx.template get<task>("task-7");
    REQUIRE(t);
    CHECK(t->version == 30);
    CHECK(tx.template get<task>("task-8")->version == 20);
  });

  // And it writes back the same bytes.
  CHECK(snapshot_of(target) != data);  // Only the header's version differs...
  bytes again = snapshot_of(target);
  keel::detail::put_u64(again.data() + 9, 30);
  const std::uint32_t crc =
      keel::wal::crc32c(std::span<const std::byte>(again).first(again.size() - 4));
  keel::detail::put_u32(again.data() + again.size() - 4, crc);
  CHECK(again == data);  // ...the rest is identical.
}

TEST_CASE("a restore over another state sends watchers exactly the changes between them") {
  // Both stores share a history up to version 10, then diverge.
  auto common = [](plain_store& s) {
    write_at(s, 10, [](auto& tx) {
      for (int i = 0; i < 10; ++i)
        REQUIRE_FALSE(tx.create(make_task("t" + std::to_string(i), "s1", 1)));
      REQUIRE_FALSE(tx.create(make_service("sa", "alpha")));
      REQUIRE_FALSE(tx.create(make_service("sb", "beta")));
      REQUIRE_FALSE(tx.create(make_service("sc", "gamma")));
      REQUIRE_FALSE(tx.create(make_node("n1", 1)));
    });
  };
  plain_store leader;
  plain_store follower;
  common(leader);
  common(follower);
  write_at(leader, 20, [](auto& tx) {
    for (int i : {3, 4, 5}) {
      task t = *tx.template get<task>("t" + std::to_string(i));
      t.node_id = "n1";
      REQUIRE_FALSE(tx.update(t));
    }
    for (int i : {8, 9}) REQUIRE_FALSE(tx.template remove<task>("t" + std::to_string(i)));
    REQUIRE_FALSE(tx.create(make_task("u1", "s1", 2)));
    REQUIRE_FALSE(tx.create(make_task("u2", "s1", 3)));
    // sb and sc swap names: a unique index that only the final state satisfies.
    service b = *tx.template get<service>("sb");
    service c = *tx.template get<service>("sc");
    b.name = "tmp";
    REQUIRE_FALSE(tx.update(b));
    c.name = "beta";
    REQUIRE_FALSE(tx.update(c));
    b = *tx.template get<service>("sb");
    b.name = "gamma";
    REQUIRE_FALSE(tx.update(b));
    REQUIRE_FALSE(tx.template remove<node>("n1"));
  });
  // The follower wrote things of its own that the snapshot overrides.
  write_at(follower, 15, [](auto& tx) {
    REQUIRE_FALSE(tx.create(make_task("f1", "s9", 1)));
    task t = *tx.template get<task>("t0");
    t.slot = 42;
    REQUIRE_FALSE(tx.update(t));
  });
  const bytes data = snapshot_of(leader);

  auto w = follower.watch(keel::store::accept_all{}, 100);
  auto summary = restore(follower, 25, data);
  REQUIRE(summary);
  CHECK(follower.version() == 25);
  require_same(leader, follower);

  std::map<change_kind, std::set<std::string>> seen;
  std::size_t events = 0;
  while (auto c = w.try_next()) {
    ++events;
    std::visit(
        [&](const auto& p) {
          using T = std::remove_const_t<typename std::decay_t<decltype(p)>::element_type>;
          seen[c->kind()].insert(std::string(object_traits<T>::table) + "/" +
                                 std::string(object_traits<T>::id(*c->template object_as<T>())));
        },
        c->after);
  }
  using set = std::set<std::string>;
  CHECK(seen[change_kind::create] == set{"task/u1", "task/u2"});
  CHECK(seen[change_kind::update] ==
        set{"task/t0", "task/t3", "task/t4", "task/t5", "service/sb", "service/sc"});
  CHECK(seen[change_kind::remove] == set{"task/t8", "task/t9", "task/f1", "node/n1"});
  CHECK(events == 12);  // One per object, nothing for t1, t2, t6, t7 or sa.
  CHECK(summary->objects == 13);
  CHECK(summary->created == 2);
  CHECK(summary->updated == 6);
  CHECK(summary->removed == 4);
}

TEST_CASE("restoring an empty snapshot empties the store") {
  plain_store empty;
  const bytes data = snapshot_of(empty);
  plain_store s;
  small_state(s);
  auto summary = restore(s, 6, data);
  REQUIRE(summary);
  CHECK(summary->removed == 4);
  CHECK(s.begin_read().count<task>() == 0);
  CHECK(s.begin_read().count<service>() == 0);
  CHECK(s.begin_read().count<node>() == 0);
  CHECK(s.version() == 6);
}

TEST_CASE("a table the snapshot has no section for is emptied") {
  plain_store s;
  small_state(s);
  const bytes data =
      snapshot_builder(5).section("task", {encoded(make_task("t1", "s1", 1), 5)}).finish();
  auto summary = restore(s, 6, data);
  REQUIRE(summary);
  const auto tx = s.begin_read();
  CHECK(tx.count<task>() == 1);
  CHECK(tx.count<service>() == 0);
  CHECK(tx.count<node>() == 0);
  CHECK(summary->removed == 3);  // t2, s1 and n1; t1 is unchanged.
}

TEST_CASE("the sink gets pieces no larger than asked, and its error stops the write") {
  plain_store s;
  fill(s);
  const bytes whole = snapshot_of(s, std::size_t{1} << 30);

  for (std::size_t piece : {1u, 7u, 100u, 4096u, 65536u}) {
    bytes joined;
    std::size_t calls = 0;
    const auto ec = write_store_snapshot(
        s.begin_read(),
        [&](std::span<const std::byte> p) {
          ++calls;
          CHECK(!p.empty());
          CHECK(p.size() <= piece);
          joined.insert(joined.end(), p.begin(), p.end());
          return std::error_code{};
        },
        piece);
    REQUIRE_FALSE(ec);
    CHECK(joined == whole);
    CHECK(calls == (whole.size() + piece - 1) / piece);
  }

  std::size_t calls = 0;
  const auto ec = write_store_snapshot(
      s.begin_read(),
      [&](std::span<const std::byte>) {
        return ++calls == 3 ? make_error_code(errc::no_space) : std::error_code{};
      },
      1024);
  CHECK(ec == errc::no_space);
  CHECK(calls == 3);

  CHECK(write_store_snapshot(
            s.begin_read(), [](std::span<const std::byte>) { return std::error_code{}; }, 0) ==
        errc::invalid_argument);
}

TEST_CASE("a truncated snapshot is refused at every length") {
  plain_store source;
  small_state(source);
  const bytes data = snapshot_of(source);
  plain_store s;
  small_state(s);
  write_at(s, 7, [](auto& tx) { REQUIRE_FALSE(tx.template remove<task>("t2")); });
  for (std::size_t n = 0; n < data.size(); ++n) {
    INFO("length " << n);
    require_refused(s, std::span(data).first(n), 3);
  }
}

TEST_CASE("a snapshot with any byte changed is refused") {
  plain_store source;
  small_state(source);
  const bytes data = snapshot_of(source);
  plain_store s;
  small_state(s);
  write_at(s, 7, [](auto& tx) { REQUIRE_FALSE(tx.template remove<task>("t2")); });
  std::mt19937 random(20240601);
  for (std::size_t at = 0; at < data.size(); ++at) {
    bytes damaged = data;
    damaged[at] ^= static_cast<std::byte>(1 + random() % 255);
    INFO("byte " << at);
    require_refused(s, damaged);
  }
  // And a few with several bytes changed at once.
  for (int round = 0; round < 200; ++round) {
    bytes damaged = data;
    for (int k = 0; k < 4; ++k) damaged[random() % damaged.size()] ^= std::byte{0x5a};
    if (damaged == data) continue;
    require_refused(s, damaged);
  }
}

TEST_CASE("damaged snapshots with a matching CRC are refused or restored, never a crash") {
  // The CRC catches damage first; here it is recomputed, so that the
  // decoder itself meets the damage.
  plain_store source;
  small_state(source);
  write_at(source, 6, [](auto& tx) {
    REQUIRE_FALSE(tx.create(make_service("s2", "db", {{"tier", "back"}})));
    REQUIRE_FALSE(tx.create(make_task("t3", "s2", 1)));
  });
  const bytes data = snapshot_of(source);
  std::mt19937 random(7);
  int refused = 0;
  for (int round = 0; round < 3000; ++round) {
    bytes damaged = data;
    const int changes = 1 + static_cast<int>(random() % 3);
    for (int k = 0; k < changes; ++k) {
      damaged[random() % (damaged.size() - 4)] = static_cast<std::byte>(random() % 256);
    }
    const auto body = std::span<const std::byte>(damaged).first(damaged.size() - 4);
    keel::detail::put_u32(damaged.data() + damaged.size() - 4, keel::wal::crc32c(body));
    INFO("round " << round);
    plain_store s;
    small_state(s);
    const bytes before = snapshot_of(s);
    auto r = restore(s, 10, damaged, 1 + random() % 64);
    if (r) {
      CHECK(s.version() == 10);
      CHECK(r->objects == s.begin_read().count<task>() + s.begin_read().count<service>() +
                              s.begin_read().count<node>());
    } else {
      ++refused;
      CHECK(s.version() == 5);
      CHECK(snapshot_of(s) == before);
    }
  }
  CHECK(refused > 2000);  // Most damage breaks the format or an object.
}

TEST_CASE("hand-made snapshots that break the format are refused") {
  plain_store s;
  small_state(s);
  const std::string t1 = encoded(make_task("t1", "s1", 1), 5);
  const std::string t2 = encoded(make_task("t2", "s1", 2), 5);

  SECTION("a well-formed one is accepted (the builder is right)") {
    auto r = restore(s, 6, snapshot_builder(5).section("task", {t1, t2}).finish());
    REQUIRE(r);
    CHECK(r->objects == 2);
  }
  SECTION("another format") {
    require_refused(s, snapshot_builder(5, 2).section("task", {t1}).finish());
  }
  SECTION("another magic") {
    bytes data = snapshot_builder(5).section("task", {t1}).finish();
    data[0] = std::byte{'X'};
    require_refused(s, data);
  }
  SECTION("an unknown table") {
    require_refused(s, snapshot_builder(5).section("tusk", {t1}).finish());
  }
  SECTION("a table twice") {
    require_refused(s, snapshot_builder(5).section("task", {t1}).section("task", {t2}).finish());
  }
  SECTION("ids out of order") {
    require_refused(s, snapshot_builder(5).section("task", {t2, t1}).finish());
  }
  SECTION("an id twice") {
    require_refused(s, snapshot_builder(5).section("task", {t1, t1}).finish());
  }
  SECTION("an object the traits cannot decode") {
    const bytes data = snapshot_builder(5).section("task", {t1, "not a task"}).finish();
    const std::uint64_t v = s.version();
    CHECK(restore(s, 6, data).error() == errc::invalid_object);
    CHECK(s.version() == v);
    require_refused(s, data);
  }
  SECTION("an object of another table's type") {
    require_refused(s, snapshot_builder(5).section("node", {t1}).finish());
  }
  SECTION("a count above the objects that follow") {
    require_refused(s, snapshot_builder(5).section("task", {t1, t2}, 3).finish());
  }
  SECTION("a count below the objects that follow") {
    require_refused(s, snapshot_builder(5).section("task", {t1, t2}, 1).finish());
  }
  SECTION("bytes after the end") {
    require_refused(s, snapshot_builder(5).section("task", {t1}).finish("x"));
  }
  SECTION("an object larger than the limit") {
    const bytes data = snapshot_builder(5).section("task", {t1}).finish();
    CHECK(restore(s, 6, data, 1000, t1.size() - 1).error() == errc::corrupt_snapshot);
    require_refused(s, data, 1000, t1.size() - 1);
    CHECK(restore(s, 6, data, 1000, t1.size()));  // The limit itself is fine.
  }
  SECTION("a huge stated object length") {
    std::string stream = "KEELSTOR";
    stream.push_back('\1');
    stream.append(8, '\0');
    stream += "T";
    stream.append("\4\0\0\0task", 8);
    stream.append("\1\0\0\0\0\0\0\0", 8);
    stream.append("\xff\xff\xff\x7f", 4);  // 2 GiB follow, says the stream; a few bytes do.
    stream.append("abc");
    require_refused(s, to_bytes(stream), 1000, ~std::size_t{0});
  }
  SECTION("two objects with one unique name") {
    require_refused(s, snapshot_builder(5)
                           .section("service", {encoded(make_service("s1", "web"), 5),
                                                encoded(make_service("s2", "web"), 5)})
                           .finish());
  }
  SECTION("an object without a value a required index needs") {
    require_refused(
        s, snapshot_builder(5).section("service", {encoded(make_service("s1", ""), 5)}).finish());
  }
  SECTION("a store version above the index it is restored at") {
    const bytes data = snapshot_builder(100).section("task", {t1}).finish();
    CHECK(restore(s, 99, data).error() == errc::corrupt_snapshot);
    require_refused(s, data);  // Restored at version 15: refused as well.
    CHECK(restore(s, 100, data));
  }
}

TEST_CASE("a restore at a version not above the store's changes nothing") {
  plain_store source;
  small_state(source);
  const bytes data = snapshot_of(source);
  plain_store s;
  small_state(s);
  write_at(s, 8, [](auto& tx) { REQUIRE_FALSE(tx.template remove<task>("t2")); });
  const bytes before = snapshot_of(s);
  auto w = s.watch(keel::store::accept_all{});
  for (std::uint64_t v : {0u, 5u, 8u}) {
    CHECK(restore(s, v, data).error() == errc::invalid_argument);
  }
  CHECK(s.version() == 8);
  CHECK(snapshot_of(s) == before);
  CHECK_FALSE(w.try_next());
}

TEST_CASE("a source's error is returned and the store is unchanged") {
  plain_store source;
  fill(source);
  const bytes data = snapshot_of(source);
  plain_store s;
  small_state(s);
  std::size_t at = 0;
  auto failing = [&](std::span<std::byte> out) -> keel::result<std::size_t> {
    if (at > data.size() / 2) return make_error_code(errc::wal_io_error);
    const std::size_t n = std::min(out.size(), data.size() - at);
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(at), n, out.begin());
    at += n;
    return n;
  };
  CHECK(restore_store_snapshot(s, 100, failing).error() == errc::wal_io_error);
  CHECK(s.version() == 5);
  CHECK(s.begin_read().count<task>() == 2);
}

TEST_CASE("a snapshot streams through a snapshot file on the simulated disk") {
  plain_store leader;
  fill(leader);
  keel::sim::disk disk;
  using fs_type = keel::sim::disk_file_system;
  keel::wal::snapshot_store<fs_type> files(disk.file_system(), "/snapshots");
  REQUIRE_FALSE(files.cleanup());

  // The leader (or any member taking a snapshot): write the store into a file
  // at the applied index; the metadata is the node layer's (the conf state).
  const std::uint64_t index = 40;
  const std::uint64_t term = 3;
  {
    const bytes metadata = to_bytes("conf");
    auto writer = files.begin(index, term, metadata);
    REQUIRE(writer);
    const auto ec = write_store_snapshot(
        leader.begin_read(),
        [&](std::span<const std::byte> piece) { return writer->write(piece); });
    REQUIRE_FALSE(ec);
    REQUIRE_FALSE(writer->commit());
  }

  // A follower far behind: open the file (the transport would have received
  // it into the same directory), check it, and restore from it in pieces.
  plain_store follower;
  small_state(follower);
  auto reader = files.open(index, term);
  REQUIRE(reader);
  REQUIRE_FALSE(reader->verify());
  auto summary = restore_store_snapshot(
      follower, reader->index(), [&](std::span<std::byte> out) { return reader->read(out); });
  REQUIRE(summary);
  CHECK(follower.version() == index);
  CHECK(summary->objects == 3540);
  require_same(leader, follower);
}
