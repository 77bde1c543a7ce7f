// Store snapshots: the whole content of a store as one byte stream, the data
// part of a Raft snapshot. write_store_snapshot streams a read transaction
// to a sink in bounded pieces; restore_store_snapshot reads such a stream
// from a source and turns a store into exactly its content, in one write
// transaction whose version is the snapshot's Raft index.
//
// Format, little-endian:
//
//   8    magic "KEELSTOR"
//   1    format (1)
//   8    version of the store when it was written (at most the Raft index
//        the snapshot is restored at)
//   then one section per table, in any order, each table at most once:
//   1    'T'
//   4+n  table name (u32 length, at most table_name_limit bytes)
//   8    object count
//        per object, ascending by primary key (the id's key in the "id"
//        index): u32 length, then the bytes object_traits<T>::encode made
//   then the end:
//   1    'E'
//   4    number of table sections
//   8    number of objects in all sections
//   4    CRC32C of every byte before this field
//   nothing after it
//
// A table of the store that has no section is empty in the snapshot (a store
// with a newer schema can restore an older snapshot); a section of a table
// the store does not have is an error. The snapshot file layer checksums the
// file as well; the stream's own CRC makes any damage an error also when the
// stream travels some other way.
//
// Restore merges, table by table, the snapshot's objects with the store's,
// both in primary key order: it never holds more than one encoded object (at
// most max_object_bytes, grown only as bytes arrive) and a read buffer, plus
// the objects whose put must wait for a unique value (a name) that another
// object still holds until the merge reaches it. Bad input is an error value
// and the transaction is dropped: the store, its version and its watchers see
// nothing. The restore holds the store's writer lock throughout; readers go on.
// Its changes are one commit: a watcher whose queue cannot take them all is
// closed with errc::watch_overflow, as after any large commit.
//
// Thread safety: the functions use only their arguments; the store's own
// locking applies.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/detail/codec.hpp"
#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/store/indexer.hpp"
#include "keel/store/store.hpp"
#include "keel/store/transaction.hpp"
#include "keel/wal/crc32c.hpp"

namespace keel::node {

/// The stream's first bytes.
inline constexpr std::string_view store_snapshot_magic = "KEELSTOR";
/// The format written, and the only one read.
inline constexpr std::uint8_t store_snapshot_format = 1;
/// The pieces write_store_snapshot hands its sink unless told otherwise.
inline constexpr std::size_t default_piece_bytes = std::size_t{64} << 10;
/// The largest encoded object a restore accepts unless told otherwise.
inline constexpr std::size_t default_max_object_bytes = std::size_t{64} << 20;
/// The longest table name a snapshot may carry.
inline constexpr std::size_t table_name_limit = 255;

// clang-format off
/// Where a snapshot goes: `sink(piece)` stores the next bytes of the stream
/// (the piece is valid only during the call) and returns an error to stop
/// the write. wal::snapshot_writer::write fits.
template <class S>
concept store_snapshot_sink = requires(S& sink, std::span<const std::byte> piece) {
  { sink(piece) } -> std::convertible_to<std::error_code>;
};

/// Where a snapshot comes from: `source(out)` fills a prefix of out with the
/// next bytes of the stream and returns how many (at most out.size(); 0
/// only at the end) or an error. wal::snapshot_reader::read fits.
template <class S>
concept store_snapshot_source = requires(S& source, std::span<std::byte> out) {
  { source(out) } -> std::same_as<result<std::size_t>>;
};
// clang-format on

/// What a restore did.
struct restore_summary {
  std::uint64_t objects = 0;  ///< Objects in the snapshot.
  std::uint64_t created = 0;  ///< Of them, absent from the store before.
  std::uint64_t updated = 0;  ///< Of them, present with other bytes or another version.
  std::uint64_t removed = 0;  ///< Objects of the store absent from the snapshot.
};

namespace detail {

inline constexpr std::uint8_t section_tag = 'T';
inline constexpr std::uint8_t end_tag = 'E';
/// How much a restore reads from its source at a time.
inline constexpr std::size_t snapshot_read_buffer = std::size_t{64} << 10;

/// Gathers the stream into pieces of at most `limit` bytes for a sink,
/// keeping the CRC of what it wrote. The sink's first error is sticky.
template <class Sink>
class snapshot_output {
 public:
  snapshot_output(Sink& sink, std::size_t limit) : sink_(sink), limit_(limit) {
    buffer_.reserve(std::min<std::size_t>(limit, snapshot_read_buffer));
  }

  std::error_code error() const noexcept { return error_; }
  /// Stops the write with ec.
  void fail(std::error_code ec) noexcept {
    if (!error_) error_ = ec;
  }

  void bytes(std::span<const std::byte> data) {
    crc_ = wal::crc32c(data, crc_);
    append(data);
  }
  void bytes(std::string_view data) { bytes(std::as_bytes(std::span(data.data(), data.size()))); }
  void u8(std::uint8_t v) {
    const std::byte b{v};
    bytes(std::span(&b, 1));
  }
  void u32(std::uint32_t v) {
    std::array<std::byte, 4> b{};
    keel::detail::put_u32(b.data(), v);
    bytes(b);
  }
  void u64(std::uint64_t v) {
    std::array<std::byte, 8> b{};
    keel::detail::put_u64(b.data(), v);
    bytes(b);
  }

  /// Appends the CRC of everything so far and hands the last piece over.
  std::error_code finish() {
    std::array<std::byte, 4> b{};
    keel::detail::put_u32(b.data(), crc_);
    append(b);
    flush();
    return error_;
  }

 private:
  void append(std::span<const std::byte> data) {
    while (!data.empty() && !error_) {
      const std::size_t take = std::min(data.size(), limit_ - buffer_.size());
      buffer_.insert(buffer_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
      data = data.subspan(take);
      if (buffer_.size() == limit_) flush();
    }
  }
  void flush() {
    if (buffer_.empty() || error_) return;
    error_ = sink_(std::span<const std::byte>(buffer_.data(), buffer_.size()));
    buffer_.clear();
  }

  Sink& sink_;
  std::size_t limit_;
  std::vector<std::byte> buffer_;
  std::uint32_t crc_ = 0;
  std::error_code error_{};
};

/// Reads the stream through a bounded buffer, keeping the CRC of what it
/// consumed. Running out of data is errc::corrupt_snapshot (truncated).
template <class Source>
class snapshot_input {
 public:
  explicit snapshot_input(Source& source) : source_(source), buffer_(snapshot_read_buffer) {}

  /// The CRC32C of every byte consumed so far.
  std::uint32_t crc() const noexcept { return crc_; }

  std::error_code bytes(std::span<std::byte> out) {
    while (!out.empty()) {
      if (auto ec = fill()) return ec;
      const std::size_t take = std::min(out.size(), end_ - begin_);
      std::memcpy(out.data(), buffer_.data() + begin_, take);
      consume(take);
      out = out.subspan(take);
    }
    return {};
  }
  std::error_code u8(std::uint8_t& v) {
    std::byte b{};
    if (auto ec = bytes(std::span(&b, 1))) return ec;
    v = std::to_integer<std::uint8_t>(b);
    return {};
  }
  std::error_code u32(std::uint32_t& v) {
    std::array<std::byte, 4> b{};
    if (auto ec = bytes(b)) return ec;
    v = keel::detail::get_u32(b.data());
    return {};
  }
  std::error_code u64(std::uint64_t& v) {
    std::array<std::byte, 8> b{};
    if (auto ec = bytes(b)) return ec;
    v = keel::detail::get_u64(b.data());
    return {};
  }

  /// Appends the next n bytes to s, growing it only as they arrive, so a
  /// damaged length cannot make it allocate what the stream does not hold.
  std::error_code append(std::string& s, std::size_t n) {
    while (n > 0) {
      if (auto ec = fill()) return ec;
      const std::size_t take = std::min(n, end_ - begin_);
      s.append(reinterpret_cast<const char*>(buffer_.data() + begin_), take);
      consume(take);
      n -= take;
    }
    return {};
  }

  /// Whether the stream ends here: errc::corrupt_snapshot if more follows.
  std::error_code expect_end() {
    if (begin_ == end_ && !ended_) {
      if (auto ec = read_more()) return ec;
    }
    return begin_ == end_ ? std::error_code{} : make_error_code(errc::corrupt_snapshot);
  }

 private:
  std::error_code fill() {
    if (begin_ < end_) return {};
    if (ended_) return errc::corrupt_snapshot;
    if (auto ec = read_more()) return ec;
    return begin_ < end_ ? std::error_code{} : make_error_code(errc::corrupt_snapshot);
  }
  std::error_code read_more() {
    auto n = source_(std::span<std::byte>(buffer_));
    if (!n) return n.error();
    if (*n > buffer_.size()) return errc::invalid_argument;  // The source broke its contract.
    begin_ = 0;
    end_ = *n;
    ended_ = *n == 0;
    return {};
  }
  void consume(std::size_t n) {
    crc_ = wal::crc32c(std::span<const std::byte>(buffer_.data() + begin_, n), crc_);
    begin_ += n;
  }

  Source& source_;
  std::vector<std::byte> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool ended_ = false;
  std::uint32_t crc_ = 0;
};

/// Writes T's table: its section header, then every object in id order.
template <store::object T, class Sink>
void write_table(const store::table_state<T>& table, snapshot_output<Sink>& out) {
  const std::string_view name = store::object_traits<T>::table;
  out.u8(section_tag);
  out.u32(static_cast<std::uint32_t>(name.size()));
  out.bytes(name);
  out.u64(table.size());
  for (const auto& e : table.primary()) {
    if (out.error()) return;
    const std::string bytes = store::object_traits<T>::encode(*e.value);
    if (bytes.size() > UINT32_MAX) return out.fail(errc::invalid_argument);
    out.u32(static_cast<std::uint32_t>(bytes.size()));
    out.bytes(bytes);
  }
}

/// Turns T's table in `tx` into the `count` objects that follow in `in`,
/// merging them with the table's objects in `old` (tx's base) by key.
template <store::object T, store::object... Ts, class Source>
std::error_code restore_table(store::write_transaction<Ts...>& tx, const store::table_state<T>& old,
                              snapshot_input<Source>& in, std::uint64_t count,
                              std::size_t max_object_bytes, restore_summary& summary) {
  using traits = store::object_traits<T>;
  auto it = old.primary().begin();
  const auto end = old.primary().end();
  auto remove_old = [&]() -> std::error_code {
    const store::object_ptr<T> gone = (*it).value;
    ++it;
    ++summary.removed;
    return tx.template remove<T>(traits::id(*gone));
  };
  std::string bytes;
  std::string key;
  std::string previous;
  // Puts refused for a unique value that an object later in the merge still
  // holds; retried once the table is merged.
  std::vector<store::object_ptr<T>> waiting;
  for (std::uint64_t n = 0; n < count; ++n) {
    std::uint32_t size = 0;
    if (auto ec = in.u32(size)) return ec;
    if (size > max_object_bytes) return errc::corrupt_snapshot;
    bytes.clear();
    if (auto ec = in.append(bytes, size)) return ec;
    auto decoded = traits::decode(bytes);
    if (!decoded) return errc::invalid_object;
    auto obj = std::make_shared<const T>(std::move(*decoded));
    const std::string_view id = traits::id(*obj);
    if (id.empty()) return errc::invalid_object;
    key.clear();
    store::append_entry_id(key, id);
    if (n > 0 && key <= previous) return errc::corrupt_snapshot;  // Out of order or repeated.
    previous = key;
    ++summary.objects;

    while (it != end && (*it).key < key) {
      if (auto ec = remove_old()) return ec;
    }
    bool replaces = false;
    if (it != end && (*it).key == key) {
      const store::object_ptr<T> current = (*it).value;
      ++it;
      if (traits::version(*current) == traits::version(*obj) && traits::encode(*current) == bytes) {
        continue;  // Unchanged: no write, no event.
      }
      replaces = true;
      ++summary.updated;
    } else {
      ++summary.created;
    }
    const std::error_code ec = tx.put(obj);
    if (ec == errc::name_conflict) {
      // Free its own old values too: two objects may swap names.
      if (replaces) {
        if (auto removed = tx.template remove<T>(id)) return removed;
      }
      waiting.push_back(std::move(obj));
    } else if (ec) {
      return errc::invalid_object;  // E.g. a value a required index lacks.
    }
  }
  while (it != end) {
    if (auto ec = remove_old()) return ec;
  }
  for (const store::object_ptr<T>& obj : waiting) {
    // Every other object is in place now: a conflict left is in the snapshot.
    if (tx.put(obj)) return errc::corrupt_snapshot;
  }
  return {};
}

/// Calls f(std::type_identity<T>) for the T of Ts whose table is `name`.
template <store::object... Ts, class F>
void with_table(std::string_view name, F&& f) {
  (void)((name == std::string_view(store::object_traits<Ts>::table) &&
          (f(std::type_identity<Ts>{}), true)) ||
         ...);
}

/// Reads the whole stream into tx; see the format above.
template <store::object... Ts, class Source>
std::error_code restore_into(store::write_transaction<Ts...>& tx, snapshot_input<Source>& in,
                             std::size_t max_object_bytes, restore_summary& summary) {
  std::array<std::byte, store_snapshot_magic.size()> magic{};
  std::uint8_t format = 0;
  std::uint64_t written_at = 0;
  if (auto ec = in.bytes(magic)) return ec;
  if (!std::equal(magic.begin(), magic.end(), store_snapshot_magic.begin(),
                  [](std::byte b, char c) { return b == static_cast<std::byte>(c); })) {
    return errc::corrupt_snapshot;
  }
  if (auto ec = in.u8(format)) return ec;
  if (format != store_snapshot_format) return errc::corrupt_snapshot;
  if (auto ec = in.u64(written_at)) return ec;
  if (written_at > tx.version()) return errc::corrupt_snapshot;

  const store::read_transaction<Ts...> base = tx.base();
  std::array<bool, sizeof...(Ts)> seen{};
  std::uint32_t sections = 0;
  std::string name;
  for (;;) {
    std::uint8_t tag = 0;
    if (auto ec = in.u8(tag)) return ec;
    if (tag == end_tag) break;
    if (tag != section_tag) return errc::corrupt_snapshot;
    std::uint32_t name_size = 0;
    std::uint64_t count = 0;
    if (auto ec = in.u32(name_size)) return ec;
    if (name_size > table_name_limit) return errc::corrupt_snapshot;
    name.clear();
    if (auto ec = in.append(name, name_size)) return ec;
    if (auto ec = in.u64(count)) return ec;
    std::error_code ec = errc::corrupt_snapshot;  // Unless a table of the store is `name`.
    with_table<Ts...>(name, [&]<class T>(std::type_identity<T>) {
      if (std::exchange(seen[store::type_index_v<T, Ts...>], true)) return;  // A second section.
      ec = restore_table<T>(tx, base.template table<T>(), in, count, max_object_bytes, summary);
    });
    if (ec) return ec;
    ++sections;
  }
  std::uint32_t stated_sections = 0;
  std::uint64_t stated_objects = 0;
  if (auto ec = in.u32(stated_sections)) return ec;
  if (auto ec = in.u64(stated_objects)) return ec;
  if (stated_sections != sections || stated_objects != summary.objects) {
    return errc::corrupt_snapshot;
  }
  const std::uint32_t crc = in.crc();
  std::uint32_t stated_crc = 0;
  if (auto ec = in.u32(stated_crc)) return ec;
  if (stated_crc != crc) return errc::corrupt_snapshot;
  if (auto ec = in.expect_end()) return ec;

  // The tables the snapshot has no section for are empty in it.
  std::error_code ec;
  (void)((!seen[store::type_index_v<Ts, Ts...>] &&
          static_cast<bool>(ec = restore_table<Ts>(tx, base.template table<Ts>(), in, 0,
                                                   max_object_bytes, summary))) ||
         ...);
  return ec;
}

}  // namespace detail

/// Streams every object of `tx`, table by table in id order, to `sink` in
/// pieces of at most piece_bytes. Never holds more than one piece and one
/// encoded object; writers go on meanwhile (tx is a snapshot). Returns the
/// sink's first error (the write stops there), or errc::invalid_argument if
/// piece_bytes is 0 or an object's encoding exceeds 4 GiB.
template <store::object... Ts, store_snapshot_sink Sink>
std::error_code write_store_snapshot(const store::read_transaction<Ts...>& tx, Sink&& sink,
                                     std::size_t piece_bytes = default_piece_bytes) {
  if (piece_bytes == 0) return errc::invalid_argument;
  detail::snapshot_output<std::remove_reference_t<Sink>> out(sink, piece_bytes);
  out.bytes(store_snapshot_magic);
  out.u8(store_snapshot_format);
  out.u64(tx.version());
  std::uint64_t objects = 0;
  // Table by table, stopping at the first error.
  (void)((detail::write_table<Ts>(tx.template table<Ts>(), out),
          objects += tx.template table<Ts>().size(), static_cast<bool>(out.error())) ||
         ...);
  out.u8(detail::end_tag);
  out.u32(static_cast<std::uint32_t>(sizeof...(Ts)));
  out.u64(objects);
  return out.finish();
}

/// Reads a snapshot that write_store_snapshot wrote from `source` and makes
/// the store hold exactly its objects, with the versions they carry, in one
/// write transaction at `version` (the snapshot's Raft index). Watchers get
/// the creates, updates and deletes that turn the old content into the new;
/// an object with the same bytes and version gets none. Errors, after which
/// the store is exactly as before:
///  - errc::invalid_argument: version is not above the store's;
///  - errc::corrupt_snapshot: not this format, truncated, damaged (CRC),
///    an unknown or repeated table, ids out of order or repeated, counts
///    that do not match, bytes after the end, an object over
///    max_object_bytes, two objects sharing a unique value, or a store
///    version above `version`;
///  - errc::invalid_object: an object its traits cannot decode, without an
///    id, or lacking a value a required index needs;
///  - the source's own error.
template <store::object... Ts, store_snapshot_source Source>
result<restore_summary> restore_store_snapshot(
    store::store<Ts...>& s, std::uint64_t version, Source&& source,
    std::size_t max_object_bytes = default_max_object_bytes) {
  if (version <= s.version()) return errc::invalid_argument;
  std::optional<store::write_transaction<Ts...>> tx;
  try {
    tx.emplace(s.begin_write_at(version));
  } catch (const std::invalid_argument&) {
    return errc::invalid_argument;  // Another writer got there first.
  }
  detail::snapshot_input<std::remove_reference_t<Source>> in(source);
  restore_summary summary;
  if (auto ec = detail::restore_into(*tx, in, max_object_bytes, summary)) return ec;
  s.commit(std::move(*tx));
  return summary;
}

}  // namespace keel::node
