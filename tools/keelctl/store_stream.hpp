// Walks a store snapshot stream (include/keel/node/store_snapshot.hpp has
// the format) without knowing the store's types: each table section's name
// and object count, and each object's bytes. What it checks is the
// stream's framing, with the library's stream reader and a restore's
// limits: the magic and format, the version it was written at (not above
// the snapshot's index), the tags, table-name and object size limits, no
// table's section twice, the stated section and object counts, the
// trailing CRC and nothing after it. What it cannot check without the
// store's types is left to the caller (store_image checks ids in order and
// that objects parse where a schema covers their table) or to a restore
// (indexes, values a restore refuses).//
// Thread safety: uses only its arguments.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "keel/errc.hpp"
#include "keel/node/store_snapshot.hpp"
#include "keel/result.hpp"

namespace keelctl {

/// What the walk saw.
struct store_stream_summary {
  std::uint64_t written_at = 0;  ///< The store's version when it was written.
  std::uint32_t sections = 0;
  std::uint64_t objects = 0;
};

/// Reads the stream from `source` (a keel::node::store_snapshot_source);
/// calls on_section(table, count) before each section's objects and
/// on_object(table, bytes) for each object. errc::corrupt_snapshot for a
/// damaged or truncated stream, or one written at a version above `index`
/// (the snapshot's Raft index, when known); an error on_object returns
/// stops the walk.
template <class Source, class OnSection, class OnObject>
keel::result<store_stream_summary> walk_store_snapshot(
    Source&& source, OnSection&& on_section, OnObject&& on_object,
    std::uint64_t index = std::numeric_limits<std::uint64_t>::max()) {
  using keel::errc;
  keel::node::detail::snapshot_input<std::remove_reference_t<Source>> in(source);
  store_stream_summary out;
  std::array<std::byte, keel::node::store_snapshot_magic.size()> magic{};
  if (auto ec = in.bytes(magic)) return ec;
  if (!std::equal(magic.begin(), magic.end(), keel::node::store_snapshot_magic.begin(),
                  [](std::byte b, char c) { return static_cast<char>(b) == c; })) {
    return errc::corrupt_snapshot;
  }
  std::uint8_t format = 0;
  if (auto ec = in.u8(format)) return ec;
  if (format != keel::node::store_snapshot_format) return errc::corrupt_snapshot;
  if (auto ec = in.u64(out.written_at)) return ec;
  if (out.written_at > index) return errc::corrupt_snapshot;  // As a restore refuses it.
  std::set<std::string, std::less<>> seen;
  std::string name;
  std::string bytes;
  for (;;) {
    std::uint8_t tag = 0;
    if (auto ec = in.u8(tag)) return ec;
    if (tag == keel::node::detail::end_tag) break;
    if (tag != keel::node::detail::section_tag) return errc::corrupt_snapshot;
    std::uint32_t name_size = 0;
    std::uint64_t count = 0;
    if (auto ec = in.u32(name_size)) return ec;
    if (name_size > keel::node::table_name_limit) return errc::corrupt_snapshot;
    name.clear();
    if (auto ec = in.append(name, name_size)) return ec;
    if (auto ec = in.u64(count)) return ec;
    if (!seen.insert(name).second) return errc::corrupt_snapshot;  // A table's second section.
    on_section(std::string_view(name), count);
    for (std::uint64_t n = 0; n < count; ++n) {
      std::uint32_t size = 0;
      if (auto ec = in.u32(size)) return ec;
      if (size > keel::node::default_max_object_bytes) return errc::corrupt_snapshot;
      bytes.clear();
      if (auto ec = in.append(bytes, size)) return ec;
      if (std::error_code ec = on_object(std::string_view(name), std::string_view(bytes))) {
        return ec;
      }
      ++out.objects;
    }
    ++out.sections;
  }
  std::uint32_t stated_sections = 0;
  std::uint64_t stated_objects = 0;
  if (auto ec = in.u32(stated_sections)) return ec;
  if (auto ec = in.u64(stated_objects)) return ec;
  if (stated_sections != out.sections || stated_objects != out.objects) {
    return errc::corrupt_snapshot;
  }
  const std::uint32_t crc = in.crc();
  std::uint32_t stated_crc = 0;
  if (auto ec = in.u32(stated_crc)) return ec;
  if (stated_crc != crc) return errc::corrupt_snapshot;
  if (auto ec = in.expect_end()) return ec;
  return out;
}

}  // namespace keelctl
