// libFuzzer target: WAL recovery and the record decoders on arbitrary bytes.
//
// The input becomes the segment files of a WAL directory on the simulated
// disk. Random bytes almost never pass a checksum, so when the first byte
// asks for it the harness reseals every frame it can walk (recomputing the
// checksum and end marker), which lets the fuzzer reach the body decoders
// and the replay rules. Whatever the bytes, recovery must answer with a
// WAL or an error, never crash, and a recovered WAL must take an append.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "keel/sim/disk.hpp"
#include "keel/wal/wal.hpp"

namespace {

using namespace keel::wal;

/// Recomputes the trailer of every frame whose length fits, in place.
void reseal(std::span<std::byte> seg, std::uint64_t sequence) {
  std::uint64_t at = 0;
  while (at + record_size(0) <= seg.size()) {
    const std::uint64_t body = get_u32(seg.data() + at);
    const std::uint64_t size = record_size(body);
    if (body == 0 && get_u64(seg.data() + at) == 0) return;
    if (body > max_record_body || size > seg.size() - at) return;
    const auto type = static_cast<record_type>(seg[at + 4]);
    seal_record(seg.data() + at, type, body, segment_seed(sequence));
    at += size;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool fix = (data[0] & 1) != 0;
  const int segments = 1 + (data[0] >> 1) % 3;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  // The decoders on their own.
  (void)read_frame(input, 0, segment_seed(1));
  (void)read_entry(input);
  (void)read_snapshot_marker(input);
  (void)read_segment_header(input);

  keel::sim::disk disk;
  auto fs = disk.file_system();
  if (fs.make_directory("/w")) return 0;
  const std::size_t piece = input.size() / static_cast<std::size_t>(segments) + 1;
  for (int i = 0; i < segments; ++i) {
    const std::size_t from = std::min(input.size(), piece * static_cast<std::size_t>(i));
    const std::size_t n = std::min(piece, input.size() - from);
    std::vector<std::byte> seg(input.begin() + static_cast<std::ptrdiff_t>(from),
                               input.begin() + static_cast<std::ptrdiff_t>(from + n));
    const auto seq = static_cast<std::uint64_t>(i + 1);
    if (fix) reseal(seg, seq);
    auto file = fs.open("/w/" + segment_name(seq), open_mode::create);
    if (!file || file->write(0, seg)) return 0;
  }
  recovery_report report;
  auto w = wal<keel::sim::disk_file_system>::open(fs, "/w", options{.segment_size = 4096}, &report);
  if (!w) return 0;
  const std::uint64_t next = w->last_index() + 1;
  const keel::raft::entry e{.term = w->hard_state().term + 1, .index = next, .data = "x"};
  if (!w->append(std::span(&e, 1)) && !w->sync()) {
    auto again = wal<keel::sim::disk_file_system>::open(fs, "/w", options{.segment_size = 4096});
    if (!again || again->last_index() != next) __builtin_trap();
  }
  return 0;
}
