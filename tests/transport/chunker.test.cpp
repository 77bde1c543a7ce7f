#include "keel/transport/chunker.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "keel/wal/crc32c.hpp"

using namespace keel::transport;

namespace {

std::vector<std::byte> payload_of(std::size_t n) {
  std::vector<std::byte> bytes(n);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  return bytes;
}

/// The chunks a sender cuts from `bytes` starting at `start`.
std::vector<chunk_view> cut(std::span<const std::byte> bytes, std::uint64_t start,
                            std::size_t chunk_bytes, std::uint64_t index = 9,
                            std::uint64_t term = 2) {
  std::vector<chunk_view> chunks;
  chunk_plan plan(start, bytes.size(), chunk_bytes);
  while (plan.more()) {
    const auto p = plan.next();
    chunk_view c{.from = 1,
                 .snapshot_index = index,
                 .snapshot_term = term,
                 .offset = p.offset,
                 .data = bytes.subspan(p.offset, p.length),
                 .last = p.last};
    if (p.last) {
      c.total_size = bytes.size();
      c.crc = keel::wal::crc32c(bytes);
    }
    chunks.push_back(c);
  }
  return chunks;
}

}  // namespace

TEST_CASE("chunk_plan covers the payload once, in order, ending with one last chunk") {
  for (const std::size_t total :
       {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{4096}, std::size_t{4097}}) {
    for (const std::uint64_t start : {std::uint64_t{0}, std::uint64_t{total / 2}}) {
      chunk_plan plan(start, total, 1024);
      std::uint64_t next = start;
      int lasts = 0;
      while (plan.more()) {
        const auto p = plan.next();
        CHECK(p.offset == next);
        CHECK(p.length <= 1024);
        next += p.length;
        lasts += p.last ? 1 : 0;
      }
      CHECK(next == total);
      CHECK(lasts == 1);
    }
  }
}

TEST_CASE("a well-formed stream is accepted and reassembled with its checksum") {
  const auto bytes = payload_of(10'000);
  payload_assembler assembler(1 << 20);
  for (const auto& c : cut(bytes, 0, 3000)) REQUIRE(assembler.add(c) == stream_fault::none);
  REQUIRE(assembler.finished());
  CHECK(assembler.payload().size() == bytes.size());
  CHECK(std::equal(bytes.begin(), bytes.end(),
                   reinterpret_cast<const std::byte*>(assembler.payload().data())));
}

TEST_CASE("a resumed stream must start where the receiver stopped") {
  const auto bytes = payload_of(10'000);
  chunk_validator resumed(1 << 20, 4000);
  for (const auto& c : cut(bytes, 4000, 3000)) REQUIRE(resumed.check(c) == stream_fault::none);
  CHECK(resumed.finished());

  chunk_validator elsewhere(1 << 20, 4000);
  CHECK(elsewhere.check(cut(bytes, 3000, 3000).front()) == stream_fault::gap);
}

TEST_CASE("every kind of bad stream is refused with its own fault") {
  const auto bytes = payload_of(10'000);
  auto chunks = cut(bytes, 0, 3000);
  REQUIRE(chunks.size() == 4);

  SECTION("a gap") {
    chunk_validator v(1 << 20, 0);
    REQUIRE(v.check(chunks[0]) == stream_fault::none);
    CHECK(v.check(chunks[2]) == stream_fault::gap);
  }
  SECTION("a repeated chunk") {
    chunk_validator v(1 << 20, 0);
    REQUIRE(v.check(chunks[0]) == stream_fault::none);
    CHECK(v.check(chunks[0]) == stream_fault::gap);
  }
  SECTION("another snapshot's chunk") {
    chunk_validator v(1 << 20, 0);
    REQUIRE(v.check(chunks[0]) == stream_fault::none);
    chunks[1].snapshot_term = 3;
    CHECK(v.check(chunks[1]) == stream_fault::mismatched_snapshot);
  }
  SECTION("another sender's chunk") {
    chunk_validator v(1 << 20, 0);
    REQUIRE(v.check(chunks[0]) == stream_fault::none);
    chunks[1].from = 7;
    CHECK(v.check(chunks[1]) == stream_fault::wrong_sender);
  }
  SECTION("more than the maximum") {
    chunk_validator v(5000, 0);
    REQUIRE(v.check(chunks[0]) == stream_fault::none);
    CHECK(v.check(chunks[1]) == stream_fault::too_large);
  }
  SECTION("a total size that is not what was sent") {
    chunk_validator v(1 << 20, 0);
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(v.check(chunks[i]) == stream_fault::none);
    chunks[3].total_size += 1;
    CHECK(v.check(chunks[3]) == stream_fault::bad_size);
    CHECK_FALSE(v.finished());
  }
  SECTION("a wrong checksum") {
    payload_assembler a(1 << 20);
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(a.add(chunks[i]) == stream_fault::none);
    chunks[3].crc ^= 1;
    CHECK(a.add(chunks[3]) == stream_fault::bad_checksum);
  }
  SECTION("a stream that stops early is not finished") {
    chunk_validator v(1 << 20, 0);
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(v.check(chunks[i]) == stream_fault::none);
    CHECK_FALSE(v.finished());
    CHECK(v.next_offset() == 9000);
  }
  SECTION("an offset near the top of the range does not wrap around the maximum") {
    chunk_validator v(1 << 20, 0);
    chunks[0].offset = UINT64_MAX - 10;
    CHECK(v.check(chunks[0]) == stream_fault::gap);
    chunk_validator far(1 << 20, UINT64_MAX - 10);
    CHECK(far.check(chunks[0]) == stream_fault::too_large);
  }
}
