// Walks a store snapshot stream (include/keel/node/store_snapshot.hpp has
// the format) without knowing the store's types: each table section's name
// and object count, and each object's bytes, checked exactly as a restore
// checks them (the library's stream reader, limits and trailing CRC), so a
// stream this walk accepts is one a restore would not refuse for its
// framing. Objects are handed out as they are read: memory stays bounded.
//
// Thread safety: uses only its arguments.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
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
/// damaged or truncated stream; an error on_object returns stops the walk.
template <class Source, class OnSection, class OnObject>
keel::result<store_stream_summary> walk_store_snapshot(Source&& source, OnSection&& on_section,
                                                       OnObject&& on_object) {
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
