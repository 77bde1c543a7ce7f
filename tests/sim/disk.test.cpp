// The simulated disk: what survives a crash (file syncs, mapping syncs, torn
// writes, directory syncs), capacity, injected failures and power cuts, the
// mapping bug catchers, and a crash-point enumeration like the WAL's tests.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/sim/disk.hpp"
#include "keel/wal/file_system.hpp"

namespace {

using keel::sim::disk;
using keel::sim::disk_file;
using keel::sim::disk_file_system;
using keel::sim::disk_mapping;
using keel::sim::op;
using keel::wal::open_mode;

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::error_code error(std::errc e) { return std::make_error_code(e); }

disk_file open(disk_file_system fs, const std::string& path, open_mode mode) {
  auto file = fs.open(path, mode);
  REQUIRE(file);
  return std::move(*file);
}

disk_file create(disk_file_system fs, const std::string& path) {
  return open(fs, path, open_mode::create);
}

/// Creates path with `content`, syncs it and its directory.
void make_durable_file(disk& d, const std::string& path, std::string_view content) {
  auto fs = d.file_system();
  disk_file f = create(fs, path);
  REQUIRE_FALSE(f.write(0, bytes_of(content)));
  REQUIRE_FALSE(f.sync());
  const std::string dir = path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
  REQUIRE_FALSE(fs.sync_directory(dir));
}

std::string read(disk_file& f, std::uint64_t offset, std::size_t length) {
  std::string out(length, '\0');
  auto n = f.read(offset, std::as_writable_bytes(std::span(out.data(), out.size())));
  REQUIRE(n);
  out.resize(*n);
  return out;
}

void write_to(disk_mapping& m, std::uint64_t offset, std::string_view text) {
  REQUIRE(offset + text.size() <= m.size());
  std::memcpy(m.data() + offset, text.data(), text.size());
}

}  // namespace

// --- the policy --------------------------------------------------------------

TEST_CASE("the simulated disk satisfies the file system policy") {
  STATIC_REQUIRE(keel::wal::file_system<disk_file_system>);
  STATIC_REQUIRE(keel::wal::file<disk_file>);
  STATIC_REQUIRE(keel::wal::file_mapping<disk_mapping>);
  STATIC_REQUIRE(std::is_same_v<keel::wal::mapping_of<disk_file_system>, disk_mapping>);
  STATIC_REQUIRE(std::is_nothrow_copy_constructible_v<disk_file_system>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<disk>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<disk>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<disk_file>);
}

TEST_CASE("open creates only new files and opens only existing ones") {
  disk d;
  auto fs = d.file_system();
  REQUIRE(fs.open("/a", open_mode::read_only).error() == std::errc::no_such_file_or_directory);
  REQUIRE(fs.open("/a", open_mode::read_write).error() == std::errc::no_such_file_or_directory);
  REQUIRE(fs.open("/a", open_mode::create));
  REQUIRE(fs.open("/a", open_mode::create).error() == std::errc::file_exists);
  REQUIRE(fs.open("/a", open_mode::read_only));
  REQUIRE(fs.open("/dir/a", open_mode::create).error() == std::errc::no_such_file_or_directory);
  REQUIRE(fs.open("/a/b", open_mode::create).error() == std::errc::not_a_directory);
  REQUIRE(fs.open("relative", open_mode::create).error() == std::errc::invalid_argument);
  REQUIRE_FALSE(fs.make_directory("/dir"));
  REQUIRE(fs.open("/dir", open_mode::read_only).error() == std::errc::is_a_directory);
  REQUIRE(fs.open("/dir/a", open_mode::create));
  REQUIRE(fs.make_directory("/a") == std::errc::file_exists);
  REQUIRE_FALSE(fs.make_directory("/dir"));
}

TEST_CASE("reads see writes at once, and stop at the end of the file") {
  disk d;
  auto fs = d.file_system();
  disk_file f = create(fs, "/a");
  REQUIRE_FALSE(f.write(0, bytes_of("hello")));
  REQUIRE_FALSE(f.write(7, bytes_of("world")));  // Past the end: the gap reads as zeros.
  REQUIRE(f.size().value() == 12);
  REQUIRE(read(f, 0, 100) == std::string("hello\0\0world", 12));
  REQUIRE(read(f, 12, 4).empty());
  disk_file other = open(fs, "/a", open_mode::read_only);
  REQUIRE(read(other, 7, 5) == "world");
  REQUIRE(d.read_all("/a") == std::string("hello\0\0world", 12));
}

TEST_CASE("a read-only file refuses writes, size changes and mappings") {
  disk d;
  make_durable_file(d, "/a", "abc");
  disk_file f = open(d.file_system(), "/a", open_mode::read_only);
  REQUIRE(f.write(0, bytes_of("x")) == std::errc::bad_file_descriptor);
  REQUIRE(f.allocate(0, 10) == std::errc::bad_file_descriptor);
  REQUIRE(f.truncate(0) == std::errc::bad_file_descriptor);
  REQUIRE(f.map(3).error() == std::errc::permission_denied);
  REQUIRE(d.read_all("/a") == "abc");
}

TEST_CASE("list names the files of a directory, not its subdirectories") {
  disk d;
  auto fs = d.file_system();
  REQUIRE_FALSE(fs.make_directory("/wal"));
  REQUIRE_FALSE(fs.make_directory("/wal/sub"));
  create(fs, "/wal/1.wal");
  create(fs, "/wal/2.wal");
  create(fs, "/wal/sub/3.wal");
  create(fs, "/top");
  auto names = fs.list("/wal");
  REQUIRE(names);
  std::sort(names->begin(), names->end());
  REQUIRE(*names == std::vector<std::string>{"1.wal", "2.wal"});
  REQUIRE(fs.list("/").value() == std::vector<std::string>{"top"});
  REQUIRE(fs.list("/none").error() == std::errc::no_such_file_or_directory);
  REQUIRE(fs.list("/top").error() == std::errc::not_a_directory);
}

TEST_CASE("rename replaces a file, and refuses directories and missing sources") {
  disk d;
  auto fs = d.file_system();
  REQUIRE_FALSE(fs.make_directory("/dir"));
  make_durable_file(d, "/a", "a");
  make_durable_file(d, "/b", "b");
  REQUIRE(fs.rename("/none", "/c") == std::errc::no_such_file_or_directory);
  REQUIRE(fs.rename("/a", "/dir") == std::errc::is_a_directory);
  REQUIRE(fs.rename("/dir", "/dir2") == std::errc::operation_not_supported);
  REQUIRE(fs.rename("/a", "/none/a") == std::errc::no_such_file_or_directory);
  REQUIRE_FALSE(fs.rename("/a", "/a"));
  REQUIRE_FALSE(fs.rename("/a", "/b"));
  REQUIRE(d.read_all("/b") == "a");
  REQUIRE_FALSE(d.exists("/a"));
  REQUIRE_FALSE(fs.rename("/b", "/dir/b"));
  REQUIRE(fs.list("/dir").value() == std::vector<std::string>{"b"});
  REQUIRE(fs.remove("/dir") == std::errc::is_a_directory);
  REQUIRE(fs.sync_directory("/none") == std::errc::no_such_file_or_directory);
  REQUIRE(fs.sync_directory("/dir/b") == std::errc::not_a_directory);
}

// --- file contents at a crash -------------------------------------------------

TEST_CASE("a write without a sync is lost at a crash") {
  disk d;
  make_durable_file(d, "/a", "");
  {
    disk_file f = open(d.file_system(), "/a", open_mode::read_write);
    REQUIRE_FALSE(f.write(0, bytes_of("lost")));
    REQUIRE(d.unsynced_bytes("/a") == 4);
  }
  d.crash();
  REQUIRE(d.exists("/a"));
  REQUIRE(d.file_size("/a") == 0);
}

TEST_CASE("a synced write survives a crash, later writes do not") {
  disk d;
  make_durable_file(d, "/a", "");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  REQUIRE_FALSE(f.write(0, bytes_of("kept")));
  REQUIRE_FALSE(f.sync());
  REQUIRE(d.unsynced_bytes("/a") == 0);
  REQUIRE_FALSE(f.write(2, bytes_of("LOST")));
  REQUIRE(d.read_all("/a") == "keLOST");
  d.crash();
  REQUIRE(d.read_all("/a") == "kept");
}

TEST_CASE("a truncate is lost at a crash unless synced") {
  disk d;
  make_durable_file(d, "/a", "0123456789");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  REQUIRE_FALSE(f.truncate(4));
  REQUIRE(d.read_all("/a") == "0123");
  d.crash();
  REQUIRE(d.read_all("/a") == "0123456789");

  disk_file g = open(d.file_system(), "/a", open_mode::read_write);
  REQUIRE_FALSE(g.truncate(4));
  REQUIRE_FALSE(g.sync());
  d.crash();
  REQUIRE(d.read_all("/a") == "0123");
}

TEST_CASE("allocate extends with zeros, keeps existing bytes and is durable after a sync") {
  disk d;
  make_durable_file(d, "/a", "abc");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  REQUIRE_FALSE(f.allocate(0, 8));
  REQUIRE(d.read_all("/a") == std::string("abc\0\0\0\0\0", 8));
  REQUIRE_FALSE(f.allocate(2, 2));  // Inside the file: nothing changes.
  REQUIRE(f.size().value() == 8);
  REQUIRE(f.allocate(0, 0) == std::errc::invalid_argument);

  d.crash();
  REQUIRE(d.file_size("/a") == 3);

  disk_file g = open(d.file_system(), "/a", open_mode::read_write);
  REQUIRE_FALSE(g.allocate(4, 4));
  REQUIRE_FALSE(g.sync());
  d.crash();
  REQUIRE(d.read_all("/a") == std::string("abc\0\0\0\0\0", 8));
}

TEST_CASE("a torn crash keeps exactly the first bytes of the unsynced region") {
  disk d;
  make_durable_file(d, "/a", "aaaaaaaa");
  make_durable_file(d, "/b", "bbbb");
  make_durable_file(d, "/c", "cccc");
  auto fs = d.file_system();
  {
    disk_file a = open(fs, "/a", open_mode::read_write);
    REQUIRE_FALSE(a.write(2, bytes_of("XYZW")));  // Differs from offset 2.
    disk_file b = open(fs, "/b", open_mode::read_write);
    REQUIRE_FALSE(b.write(4, bytes_of("12345")));  // Appends past the durable size.
    disk_file c = open(fs, "/c", open_mode::read_write);
    REQUIRE_FALSE(c.write(3, bytes_of("!")));  // Shorter than the tear.
  }
  d.crash(3);
  REQUIRE(d.read_all("/a") == "aaXYZaaa");
  REQUIRE(d.read_all("/b") == "bbbb123");
  REQUIRE(d.read_all("/c") == "ccc!");
  REQUIRE(d.unsynced_bytes("/a") == 0);
}

TEST_CASE("a torn crash does not bring back a truncated tail") {
  disk d;
  make_durable_file(d, "/a", "abcdef");
  {
    disk_file a = open(d.file_system(), "/a", open_mode::read_write);
    REQUIRE_FALSE(a.truncate(2));
  }
  d.crash(100);
  REQUIRE(d.read_all("/a") == "abcdef");
}

// --- mappings ----------------------------------------------------------------

TEST_CASE("writes through a mapping are visible to reads at once") {
  disk d;
  make_durable_file(d, "/a", "........");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  auto m = f.map(8);
  REQUIRE(m);
  REQUIRE(m->size() == 8);
  write_to(*m, 2, "map");
  REQUIRE(read(f, 0, 8) == "..map...");
  REQUIRE(d.read_all("/a") == "..map...");
  REQUIRE(d.unsynced_bytes("/a") == 3);
  REQUIRE_FALSE(f.write(6, bytes_of("w")));
  REQUIRE(static_cast<char>(m->data()[6]) == 'w');
}

TEST_CASE("a mapping sync keeps exactly its range at a crash") {
  disk d;
  make_durable_file(d, "/a", "........");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  disk_mapping m = std::move(f.map(8).value());
  write_to(m, 0, "abcdefgh");
  REQUIRE_FALSE(m.sync(2, 3));
  REQUIRE(d.unsynced_bytes("/a") == 5);
  d.crash();
  REQUIRE(d.read_all("/a") == "..cde...");
}

TEST_CASE("a mapping sync makes the mapped size durable") {
  disk d;
  make_durable_file(d, "/a", "");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  REQUIRE_FALSE(f.allocate(0, 6));  // Not synced: the durable size is still 0.
  disk_mapping m = std::move(f.map(6).value());
  write_to(m, 0, "xy");
  REQUIRE_FALSE(m.sync(0, 1));
  d.crash();
  REQUIRE(d.read_all("/a") == std::string("x\0\0\0\0\0", 6));
}

TEST_CASE("a mapping sync outside the mapping is refused") {
  disk d;
  make_durable_file(d, "/a", "abcd");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  disk_mapping m = std::move(f.map(4).value());
  REQUIRE(m.sync(2, 3) == std::errc::invalid_argument);
  REQUIRE(m.sync(5, 0) == std::errc::invalid_argument);
  REQUIRE_FALSE(m.sync(4, 0));
  REQUIRE(f.map(5).error() == std::errc::invalid_argument);
}

TEST_CASE("a mapped file cannot grow or shrink under its mapping") {
  disk d;
  make_durable_file(d, "/a", "abcdefgh");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  {
    disk_mapping m = std::move(f.map(6).value());
    const std::uint64_t before = d.operations();
    REQUIRE(f.allocate(0, 16) == std::errc::device_or_resource_busy);
    REQUIRE(f.truncate(16) == std::errc::device_or_resource_busy);
    REQUIRE(f.write(7, bytes_of("xyz")) == std::errc::device_or_resource_busy);
    REQUIRE(f.truncate(5) == std::errc::device_or_resource_busy);
    REQUIRE(d.operations() == before + 4);  // Refused calls are still operations.
    REQUIRE(d.read_all("/a") == "abcdefgh");
    REQUIRE_FALSE(f.allocate(0, 8));  // Inside the file: no growth.
    REQUIRE_FALSE(f.truncate(6));     // Not below the mapping.
    REQUIRE(d.read_all("/a") == "abcdef");
  }
  REQUIRE_FALSE(f.allocate(0, 16));  // The mapping is gone.
  REQUIRE(f.size().value() == 16);
}

TEST_CASE("moving a mapping keeps it attached and leaves an empty one") {
  disk d;
  make_durable_file(d, "/a", "abcd");
  disk_file f = open(d.file_system(), "/a", open_mode::read_write);
  disk_mapping m = std::move(f.map(4).value());
  disk_mapping moved = std::move(m);
  REQUIRE(m.size() == 0);  // NOLINT(bugprone-use-after-move): moved-from state is specified.
  REQUIRE(m.data() == nullptr);
  REQUIRE(moved.size() == 4);
  REQUIRE(f.allocate(0, 8) == std::errc::device_or_resource_busy);
  moved = disk_mapping{};
  REQUIRE_FALSE(f.allocate(0, 8));
  REQUIRE(f.map(0).value().size() == 0);
}

// --- the namespace at a crash ---------------------------------------------------

TEST_CASE("a created file vanishes at a crash unless its directory was synced") {
  disk d;
  auto fs = d.file_system();
  create(fs, "/a");
  d.crash();
  REQUIRE_FALSE(d.exists("/a"));

  disk_file b = create(fs, "/b");
  REQUIRE_FALSE(fs.sync_directory("/"));
  d.crash();
  REQUIRE(d.exists("/b"));
  REQUIRE(d.file_size("/b") == 0);
}

TEST_CASE("a rename reverts at a crash unless the directory was synced") {
  disk d;
  auto fs = d.file_system();
  make_durable_file(d, "/old", "old");
  make_durable_file(d, "/tmp", "new");
  REQUIRE_FALSE(fs.rename("/tmp", "/old"));
  REQUIRE(d.read_all("/old") == "new");
  REQUIRE_FALSE(d.exists("/tmp"));
  d.crash();
  REQUIRE(d.read_all("/old") == "old");
  REQUIRE(d.read_all("/tmp") == "new");

  REQUIRE_FALSE(fs.rename("/tmp", "/old"));
  REQUIRE_FALSE(fs.sync_directory("/"));
  d.crash();
  REQUIRE(d.read_all("/old") == "new");
  REQUIRE_FALSE(d.exists("/tmp"));
}

TEST_CASE("a removed file comes back at a crash with its durable content") {
  disk d;
  auto fs = d.file_system();
  make_durable_file(d, "/a", "durable");
  {
    disk_file f = open(fs, "/a", open_mode::read_write);
    REQUIRE_FALSE(f.write(0, bytes_of("DURABLE and more")));
  }
  REQUIRE_FALSE(fs.remove("/a"));
  REQUIRE_FALSE(d.exists("/a"));
  REQUIRE(fs.remove("/a") == std::errc::no_such_file_or_directory);
  d.crash();
  REQUIRE(d.read_all("/a") == "durable");

  REQUIRE_FALSE(fs.remove("/a"));
  REQUIRE_FALSE(fs.sync_directory("/"));
  d.crash();
  REQUIRE_FALSE(d.exists("/a"));
}

TEST_CASE("a removed file stays readable through a file opened before") {
  disk d;
  auto fs = d.file_system();
  make_durable_file(d, "/a", "still here");
  disk_file f = open(fs, "/a", open_mode::read_only);
  REQUIRE_FALSE(fs.remove("/a"));
  REQUIRE_FALSE(fs.sync_directory("/"));
  REQUIRE(read(f, 0, 100) == "still here");
  disk_file g = create(fs, "/a");  // A new file under the old name.
  REQUIRE(g.size().value() == 0);
  REQUIRE(read(f, 0, 100) == "still here");
}

TEST_CASE("a directory made without syncing its parent vanishes with its files") {
  disk d;
  auto fs = d.file_system();
  REQUIRE_FALSE(fs.make_directory("/wal"));
  make_durable_file(d, "/wal/1.wal", "records");  // Syncs /wal, not /.
  d.crash();
  REQUIRE_FALSE(d.exists("/wal"));
  REQUIRE_FALSE(d.exists("/wal/1.wal"));

  REQUIRE_FALSE(fs.make_directory("/wal"));
  REQUIRE_FALSE(fs.sync_directory("/"));
  make_durable_file(d, "/wal/1.wal", "records");
  d.crash();
  REQUIRE(d.read_all("/wal/1.wal") == "records");
}

TEST_CASE("a directory sync makes only that directory's entries durable") {
  disk d;
  auto fs = d.file_system();
  REQUIRE_FALSE(fs.make_directory("/x"));
  REQUIRE_FALSE(fs.make_directory("/y"));
  REQUIRE_FALSE(fs.sync_directory("/"));
  create(fs, "/x/a");
  create(fs, "/y/b");
  REQUIRE_FALSE(fs.sync_directory("/x"));
  d.crash();
  REQUIRE(d.exists("/x/a"));
  REQUIRE_FALSE(d.exists("/y/b"));
}

TEST_CASE("the WAL's segment protocol survives a crash") {
  disk d;
  auto fs = d.file_system();
  REQUIRE_FALSE(fs.make_directory("/wal"));
  REQUIRE_FALSE(fs.sync_directory("/"));
  const std::string tmp = "/wal/0000000000000001-0000000000000001.wal.tmp";
  const std::string final = "/wal/0000000000000001-0000000000000001.wal";
  {
    disk_file f = create(fs, tmp);
    REQUIRE_FALSE(f.allocate(0, 64));
    REQUIRE_FALSE(f.sync());
    REQUIRE_FALSE(fs.rename(tmp, final));
    REQUIRE_FALSE(fs.sync_directory("/wal"));
    disk_mapping m = std::move(f.map(64).value());
    write_to(m, 0, "record-1");
    REQUIRE_FALSE(m.sync(0, 8));
    write_to(m, 8, "record-2");  // Not synced.
  }
  d.crash();
  REQUIRE(fs.list("/wal").value() == std::vector<std::string>{final.substr(5)});
  REQUIRE(d.read_all(final) == "record-1" + std::string(56, '\0'));

  REQUIRE_FALSE(fs.remove(final));
  REQUIRE_FALSE(fs.sync_directory("/wal"));
  d.crash();
  REQUIRE(fs.list("/wal").value().empty());
}

// --- capacity -------------------------------------------------------------------

TEST_CASE("growing past the capacity fails with ENOSPC and changes nothing") {
  disk d;
  d.set_capacity(10);
  auto fs = d.file_system();
  disk_file a = create(fs, "/a");
  REQUIRE_FALSE(a.allocate(0, 6));
  disk_file b = create(fs, "/b");
  REQUIRE_FALSE(b.write(0, bytes_of("1234")));
  REQUIRE(d.used_bytes() == 10);

  REQUIRE(b.allocate(0, 5) == std::errc::no_space_on_device);
  REQUIRE(b.write(2, bytes_of("abc")) == std::errc::no_space_on_device);
  REQUIRE(a.truncate(7) == std::errc::no_space_on_device);
  REQUIRE(d.read_all("/a") == std::string(6, '\0'));
  REQUIRE(d.read_all("/b") == "1234");
  REQUIRE(d.used_bytes() == 10);

  REQUIRE_FALSE(b.write(1, bytes_of("xy")));  // Inside the file: no growth.
  REQUIRE(d.read_all("/b") == "1xy4");
}

TEST_CASE("removing a file frees its space once no open file holds it") {
  disk d;
  d.set_capacity(8);
  auto fs = d.file_system();
  {
    disk_file a = create(fs, "/a");
    REQUIRE_FALSE(a.allocate(0, 8));
    REQUIRE_FALSE(fs.remove("/a"));
    REQUIRE(d.used_bytes() == 8);  // Still open.
  }
  REQUIRE(d.used_bytes() == 0);
  disk_file b = create(fs, "/b");
  REQUIRE_FALSE(b.allocate(0, 8));
}

// --- injected failures ---------------------------------------------------------

TEST_CASE("operations are numbered from 0, refused ones included") {
  disk d;
  auto fs = d.file_system();
  REQUIRE(d.operations() == 0);
  disk_file f = create(fs, "/a");                     // 0
  REQUIRE_FALSE(f.write(0, bytes_of("x")));           // 1
  REQUIRE(fs.open("/a", open_mode::create).error());  // 2
  REQUIRE(fs.open("/a", open_mode::read_only));       // not an operation
  REQUIRE(f.size().value() == 1);                     // not an operation
  REQUIRE_FALSE(f.sync());                            // 3
  REQUIRE_FALSE(fs.sync_directory("/"));              // 4
  REQUIRE(fs.list("/"));                              // not an operation
  REQUIRE(d.operations() == 5);
}

TEST_CASE("fail_operation fails exactly that operation, without effect") {
  disk d;
  auto fs = d.file_system();
  disk_file f = create(fs, "/a");  // 0
  d.fail_operation(2, error(std::errc::io_error));
  REQUIRE_FALSE(f.write(0, bytes_of("one")));                   // 1
  REQUIRE(f.write(0, bytes_of("two")) == std::errc::io_error);  // 2
  REQUIRE(d.read_all("/a") == "one");
  REQUIRE_FALSE(f.write(0, bytes_of("six")));  // 3
  REQUIRE(d.read_all("/a") == "six");

  d.fail_operation(4, error(std::errc::no_space_on_device));
  REQUIRE(fs.rename("/a", "/b") == std::errc::no_space_on_device);  // 4
  REQUIRE(d.exists("/a"));
  REQUIRE_FALSE(d.exists("/b"));
}

TEST_CASE("fail_next fails the next operations of one kind, in order") {
  disk d;
  auto fs = d.file_system();
  disk_file f = create(fs, "/a");
  REQUIRE_FALSE(fs.sync_directory("/"));
  d.fail_next(op::sync, error(std::errc::io_error));
  d.fail_next(op::sync, error(std::errc::no_space_on_device));
  REQUIRE_FALSE(f.write(0, bytes_of("data")));
  REQUIRE(f.sync() == std::errc::io_error);
  REQUIRE(f.sync() == std::errc::no_space_on_device);
  REQUIRE(d.unsynced_bytes("/a") == 4);  // The failed syncs had no effect.
  REQUIRE_FALSE(f.sync());
  REQUIRE(d.unsynced_bytes("/a") == 0);

  d.fail_next(op::map_sync, error(std::errc::io_error));
  disk_mapping m = std::move(f.map(4).value());
  write_to(m, 0, "DATA");
  REQUIRE(m.sync(0, 4) == std::errc::io_error);
  REQUIRE(d.unsynced_bytes("/a") == 4);
  REQUIRE_FALSE(m.sync(0, 4));

  d.fail_next(op::create, error(std::errc::no_space_on_device));
  REQUIRE(fs.open("/b", open_mode::create).error() == std::errc::no_space_on_device);
  REQUIRE_FALSE(d.exists("/b"));
  REQUIRE(fs.open("/b", open_mode::create));
}

TEST_CASE("after freeze_after every operation fails with EIO until a crash") {
  disk d;
  auto fs = d.file_system();
  make_durable_file(d, "/a", "abc");  // Operations 0 to 3.
  disk_file f = open(fs, "/a", open_mode::read_write);
  d.freeze_after(5);
  REQUIRE_FALSE(d.frozen());
  REQUIRE_FALSE(f.write(0, bytes_of("X")));  // 4
  REQUIRE(d.frozen());
  REQUIRE(f.sync() == std::errc::io_error);  // 5
  REQUIRE(f.write(1, bytes_of("Y")) == std::errc::io_error);
  REQUIRE(fs.remove("/a") == std::errc::io_error);
  REQUIRE(fs.make_directory("/d") == std::errc::io_error);
  REQUIRE(fs.open("/b", open_mode::create).error() == std::errc::io_error);
  REQUIRE(read(f, 0, 3) == "Xbc");  // Reads still work.
  REQUIRE(d.operations() == 10);

  d.crash();
  REQUIRE_FALSE(d.frozen());
  REQUIRE(d.read_all("/a") == "abc");
  disk_file g = open(fs, "/a", open_mode::read_write);
  REQUIRE_FALSE(g.write(0, bytes_of("Z")));
}

TEST_CASE("files and mappings opened before a crash are dead after it") {
  disk d;
  auto fs = d.file_system();
  make_durable_file(d, "/a", "abcd");
  disk_file f = open(fs, "/a", open_mode::read_write);
  disk_mapping m = std::move(f.map(4).value());
  write_to(m, 0, "WXYZ");
  d.crash();

  REQUIRE(f.size().error() == std::errc::io_error);
  REQUIRE(f.write(0, bytes_of("x")) == std::errc::io_error);
  REQUIRE(f.sync() == std::errc::io_error);
  REQUIRE(f.map(4).error() == std::errc::io_error);
  std::byte buffer[4];
  REQUIRE(f.read(0, buffer).error() == std::errc::io_error);

  // The detached mapping's memory is still valid but belongs to no file.
  write_to(m, 0, "gone");
  REQUIRE(m.sync(0, 4) == std::errc::io_error);
  REQUIRE(d.read_all("/a") == "abcd");
  disk_file g = open(fs, "/a", open_mode::read_write);
  REQUIRE_FALSE(g.allocate(0, 64));  // The dead mapping pins nothing.
}

TEST_CASE("a flipped byte is corrupt in both the current and the durable content") {
  disk d;
  make_durable_file(d, "/a", "abc");
  d.flip_byte("/a", 1);
  REQUIRE(d.read_all("/a") == "acc");
  d.crash();
  REQUIRE(d.read_all("/a") == "acc");
  REQUIRE_THROWS_AS(d.flip_byte("/a", 3), std::invalid_argument);
  REQUIRE_THROWS_AS(d.read_all("/none"), std::invalid_argument);
}

// --- crash-point enumeration ----------------------------------------------------

namespace {

/// Replaces /d/data with `content` through a temporary file, as a snapshot
/// store does; stops at the first error. `sync_file` false is the classic bug.
std::error_code replace(disk_file_system fs, std::string_view content, bool sync_file) {
  auto f = fs.open("/d/data.tmp", open_mode::create);
  if (!f) return f.error();
  if (auto ec = f->write(0, bytes_of(content))) return ec;
  if (sync_file) {
    if (auto ec = f->sync()) return ec;
  }
  if (auto ec = fs.rename("/d/data.tmp", "/d/data")) return ec;
  return fs.sync_directory("/d");
}

/// Runs `replace` with the power cut before each of its operations in turn,
/// then crashes with a tear of `torn` bytes; returns what /d/data holds after
/// each crash (nullopt when it is missing). The last run is the one that
/// finished.
std::vector<std::optional<std::string>> crash_points(bool sync_file, std::uint64_t torn) {
  std::vector<std::optional<std::string>> outcomes;
  for (std::uint64_t cut = 0;; ++cut) {
    disk d;
    auto fs = d.file_system();
    REQUIRE_FALSE(fs.make_directory("/d"));
    REQUIRE_FALSE(fs.sync_directory("/"));
    make_durable_file(d, "/d/data", "old");
    d.freeze_after(d.operations() + cut);
    const std::error_code ec = replace(fs, "new content", sync_file);
    const bool finished = !ec;
    d.crash(torn);
    if (d.exists("/d/data")) {
      outcomes.emplace_back(d.read_all("/d/data"));
    } else {
      outcomes.emplace_back(std::nullopt);
    }
    if (finished) break;
  }
  return outcomes;
}

}  // namespace

TEST_CASE("every crash point of a careful replace leaves the old or the new content") {
  for (const std::uint64_t torn : {0, 4}) {
    const auto outcomes = crash_points(true, torn);
    REQUIRE(outcomes.size() == 6);  // Cut before each of the 5 operations, then none.
    REQUIRE(outcomes.back() == "new content");
    for (const auto& o : outcomes) {
      INFO("torn " << torn);
      REQUIRE((o == "old" || o == "new content"));
    }
  }
}

TEST_CASE("crash points catch a replace that renames before syncing the file") {
  const auto outcomes = crash_points(false, 0);
  REQUIRE(std::find(outcomes.begin(), outcomes.end(), std::optional<std::string>("")) !=
          outcomes.end());
  const auto torn = crash_points(false, 4);
  REQUIRE(std::find(torn.begin(), torn.end(), std::optional<std::string>("new ")) != torn.end());
}
