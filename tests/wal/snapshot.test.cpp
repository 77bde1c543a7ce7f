// Snapshot files and the snapshot store (keel/wal/snapshot_store.hpp): on the
// real disk, in a fresh directory under /tmp per test case; on the simulated
// disk (keel/sim/disk.hpp), cutting the power at every operation of a commit
// and of a resumable transfer; and, through a file system that runs out of
// space, how write errors surface.
#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "keel/sim/disk.hpp"
#include "keel/wal/crc32c.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/snapshot_file.hpp"
#include "keel/wal/snapshot_store.hpp"

namespace {

namespace wal = keel::wal;
using keel::errc;
using posix_store = wal::snapshot_store<wal::posix_file_system>;
using posix_reader = wal::snapshot_reader<wal::posix_file_system>;

/// A directory made with mkdtemp, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/keel-snapshot-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// splitmix64, for reproducible contents and garbage.
struct splitmix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  splitmix rng{seed};
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng.next() & 0xFF);
  return out;
}

std::vector<std::byte> bytes_of(std::string_view s) {
  const auto span = std::as_bytes(std::span(s.data(), s.size()));
  return {span.begin(), span.end()};
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Writes `content` in pieces whose sizes cycle through `pieces`.
template <class Writer>
void write_in_pieces(Writer& writer, std::span<const std::byte> content,
                     const std::vector<std::size_t>& pieces) {
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < content.size(); ++i) {
    const std::size_t n = std::min(pieces[i % pieces.size()], content.size() - offset);
    REQUIRE_FALSE(writer.write(content.subspan(offset, n)));
    offset += n;
  }
}

/// Writes and commits a snapshot with `content`.
template <class Store>
void put_snapshot(Store& store, std::uint64_t index, std::uint64_t term,
                  const std::vector<std::byte>& content, std::string_view metadata = "conf") {
  auto writer = store.begin(index, term, bytes_of(metadata));
  REQUIRE(writer);
  write_in_pieces(*writer, content, {1000});
  REQUIRE_FALSE(writer->commit());
}

/// Reads the whole content through read() in pieces of `piece` bytes.
template <class Reader>
std::vector<std::byte> read_all(Reader& reader, std::size_t piece) {
  std::vector<std::byte> out;
  std::vector<std::byte> buffer(piece);
  for (;;) {
    auto n = reader.read(buffer);
    REQUIRE(n);
    if (*n == 0) break;
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  return out;
}

/// Overwrites bytes of a file at `offset`.
void overwrite(const std::string& path, std::uint64_t offset, std::span<const std::byte> bytes) {
  wal::posix_file_system fs;
  auto file = fs.open(path, wal::open_mode::read_write);
  REQUIRE(file);
  REQUIRE_FALSE(file->write(offset, bytes));
}

std::byte byte_at(const std::string& path, std::uint64_t offset) {
  wal::posix_file_system fs;
  auto file = fs.open(path, wal::open_mode::read_only);
  REQUIRE(file);
  std::byte b{};
  auto n = file->read(offset, std::span(&b, 1));
  REQUIRE(n);
  REQUIRE(*n == 1);
  return b;
}

/// Creates a file holding `bytes`.
void create_file(const std::string& path, std::span<const std::byte> bytes) {
  wal::posix_file_system fs;
  auto file = fs.open(path, wal::open_mode::create);
  REQUIRE(file);
  REQUIRE_FALSE(file->write(0, bytes));
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  const std::byte flipped = byte_at(path, offset) ^ std::byte{0x5A};
  overwrite(path, offset, std::span(&flipped, 1));
}

void truncate_file(const std::string& path, std::uint64_t size) {
  std::filesystem::resize_file(path, size);
}

std::uint64_t file_size(const std::string& path) { return std::filesystem::file_size(path); }

std::string snap(std::uint64_t index, std::uint64_t term,
                 wal::snapshot_file_kind kind = wal::snapshot_file_kind::committed) {
  return wal::snapshot_name{index, term, kind}.str();
}

// --- a file system that runs out of space ------------------------------------

/// posix_file_system whose writes and allocations fail with ENOSPC once a
/// shared budget of bytes is spent.
struct space_budget {
  std::uint64_t left;
};

class bounded_file {
 public:
  bounded_file(wal::posix_file file, std::shared_ptr<space_budget> budget)
      : file_(std::move(file)), budget_(std::move(budget)) {}
  keel::result<std::uint64_t> size() const { return file_.size(); }
  std::error_code allocate(std::uint64_t offset, std::uint64_t length) {
    if (auto ec = spend(length)) return ec;
    return file_.allocate(offset, length);
  }
  std::error_code truncate(std::uint64_t size) { return file_.truncate(size); }
  keel::result<std::size_t> read(std::uint64_t offset, std::span<std::byte> out) const {
    return file_.read(offset, out);
  }
  std::error_code write(std::uint64_t offset, std::span<const std::byte> in) {
    if (auto ec = spend(in.size())) return ec;
    return file_.write(offset, in);
  }
  std::error_code sync() { return file_.sync(); }
  keel::result<wal::posix_mapping> map(std::uint64_t length) { return file_.map(length); }

 private:
  std::error_code spend(std::uint64_t n) {
    if (n > budget_->left) return {ENOSPC, std::system_category()};
    budget_->left -= n;
    return {};
  }

  wal::posix_file file_;
  std::shared_ptr<space_budget> budget_;
};

struct bounded_file_system {
  using file_type = bounded_file;

  keel::result<bounded_file> open(const std::string& path, wal::open_mode mode) {
    auto file = real.open(path, mode);
    if (!file) return file.error();
    return bounded_file(std::move(*file), budget);
  }
  std::error_code remove(const std::string& path) { return real.remove(path); }
  std::error_code rename(const std::string& from, const std::string& to) {
    return real.rename(from, to);
  }
  std::error_code make_directory(const std::string& path) { return real.make_directory(path); }
  std::error_code sync_directory(const std::string& path) { return real.sync_directory(path); }
  keel::result<std::vector<std::string>> list(const std::string& path) { return real.list(path); }

  wal::posix_file_system real{};
  std::shared_ptr<space_budget> budget;
};

// --- the file systems every generic test runs on -------------------------------

/// The real disk, in a temporary directory.
struct posix_env {
  using fs_type = wal::posix_file_system;
  temp_dir dir{};
  fs_type fs() { return {}; }
  std::string path() const { return dir.path(); }
};

/// The simulated disk.
struct sim_env {
  using fs_type = keel::sim::disk_file_system;
  keel::sim::disk disk{};
  fs_type fs() { return disk.file_system(); }
  std::string path() const { return "/snapshots"; }
};

/// The sorted names of the files in `dir`, through the file system.
template <class FS>
std::vector<std::string> listed(FS fs, const std::string& dir) {
  auto names = fs.list(dir);
  REQUIRE(names);
  std::sort(names->begin(), names->end());
  return *names;
}

}  // namespace

TEST_CASE("the shipped and test file systems satisfy the file_system concept") {
  STATIC_REQUIRE(wal::file_system<wal::posix_file_system>);
  STATIC_REQUIRE(wal::file_system<bounded_file_system>);
}

TEST_CASE("snapshot file names follow etcd's term-index scheme and parse back") {
  CHECK(snap(0x10, 2) == "0000000000000002-0000000000000010.snap");
  CHECK(snap(1, 0xabcdef, wal::snapshot_file_kind::temporary) ==
        "0000000000abcdef-0000000000000001.snap.tmp");
  CHECK(snap(~0ull, ~0ull, wal::snapshot_file_kind::partial) ==
        "ffffffffffffffff-ffffffffffffffff.snap.part");
  for (const auto kind : {wal::snapshot_file_kind::committed, wal::snapshot_file_kind::temporary,
                          wal::snapshot_file_kind::partial}) {
    const auto parsed = wal::snapshot_name::parse(snap(123456789, 42, kind));
    REQUIRE(parsed);
    CHECK(parsed->index == 123456789);
    CHECK(parsed->term == 42);
    CHECK(parsed->kind == kind);
  }
  for (const char* bad :
       {"", "x.snap", "0000000000000002-0000000000000010.snap.bak",
        "0000000000000002_0000000000000010.snap", "000000000000000G-0000000000000010.snap",
        "0000000000000002-000000000000001A.snap", "0000000000000002-00000000000000100.snap",
        "0000000000000001.wal"}) {
    INFO(bad);
    CHECK_FALSE(wal::snapshot_name::parse(bad));
  }
  // Newer means a higher index, then a higher term; the kind does not matter.
  CHECK(wal::snapshot_name{9, 5}.older_than({10, 1}));
  CHECK(wal::snapshot_name{10, 1}.older_than({10, 2}));
  CHECK_FALSE(wal::snapshot_name{10, 2}.older_than({10, 2, wal::snapshot_file_kind::partial}));
  CHECK_FALSE(wal::snapshot_name{11, 1}.older_than({10, 2}));
}

TEST_CASE("a multi-MiB snapshot written in odd pieces reads back whole in other pieces") {
  temp_dir dir;
  posix_store store({}, dir.path());
  REQUIRE_FALSE(store.cleanup());
  const auto content = random_bytes((5u << 20) + 12345, 1);
  const auto metadata = bytes_of("voters: 1 2 3");

  auto writer = store.begin(100, 7, metadata);
  REQUIRE(writer);
  write_in_pieces(*writer, content, {1, 7, 4093, 65537, (1u << 20) + 3, 3u << 20, 999});
  CHECK(writer->held() == content.size());
  REQUIRE_FALSE(writer->commit());
  CHECK(names_in(dir.path()) == std::vector<std::string>{snap(100, 7)});

  auto reader = store.open(100, 7);
  REQUIRE(reader);
  CHECK(reader->index() == 100);
  CHECK(reader->term() == 7);
  CHECK(std::vector<std::byte>(reader->metadata().begin(), reader->metadata().end()) == metadata);
  CHECK(reader->size() == content.size());
  CHECK(reader->crc() == wal::crc32c(content));
  CHECK_FALSE(reader->verify());
  CHECK(read_all(*reader, 333331) == content);
  CHECK(reader->position() == content.size());

  // Random access, as a sender resuming a transfer does.
  std::vector<std::byte> piece(4096);
  for (const std::uint64_t offset :
       {std::uint64_t{0}, std::uint64_t{1} << 20, std::uint64_t{content.size() - 100}}) {
    auto n = reader->read_at(offset, piece);
    REQUIRE(n);
    CHECK(*n == std::min<std::uint64_t>(piece.size(), content.size() - offset));
    CHECK(std::equal(piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(*n),
                     content.begin() + static_cast<std::ptrdiff_t>(offset)));
  }
  auto at_end = reader->read_at(content.size(), piece);
  REQUIRE(at_end);
  CHECK(*at_end == 0);
  CHECK(reader->read_at(content.size() + 1, piece).error() == errc::invalid_argument);
  REQUIRE_FALSE(reader->seek(content.size() - 10));
  auto tail = reader->read(piece);
  REQUIRE(tail);
  CHECK(*tail == 10);

  auto entries = store.list();
  REQUIRE(entries);
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].index == 100);
  CHECK((*entries)[0].term == 7);
  CHECK((*entries)[0].path == dir / snap(100, 7));
  CHECK((*entries)[0].bytes == wal::snapshot_header_size(metadata.size()) + content.size());
}

TEST_CASE("an empty snapshot with no metadata round-trips") {
  temp_dir dir;
  posix_store store({}, dir.path());
  auto writer = store.begin(1, 1, {});
  REQUIRE(writer);
  REQUIRE_FALSE(writer->commit());
  auto newest = store.open_newest();
  REQUIRE(newest);
  REQUIRE(newest->reader);
  CHECK(newest->reader->size() == 0);
  CHECK(newest->reader->metadata().empty());
  CHECK(file_size(dir / snap(1, 1)) == wal::snapshot_header_size(0));
}

TEST_CASE("the header is the documented little-endian layout") {
  temp_dir dir;
  posix_store store({}, dir.path());
  const auto content = random_bytes(300, 2);
  put_snapshot(store, 0x0102030405060708, 0x1112131415161718, content, "meta");
  const std::string path = dir / snap(0x0102030405060708, 0x1112131415161718);

  std::vector<std::byte> header(wal::snapshot_header_size(4));
  {
    wal::posix_file_system fs;
    auto file = fs.open(path, wal::open_mode::read_only);
    REQUIRE(file);
    REQUIRE(*file->read(0, header) == header.size());
  }
  const auto le = [&](std::size_t offset, int width) {
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      v |= std::to_integer<std::uint64_t>(header[offset + static_cast<std::size_t>(i)]) << (8 * i);
    }
    return v;
  };
  CHECK(std::string(reinterpret_cast<const char*>(header.data()), 8) == "KEELSNP1");
  CHECK(le(8, 4) == wal::snapshot_format_version);
  CHECK(le(12, 8) == 0x0102030405060708);
  CHECK(le(20, 8) == 0x1112131415161718);
  CHECK(le(28, 4) == 4);
  CHECK(std::string(reinterpret_cast<const char*>(header.data()) + 32, 4) == "meta");
  CHECK(le(36, 8) == content.size());
  CHECK(le(44, 4) == wal::crc32c(content));
  CHECK(le(48, 4) == wal::crc32c(std::span(header).first(48)));
  CHECK(file_size(path) == header.size() + content.size());
}

TEST_CASE("the newest snapshot that verifies is loaded and newer corrupt ones are reported") {
  temp_dir dir;
  posix_store store({}, dir.path(), 5);
  put_snapshot(store, 10, 1, random_bytes(5000, 10));
  put_snapshot(store, 20, 1, random_bytes(5000, 20));
  put_snapshot(store, 30, 2, random_bytes(5000, 30));
  // A content byte of the newest: its header still checks, its content does not.
  const std::string newest_path = dir / snap(30, 2);
  flip_byte(newest_path, wal::snapshot_header_size(4) + 2500);
  REQUIRE(store.open(30, 2));

  auto newest = store.open_newest();
  REQUIRE(newest);
  REQUIRE(newest->reader);
  CHECK(newest->reader->index() == 20);
  CHECK(read_all(*newest->reader, 4096) == random_bytes(5000, 20));
  REQUIRE(newest->skipped.size() == 1);
  CHECK(newest->skipped[0].entry.index == 30);
  CHECK(newest->skipped[0].entry.path == newest_path);
  CHECK(newest->skipped[0].error == errc::corrupt_snapshot);
  CHECK(std::filesystem::exists(newest_path));  // Never removed silently.

  // A damaged header on the next one as well: the oldest is chosen.
  flip_byte(dir / snap(20, 1), 13);
  newest = store.open_newest();
  REQUIRE(newest);
  REQUIRE(newest->reader);
  CHECK(newest->reader->index() == 10);
  CHECK(newest->skipped.size() == 2);

  REQUIRE_FALSE(store.remove(30, 2));
  CHECK_FALSE(std::filesystem::exists(newest_path));
}

TEST_CASE("open_newest finds nothing in a directory without snapshots") {
  temp_dir dir;
  posix_store store({}, dir.path());
  REQUIRE_FALSE(store.cleanup());
  auto newest = store.open_newest();
  REQUIRE(newest);
  CHECK_FALSE(newest->reader);
  CHECK(newest->skipped.empty());
}

TEST_CASE("a snapshot whose file is truncated anywhere is rejected") {
  temp_dir dir;
  posix_store store({}, dir.path());
  put_snapshot(store, 5, 1, random_bytes(200, 5));
  const std::string path = dir / snap(5, 1);
  const std::uint64_t full = file_size(path);
  wal::posix_file_system fs;
  for (std::uint64_t size = full; size-- > 0;) {
    INFO("truncated to " << size << " of " << full << " bytes");
    truncate_file(path, size);
    CHECK(posix_reader::open(fs, path).error() == errc::corrupt_snapshot);
  }
}

TEST_CASE("a file grown past its recorded size is rejected") {
  temp_dir dir;
  posix_store store({}, dir.path());
  put_snapshot(store, 5, 1, random_bytes(200, 5));
  const std::string path = dir / snap(5, 1);
  truncate_file(path, file_size(path) + 1);
  CHECK(store.open(5, 1).error() == errc::corrupt_snapshot);
}

TEST_CASE("every single damaged byte of a snapshot is caught by open or verify") {
  temp_dir dir;
  posix_store store({}, dir.path());
  const auto content = random_bytes(100, 6);
  put_snapshot(store, 6, 2, content, "metadata");
  const std::string path = dir / snap(6, 2);
  const std::uint64_t header_size = wal::snapshot_header_size(8);
  for (std::uint64_t offset = 0; offset < file_size(path); ++offset) {
    INFO("damaged byte " << offset);
    flip_byte(path, offset);
    auto reader = store.open(6, 2);
    if (offset < header_size) {
      CHECK(reader.error() == errc::corrupt_snapshot);
    } else {
      REQUIRE(reader);
      CHECK(reader->verify() == errc::corrupt_snapshot);
    }
    flip_byte(path, offset);  // Back to the original.
  }
  auto reader = store.open(6, 2);
  REQUIRE(reader);
  CHECK_FALSE(reader->verify());
}

TEST_CASE("garbage files are rejected as corrupt snapshots without crashing") {
  temp_dir dir;
  wal::posix_file_system fs;
  const std::uint64_t seed = Catch::rngSeed() != 0 ? Catch::rngSeed() : 20240611;
  INFO("seed " << seed << " (run with --rng-seed " << seed << ")");
  splitmix rng{seed};
  const std::string path = dir / snap(1, 1);
  // A valid header for an empty snapshot, to start some garbage from.
  const auto valid_header = [] {
    wal::snapshot_header h;
    h.index = 1;
    h.term = 1;
    return wal::detail::encode_snapshot_header(wal::detail::snapshot_magic, h);
  }();
  for (int i = 0; i < 400; ++i) {
    INFO("garbage file " << i);
    std::vector<std::byte> garbage = random_bytes(rng.next() % 300, rng.next());
    if (i % 2 == 1) {
      // Starts like a real header, so the checks after the magic run too.
      const std::size_t keep = std::min<std::size_t>(rng.next() % 60, valid_header.size());
      garbage.insert(garbage.begin(), valid_header.begin(),
                     valid_header.begin() + static_cast<std::ptrdiff_t>(keep));
    }
    std::filesystem::remove(path);
    create_file(path, garbage);
    auto reader = posix_reader::open(fs, path);
    if (reader) {
      // Only garbage that is exactly a valid header passes, and then it must
      // describe the file.
      CHECK(reader->size() + wal::snapshot_header_size(reader->metadata().size()) ==
            garbage.size());
    } else {
      CHECK(reader.error() == errc::corrupt_snapshot);
    }
  }
}

TEST_CASE("a header claiming huge metadata or content is rejected before allocating") {
  temp_dir dir;
  wal::posix_file_system fs;
  const std::string path = dir / snap(1, 1);
  wal::snapshot_header h;
  h.index = 1;
  h.term = 1;
  auto bytes = wal::detail::encode_snapshot_header(wal::detail::snapshot_magic, h);
  SECTION("metadata length of 4 GiB - 1") {
    for (std::size_t i = 28; i < 32; ++i) bytes[i] = std::byte{0xFF};
  }
  SECTION("metadata length just past the limit") {
    wal::detail::snapshot_put_le(bytes.data() + 28, wal::snapshot_metadata_limit + 1, 4);
  }
  SECTION("content size of 2^64 - 1 with a correct header CRC") {
    wal::detail::snapshot_put_le(bytes.data() + 32, ~std::uint64_t{0}, 8);
    wal::detail::snapshot_put_le(bytes.data() + 44, wal::crc32c(std::span(bytes).first(44)), 4);
  }
  create_file(path, bytes);
  CHECK(posix_reader::open(fs, path).error() == errc::corrupt_snapshot);
}

TEST_CASE("commit keeps the newest snapshot and keep_old older ones") {
  temp_dir dir;
  const std::size_t keep_old = GENERATE(0u, 1u, 2u);
  INFO("keep_old " << keep_old);
  posix_store store({}, dir.path(), keep_old);
  for (std::uint64_t i = 1; i <= 5; ++i) put_snapshot(store, i * 10, i, random_bytes(100, i));
  auto entries = store.list();
  REQUIRE(entries);
  REQUIRE(entries->size() == keep_old + 1);
  for (std::size_t i = 0; i < entries->size(); ++i) CHECK((*entries)[i].index == 50 - 10 * i);
}

TEST_CASE("committing an older snapshot prunes nothing newer than it") {
  temp_dir dir;
  posix_store store({}, dir.path(), 0);
  put_snapshot(store, 50, 3, random_bytes(10, 1));
  put_snapshot(store, 40, 3, random_bytes(10, 2));
  put_snapshot(store, 30, 3, random_bytes(10, 3));
  CHECK(names_in(dir.path()) == std::vector<std::string>{snap(30, 3), snap(40, 3), snap(50, 3)});
}

TEST_CASE("snapshots list newest first by index, then term") {
  temp_dir dir;
  posix_store store({}, dir.path(), 10);
  put_snapshot(store, 7, 1, {});
  put_snapshot(store, 9, 1, {});
  put_snapshot(store, 9, 2, {});
  put_snapshot(store, 8, 5, {});
  auto entries = store.list();
  REQUIRE(entries);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> order;
  for (const auto& e : *entries) order.emplace_back(e.index, e.term);
  CHECK(order ==
        std::vector<std::pair<std::uint64_t, std::uint64_t>>{{9, 2}, {9, 1}, {8, 5}, {7, 1}});
}

TEST_CASE("a writer dropped without commit leaves no file behind") {
  temp_dir dir;
  posix_store store({}, dir.path());
  {
    auto writer = store.begin(3, 1, bytes_of("m"));
    REQUIRE(writer);
    REQUIRE_FALSE(writer->write(random_bytes(3u << 20, 3)));
    REQUIRE_FALSE(writer->sync());
    CHECK(names_in(dir.path()) ==
          std::vector<std::string>{snap(3, 1, wal::snapshot_file_kind::temporary)});
    // A moved-from writer owns nothing; the moved-to one cleans up.
    auto moved = std::move(*writer);
    CHECK(writer->write(random_bytes(1, 1)) == errc::invalid_argument);
  }
  CHECK(names_in(dir.path()).empty());
}

TEST_CASE("cleanup creates the directory and removes leftover temporary files only") {
  temp_dir dir;
  const std::string snapshots = dir / "snapshots";
  posix_store store({}, snapshots);
  REQUIRE_FALSE(store.cleanup());
  REQUIRE(std::filesystem::is_directory(snapshots));
  put_snapshot(store, 4, 1, random_bytes(10, 4));
  const std::vector<std::string> leftovers = {snap(5, 1, wal::snapshot_file_kind::temporary),
                                              snap(6, 1, wal::snapshot_file_kind::partial),
                                              "notes.txt"};
  for (const auto& name : leftovers) create_file(snapshots + "/" + name, bytes_of("x"));
  REQUIRE_FALSE(store.cleanup());
  CHECK(names_in(snapshots) ==
        std::vector<std::string>{snap(4, 1), snap(6, 1, wal::snapshot_file_kind::partial),
                                 "notes.txt"});
}

TEST_CASE("begin replaces a leftover temporary file of the same snapshot") {
  temp_dir dir;
  posix_store store({}, dir.path());
  create_file(dir / snap(4, 1, wal::snapshot_file_kind::temporary), random_bytes(5000, 9));
  put_snapshot(store, 4, 1, random_bytes(10, 4));
  auto reader = store.open(4, 1);
  REQUIRE(reader);
  CHECK_FALSE(reader->verify());
  CHECK(read_all(*reader, 7) == random_bytes(10, 4));
}

TEST_CASE("a broken transfer resumes from its last sync and commits verified") {
  temp_dir dir;
  posix_store store({}, dir.path());
  const auto content = random_bytes((3u << 20) + 17, 11);
  const auto metadata = bytes_of("conf state");
  const std::size_t half = content.size() / 2;
  const std::span<const std::byte> all(content);
  {
    auto writer = store.begin_partial(40, 3, metadata);
    REQUIRE(writer);
    CHECK(writer->held() == 0);
    write_in_pieces(*writer, all.first(half), {64 * 1024 + 1});
    REQUIRE_FALSE(writer->sync());
    // More arrives but is never synced: the crash (here, dropping the
    // writer) may lose it, so it must not be counted.
    write_in_pieces(*writer, all.subspan(half, 300000), {4096});
    CHECK(writer->held() == half + 300000);
  }
  CHECK(names_in(dir.path()) ==
        std::vector<std::string>{snap(40, 3, wal::snapshot_file_kind::partial)});

  auto writer = store.begin_partial(40, 3, metadata);
  REQUIRE(writer);
  CHECK(writer->held() == half);
  write_in_pieces(*writer, all.subspan(writer->held()), {1u << 20});
  REQUIRE_FALSE(writer->commit(content.size(), wal::crc32c(content)));
  CHECK(names_in(dir.path()) == std::vector<std::string>{snap(40, 3)});

  auto newest = store.open_newest();
  REQUIRE(newest);
  REQUIRE(newest->reader);
  CHECK(newest->reader->index() == 40);
  CHECK(newest->reader->crc() == wal::crc32c(content));
  CHECK(read_all(*newest->reader, 1u << 20) == content);
}

TEST_CASE("a resumed transfer re-reads the held prefix, so damage to it is caught") {
  temp_dir dir;
  posix_store store({}, dir.path());
  const auto content = random_bytes(100000, 12);
  const std::span<const std::byte> all(content);
  {
    auto writer = store.begin_partial(40, 3, {});
    REQUIRE(writer);
    write_in_pieces(*writer, all.first(50000), {999});
    REQUIRE_FALSE(writer->sync());
  }
  const std::string part = dir / snap(40, 3, wal::snapshot_file_kind::partial);
  flip_byte(part, wal::snapshot_header_size(0) + 1234);
  auto writer = store.begin_partial(40, 3, {});
  REQUIRE(writer);
  REQUIRE(writer->held() == 50000);
  write_in_pieces(*writer, all.subspan(50000), {999});
  CHECK(writer->commit(content.size(), wal::crc32c(content)) == errc::corrupt_snapshot);
  CHECK(names_in(dir.path()).empty());
  CHECK(writer->commit() == errc::corrupt_snapshot);  // Sticky.
}

TEST_CASE("a commit with the wrong size or CRC installs nothing") {
  temp_dir dir;
  posix_store store({}, dir.path());
  put_snapshot(store, 10, 1, random_bytes(100, 1));
  const auto content = random_bytes(70000, 13);
  const std::uint32_t crc = wal::crc32c(content);
  const bool partial = GENERATE(true, false);
  const int mismatch = GENERATE(0, 1, 2);
  INFO("partial " << partial << ", mismatch " << mismatch);
  auto writer = partial ? store.begin_partial(20, 1, {}) : store.begin(20, 1, {});
  REQUIRE(writer);
  REQUIRE_FALSE(writer->write(content));
  std::error_code ec;
  if (mismatch == 0) ec = writer->commit(content.size() + 1, crc);
  if (mismatch == 1) ec = writer->commit(content.size() - 1, crc);
  if (mismatch == 2) ec = writer->commit(content.size(), crc ^ 1);
  CHECK(ec == errc::corrupt_snapshot);
  CHECK(names_in(dir.path()) == std::vector<std::string>{snap(10, 1)});
  auto newest = store.open_newest();
  REQUIRE(newest);
  REQUIRE(newest->reader);
  CHECK(newest->reader->index() == 10);
}

TEST_CASE("begin_partial starts over when the part file holds other metadata or is damaged") {
  temp_dir dir;
  posix_store store({}, dir.path());
  const auto content = random_bytes(5000, 14);
  const auto write_half = [&] {
    auto writer = store.begin_partial(40, 3, bytes_of("a"));
    REQUIRE(writer);
    REQUIRE_FALSE(writer->write(std::span(content).first(2500)));
    REQUIRE_FALSE(writer->sync());
  };
  write_half();
  SECTION("other metadata") {
    auto writer = store.begin_partial(40, 3, bytes_of("b"));
    REQUIRE(writer);
    CHECK(writer->held() == 0);
  }
  SECTION("a damaged checkpoint header") {
    flip_byte(dir / snap(40, 3, wal::snapshot_file_kind::partial), 37);
    auto writer = store.begin_partial(40, 3, bytes_of("a"));
    REQUIRE(writer);
    CHECK(writer->held() == 0);
  }
  SECTION("a part file cut inside its synced content") {
    truncate_file(dir / snap(40, 3, wal::snapshot_file_kind::partial),
                  wal::snapshot_header_size(1) + 1000);
    auto writer = store.begin_partial(40, 3, bytes_of("a"));
    REQUIRE(writer);
    CHECK(writer->held() == 0);
    REQUIRE_FALSE(writer->write(content));
    REQUIRE_FALSE(writer->commit(content.size(), wal::crc32c(content)));
  }
  SECTION("an empty part file") {
    truncate_file(dir / snap(40, 3, wal::snapshot_file_kind::partial), 0);
    auto writer = store.begin_partial(40, 3, bytes_of("a"));
    REQUIRE(writer);
    CHECK(writer->held() == 0);
  }
}

TEST_CASE("a new partial transfer removes the part files of other snapshots") {
  temp_dir dir;
  posix_store store({}, dir.path());
  for (std::uint64_t index : {30u, 50u}) {
    auto writer = store.begin_partial(index, 2, {});
    REQUIRE(writer);
    REQUIRE_FALSE(writer->write(random_bytes(100, index)));
    REQUIRE_FALSE(writer->sync());
  }
  CHECK(names_in(dir.path()) ==
        std::vector<std::string>{snap(50, 2, wal::snapshot_file_kind::partial)});
  REQUIRE_FALSE(store.discard_partial(50, 2));
  CHECK(names_in(dir.path()).empty());
  REQUIRE_FALSE(store.discard_partial(50, 2));  // Already gone: nothing to do.
}

TEST_CASE("remove_older_than removes older snapshots and part files") {
  temp_dir dir;
  posix_store store({}, dir.path(), 10);
  for (std::uint64_t i = 1; i <= 4; ++i) put_snapshot(store, i * 10, 1, {});
  {
    auto writer = store.begin_partial(25, 1, {});
    REQUIRE(writer);
  }
  REQUIRE_FALSE(store.remove_older_than(30));
  CHECK(names_in(dir.path()) == std::vector<std::string>{snap(30, 1), snap(40, 1)});
}

TEST_CASE("writing after commit and oversized metadata are invalid arguments") {
  temp_dir dir;
  posix_store store({}, dir.path());
  auto writer = store.begin(1, 1, {});
  REQUIRE(writer);
  REQUIRE_FALSE(writer->commit());
  CHECK(writer->write(random_bytes(1, 1)) == errc::invalid_argument);
  CHECK(writer->commit() == errc::invalid_argument);
  const std::vector<std::byte> too_big(wal::snapshot_metadata_limit + 1);
  CHECK(store.begin(2, 1, too_big).error() == errc::invalid_argument);
  CHECK(store.begin_partial(2, 1, too_big).error() == errc::invalid_argument);
}

TEST_CASE("opening a missing snapshot reports the file system's error") {
  temp_dir dir;
  posix_store store({}, dir.path());
  CHECK(store.open(9, 9).error() == std::errc::no_such_file_or_directory);
}

TEST_CASE("running out of space fails with no_space, stays failed and installs nothing") {
  temp_dir dir;
  auto budget = std::make_shared<space_budget>(space_budget{3u << 20});
  wal::snapshot_store<bounded_file_system> store({{}, budget}, dir.path());
  const auto content = random_bytes(4u << 20, 15);
  {
    auto writer = store.begin(10, 1, {});
    REQUIRE(writer);
    std::error_code ec;
    for (std::size_t offset = 0; offset < content.size() && !ec; offset += 100000) {
      ec = writer->write(std::span(content).subspan(
          offset, std::min<std::size_t>(100000, content.size() - offset)));
    }
    CHECK(ec == errc::no_space);
    budget->left = ~std::uint64_t{0};  // Space is back, but the writer stays failed.
    CHECK(writer->write(random_bytes(1, 1)) == errc::no_space);
    CHECK(writer->commit() == errc::no_space);
    CHECK(names_in(dir.path()) ==
          std::vector<std::string>{snap(10, 1, wal::snapshot_file_kind::temporary)});
  }
  CHECK(names_in(dir.path()).empty());
}

// --- every file system ------------------------------------------------------------

TEMPLATE_TEST_CASE("a snapshot round-trips in pieces on every file system", "", posix_env,
                   sim_env) {
  TestType env;
  wal::snapshot_store<typename TestType::fs_type> store(env.fs(), env.path());
  REQUIRE_FALSE(store.cleanup());
  const auto content = random_bytes((2u << 20) + 7, 21);
  auto writer = store.begin(8, 2, bytes_of("meta"));
  REQUIRE(writer);
  write_in_pieces(*writer, content, {13, (1u << 20) + 1, 70001});
  REQUIRE_FALSE(writer->commit());
  CHECK(listed(env.fs(), env.path()) == std::vector<std::string>{snap(8, 2)});
  auto newest = store.open_newest();
  REQUIRE(newest);
  REQUIRE(newest->reader);
  CHECK(newest->reader->index() == 8);
  CHECK(newest->reader->term() == 2);
  CHECK(newest->reader->size() == content.size());
  CHECK(read_all(*newest->reader, 99999) == content);
}

TEMPLATE_TEST_CASE("pruning keeps keep_old older snapshots on every file system", "", posix_env,
                   sim_env) {
  TestType env;
  wal::snapshot_store<typename TestType::fs_type> store(env.fs(), env.path(), 2);
  REQUIRE_FALSE(store.cleanup());
  for (std::uint64_t i = 1; i <= 4; ++i) put_snapshot(store, i, 1, random_bytes(10, i));
  CHECK(listed(env.fs(), env.path()) ==
        std::vector<std::string>{snap(2, 1), snap(3, 1), snap(4, 1)});
}

TEMPLATE_TEST_CASE("a transfer resumes from its last sync on every file system", "", posix_env,
                   sim_env) {
  TestType env;
  wal::snapshot_store<typename TestType::fs_type> store(env.fs(), env.path());
  REQUIRE_FALSE(store.cleanup());
  const auto content = random_bytes(300000, 22);
  const std::span<const std::byte> all(content);
  {
    auto writer = store.begin_partial(9, 3, bytes_of("m"));
    REQUIRE(writer);
    write_in_pieces(*writer, all.first(100000), {3333});
    REQUIRE_FALSE(writer->sync());
    write_in_pieces(*writer, all.subspan(100000, 100000), {3333});
  }
  auto writer = store.begin_partial(9, 3, bytes_of("m"));
  REQUIRE(writer);
  REQUIRE(writer->held() == 100000);
  write_in_pieces(*writer, all.subspan(100000), {3333});
  REQUIRE_FALSE(writer->commit(content.size(), wal::crc32c(content)));
  auto reader = store.open(9, 3);
  REQUIRE(reader);
  CHECK_FALSE(reader->verify());
  CHECK(read_all(*reader, 4096) == content);
}

// --- crashes on the simulated disk ---------------------------------------------------

namespace {

using sim_store = wal::snapshot_store<keel::sim::disk_file_system>;

/// Writes `content` in pieces, stopping at the first error; whether all went.
template <class Writer>
bool try_write(Writer& writer, std::span<const std::byte> content, std::size_t piece) {
  for (std::size_t offset = 0; offset < content.size(); offset += piece) {
    if (writer.write(content.subspan(offset, std::min(piece, content.size() - offset)))) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("a crash at any point of a commit never exposes a half-written snapshot") {
  const auto old_content = random_bytes(50000, 31);
  const auto new_content = random_bytes((1u << 20) + 300000, 32);
  const std::uint64_t torn = GENERATE(0u, 9u, 100u, 5000u);
  for (std::uint64_t n = 0;; ++n) {
    INFO("power cut before operation " << n << " of the commit, " << torn << " bytes torn");
    keel::sim::disk disk;
    {
      sim_store store(disk.file_system(), "/snapshots", 0);
      REQUIRE_FALSE(store.cleanup());
      put_snapshot(store, 10, 1, old_content);
    }
    const std::uint64_t start = disk.operations();
    disk.freeze_after(start + n);
    bool committed = false;
    {
      sim_store store(disk.file_system(), "/snapshots", 0);
      auto writer = store.begin(20, 2, bytes_of("new"));
      if (writer && try_write(*writer, new_content, 300000)) committed = !writer->commit();
    }
    const bool cut = disk.frozen();
    disk.crash(torn);

    sim_store store(disk.file_system(), "/snapshots", 0);
    REQUIRE_FALSE(store.cleanup());
    auto newest = store.open_newest();
    REQUIRE(newest);
    CHECK(newest->skipped.empty());
    REQUIRE(newest->reader);
    if (committed) CHECK(newest->reader->index() == 20);
    CHECK(read_all(*newest->reader, 1u << 20) ==
          (newest->reader->index() == 20 ? new_content : old_content));
    for (const auto& name : listed(disk.file_system(), "/snapshots")) {
      const auto parsed = wal::snapshot_name::parse(name);
      REQUIRE(parsed);
      CHECK(parsed->kind == wal::snapshot_file_kind::committed);
    }
    if (!cut) {
      CHECK(committed);
      break;  // The commit ran to its end: every operation has been cut.
    }
  }
}

TEST_CASE("a crash during a transfer resumes from a durable checkpoint and commits verified") {
  const auto content = random_bytes(600000, 41);
  const std::span<const std::byte> all(content);
  constexpr std::size_t checkpoint = 100000;
  const std::uint64_t torn = GENERATE(0u, 5u, 64u, 70000u);
  for (std::uint64_t n = 0;; ++n) {
    INFO("power cut before operation " << n << " of the transfer, " << torn << " bytes torn");
    keel::sim::disk disk;
    {
      sim_store store(disk.file_system(), "/snapshots");
      REQUIRE_FALSE(store.cleanup());
    }
    disk.freeze_after(disk.operations() + n);
    std::uint64_t synced = 0;     // What the last successful sync() covered.
    std::uint64_t attempted = 0;  // What the sync() the power cut interrupted covered.
    {
      sim_store store(disk.file_system(), "/snapshots");
      auto writer = store.begin_partial(30, 4, bytes_of("conf"));
      if (writer) {
        for (std::size_t offset = 0; offset < content.size(); offset += checkpoint) {
          if (!try_write(*writer, all.subspan(offset, checkpoint), 7000)) break;
          attempted = writer->held();
          if (writer->sync()) break;
          synced = attempted;
        }
      }
    }
    const bool cut = disk.frozen();
    disk.crash(torn);

    sim_store store(disk.file_system(), "/snapshots");
    REQUIRE_FALSE(store.cleanup());
    auto writer = store.begin_partial(30, 4, bytes_of("conf"));
    REQUIRE(writer);
    const std::uint64_t held = writer->held();
    INFO("synced " << synced << ", attempted " << attempted << ", held after the crash " << held);
    if (torn == 0) {
      CHECK(held == synced);
    } else {
      // A torn checkpoint header fails its CRC and the transfer starts over.
      CHECK((held == 0 || held == synced || held == attempted));
    }
    REQUIRE(try_write(*writer, all.subspan(held), 7000));
    REQUIRE_FALSE(writer->commit(content.size(), wal::crc32c(content)));
    auto reader = store.open(30, 4);
    REQUIRE(reader);
    CHECK(read_all(*reader, 65536) == content);
    if (!cut) {
      CHECK(synced == content.size());
      break;
    }
  }
}
