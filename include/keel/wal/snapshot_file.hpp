// Snapshot files: one durable snapshot of the state machine per file, written
// and read in pieces so that neither side ever holds a whole snapshot in
// memory (the transport streams from and to these files).
//
// File names, in a snapshot directory (etcd's scheme, hex, zero-padded):
//   <term:016x>-<index:016x>.snap       a committed snapshot
//   <term:016x>-<index:016x>.snap.tmp   being written locally; never read
//   <term:016x>-<index:016x>.snap.part  being received; resumable after a crash
//
// Format (all integers little-endian; m = metadata length):
//   offset  size  field
//   0       8     magic: "KEELSNP1" committed, "KEELPRT1" while being written
//   8       4     format version (1)
//   12      8     index of the last log entry the snapshot covers
//   20      8     term of that entry
//   28      4     m, at most snapshot_metadata_limit
//   32      m     metadata, opaque here (the node layer stores the conf state)
//   32+m    8     content size in bytes
//   40+m    4     CRC32C of the content
//   44+m    4     CRC32C of bytes [0, 44+m) of the header
//   48+m          content
// While a file is being written its header is an in-progress header
// ("KEELPRT1"): in a .part file its size field is the checkpoint, the number
// of content bytes known durable (made so by snapshot_writer::sync()), and its
// CRC field is 0. commit() replaces it by the committed header.
//
// Durability protocol: content and header are written to the .tmp (or .part)
// file, the file is synced, renamed to .snap, and the directory synced; only
// then is the snapshot reported installed. A crash at any point leaves either
// no .snap file or a complete one, never a half-written one.
//
// Invariants: a reader accepts a file only if the magic, version and header
// CRC match and the content size equals the file size minus the header size;
// no size read from a file is trusted (allocated or read) before it has been
// checked against the file's real size. Memory per writer or verifying reader
// is bounded by snapshot_buffer_size plus the metadata.
//
// Thread safety: a writer or reader is used by one thread at a time; distinct
// writers and readers may be used concurrently if FS allows it (the POSIX one
// does).
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/wal/crc32c.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::wal {

/// The size of the buffer a writer fills before writing to its file, and of
/// the buffer a reader verifies the content through.
inline constexpr std::size_t snapshot_buffer_size = std::size_t{1} << 20;
/// The largest metadata a snapshot may carry; larger lengths in a file mean
/// the header is corrupt.
inline constexpr std::uint32_t snapshot_metadata_limit = std::uint32_t{64} << 20;
/// The format version written into, and accepted from, the header.
inline constexpr std::uint32_t snapshot_format_version = 1;

/// What a file in a snapshot directory holds.
enum class snapshot_file_kind {
  committed,  ///< `.snap`: a complete snapshot.
  temporary,  ///< `.snap.tmp`: being written locally.
  partial,    ///< `.snap.part`: being received; resumable.
};

/// A snapshot file's name: the (index, term) it holds and its kind.
struct snapshot_name {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  snapshot_file_kind kind = snapshot_file_kind::committed;

  /// The file name, e.g. "0000000000000002-0000000000000010.snap".
  std::string str() const {
    static constexpr std::array<std::string_view, 3> suffixes = {".snap", ".snap.tmp",
                                                                 ".snap.part"};
    std::string name(33, '-');
    static constexpr char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; ++i) {
      name[static_cast<std::size_t>(15 - i)] = digits[(term >> (4 * i)) & 0xF];
      name[static_cast<std::size_t>(32 - i)] = digits[(index >> (4 * i)) & 0xF];
    }
    name += suffixes[static_cast<std::size_t>(kind)];
    return name;
  }

  /// The name's parts, or nothing if `name` is not a snapshot file's name
  /// (lower-case hex only, as str() writes).
  static std::optional<snapshot_name> parse(std::string_view name) {
    if (name.size() < 38 || name[16] != '-') return std::nullopt;
    snapshot_name parsed;
    const std::string_view suffix = name.substr(33);
    if (suffix == ".snap") {
      parsed.kind = snapshot_file_kind::committed;
    } else if (suffix == ".snap.tmp") {
      parsed.kind = snapshot_file_kind::temporary;
    } else if (suffix == ".snap.part") {
      parsed.kind = snapshot_file_kind::partial;
    } else {
      return std::nullopt;
    }
    const auto hex = [](std::string_view s, std::uint64_t& out) {
      out = 0;
      for (const char c : s) {
        int digit = 0;
        if (c >= '0' && c <= '9') {
          digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
          digit = c - 'a' + 10;
        } else {
          return false;
        }
        out = (out << 4) | static_cast<std::uint64_t>(digit);
      }
      return true;
    };
    if (!hex(name.substr(0, 16), parsed.term) || !hex(name.substr(17, 16), parsed.index)) {
      return std::nullopt;
    }
    return parsed;
  }

  /// Whether this names an older snapshot than `other`: a lower index, or the
  /// same index and a lower term.
  constexpr bool older_than(const snapshot_name& other) const noexcept {
    return index != other.index ? index < other.index : term < other.term;
  }
};

/// The decoded header of a snapshot file.
struct snapshot_header {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  std::vector<std::byte> metadata{};
  std::uint64_t size = 0;  ///< Content bytes (in a .part file: the checkpoint).
  std::uint32_t crc = 0;   ///< CRC32C of the content (0 while in progress).
};

/// The bytes a header with `metadata_size` bytes of metadata takes.
constexpr std::uint64_t snapshot_header_size(std::uint64_t metadata_size) noexcept {
  return 48 + metadata_size;
}

template <file_system FS>
class snapshot_store;

namespace detail {

inline constexpr std::string_view snapshot_magic = "KEELSNP1";
inline constexpr std::string_view snapshot_in_progress_magic = "KEELPRT1";
/// Bytes of the header before the metadata.
inline constexpr std::size_t snapshot_header_prefix = 32;

inline void snapshot_put_le(std::byte* p, std::uint64_t value, int width) noexcept {
  for (int i = 0; i < width; ++i) p[i] = static_cast<std::byte>((value >> (8 * i)) & 0xFF);
}

inline std::uint64_t snapshot_get_le(const std::byte* p, int width) noexcept {
  std::uint64_t value = 0;
  for (int i = 0; i < width; ++i) value |= std::to_integer<std::uint64_t>(p[i]) << (8 * i);
  return value;
}

/// The header's bytes, with `magic` ("KEELSNP1" or "KEELPRT1").
inline std::vector<std::byte> encode_snapshot_header(std::string_view magic,
                                                     const snapshot_header& h) {
  const std::size_t m = h.metadata.size();
  std::vector<std::byte> out(static_cast<std::size_t>(snapshot_header_size(m)));
  std::byte* p = out.data();
  for (std::size_t i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(magic[i]);
  snapshot_put_le(p + 8, snapshot_format_version, 4);
  snapshot_put_le(p + 12, h.index, 8);
  snapshot_put_le(p + 20, h.term, 8);
  snapshot_put_le(p + 28, m, 4);
  std::copy(h.metadata.begin(), h.metadata.end(), p + snapshot_header_prefix);
  p += snapshot_header_prefix + m;
  snapshot_put_le(p, h.size, 8);
  snapshot_put_le(p + 8, h.crc, 4);
  snapshot_put_le(p + 12, crc32c(std::span<const std::byte>(out.data(), out.size() - 4)), 4);
  return out;
}

/// Reads and checks the header of `f`, a file of `file_size` bytes: magic,
/// version, metadata length against the limit and the file size, header CRC.
/// errc::corrupt_snapshot if any fails; the file's read error if reading fails.
/// Callers check the size field, whose meaning depends on the magic.
template <file F>
result<snapshot_header> read_snapshot_header(F& f, std::uint64_t file_size,
                                             std::string_view magic) {
  if (file_size < snapshot_header_size(0)) return errc::corrupt_snapshot;
  std::array<std::byte, snapshot_header_prefix> prefix{};
  auto n = f.read(0, prefix);
  if (!n) return n.error();
  if (*n != prefix.size()) return errc::corrupt_snapshot;
  for (std::size_t i = 0; i < 8; ++i) {
    if (prefix[i] != static_cast<std::byte>(magic[i])) return errc::corrupt_snapshot;
  }
  if (snapshot_get_le(prefix.data() + 8, 4) != snapshot_format_version) {
    return errc::corrupt_snapshot;  // Another format (a newer keel?) or damage.
  }
  const std::uint64_t m = snapshot_get_le(prefix.data() + 28, 4);
  // Checked before anything is allocated from it.
  if (m > snapshot_metadata_limit || snapshot_header_size(m) > file_size) {
    return errc::corrupt_snapshot;
  }
  std::vector<std::byte> bytes(static_cast<std::size_t>(snapshot_header_size(m)));
  std::copy(prefix.begin(), prefix.end(), bytes.begin());
  const std::span<std::byte> rest = std::span(bytes).subspan(snapshot_header_prefix);
  n = f.read(snapshot_header_prefix, rest);
  if (!n) return n.error();
  if (*n != rest.size()) return errc::corrupt_snapshot;
  const std::byte* p = bytes.data();
  const std::uint32_t stored_crc =
      static_cast<std::uint32_t>(snapshot_get_le(p + bytes.size() - 4, 4));
  if (crc32c(std::span<const std::byte>(p, bytes.size() - 4)) != stored_crc) {
    return errc::corrupt_snapshot;
  }
  snapshot_header h;
  h.index = snapshot_get_le(p + 12, 8);
  h.term = snapshot_get_le(p + 20, 8);
  h.metadata.assign(p + snapshot_header_prefix, p + snapshot_header_prefix + m);
  h.size = snapshot_get_le(p + snapshot_header_prefix + m, 8);
  h.crc = static_cast<std::uint32_t>(snapshot_get_le(p + snapshot_header_prefix + m + 8, 4));
  return h;
}

/// A file operation's error as keel reports it: running out of space (or
/// quota) becomes errc::no_space; anything else stays the system's error.
inline std::error_code snapshot_io_error(std::error_code ec) noexcept {
  if (ec == std::errc::no_space_on_device) return errc::no_space;
#ifdef EDQUOT
  if (ec.category() == std::system_category() && ec.value() == EDQUOT) return errc::no_space;
#endif
  return ec;
}

inline std::string snapshot_path(const std::string& directory, const std::string& name) {
  if (directory.empty()) return name;
  if (directory.back() == '/') return directory + name;
  return directory + '/' + name;
}

/// Removes the committed snapshots older than `newest` beyond the `keep_old`
/// newest of them, then syncs the directory if it removed any. Snapshots
/// newer than `newest` are never touched.
template <file_system FS>
std::error_code prune_snapshots(FS& fs, const std::string& directory, snapshot_name newest,
                                std::size_t keep_old) {
  auto names = fs.list(directory);
  if (!names) return snapshot_io_error(names.error());
  std::vector<snapshot_name> older_ones;
  for (const std::string& name : *names) {
    const auto parsed = snapshot_name::parse(name);
    if (parsed && parsed->kind == snapshot_file_kind::committed && parsed->older_than(newest)) {
      older_ones.push_back(*parsed);
    }
  }
  if (older_ones.size() <= keep_old) return {};
  std::sort(older_ones.begin(), older_ones.end(),
            [](const snapshot_name& a, const snapshot_name& b) { return b.older_than(a); });
  for (std::size_t i = keep_old; i < older_ones.size(); ++i) {
    // Another user of the directory may have removed it first.
    if (auto ec = fs.remove(snapshot_path(directory, older_ones[i].str()));
        ec && ec != std::errc::no_such_file_or_directory) {
      return snapshot_io_error(ec);
    }
  }
  return snapshot_io_error(fs.sync_directory(directory));
}

/// The CRC32C of bytes [offset, offset + length) of `f`, read through
/// `buffer` in pieces of at most snapshot_buffer_size bytes.
/// errc::corrupt_snapshot if the file ends before.
template <file F>
result<std::uint32_t> snapshot_content_crc(F& f, std::uint64_t offset, std::uint64_t length,
                                           std::vector<std::byte>& buffer) {
  buffer.resize(static_cast<std::size_t>(
      std::min<std::uint64_t>(std::max<std::uint64_t>(length, 1), snapshot_buffer_size)));
  std::uint32_t crc = 0;
  while (length > 0) {
    const auto piece = std::span(buffer).first(
        static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size())));
    auto n = f.read(offset, piece);
    if (!n) return n.error();
    if (*n != piece.size()) return errc::corrupt_snapshot;
    crc = crc32c(std::span<const std::byte>(piece), crc);
    offset += piece.size();
    length -= piece.size();
  }
  return crc;
}

/// A flag that a move clears in its source, so a moved-from object knows it
/// owns nothing.
class snapshot_file_ownership {
 public:
  explicit snapshot_file_ownership(bool value = false) noexcept : value_(value) {}
  snapshot_file_ownership(snapshot_file_ownership&& other) noexcept
      : value_(std::exchange(other.value_, false)) {}
  snapshot_file_ownership& operator=(snapshot_file_ownership&& other) noexcept {
    value_ = std::exchange(other.value_, false);
    return *this;
  }
  ~snapshot_file_ownership() = default;
  explicit operator bool() const noexcept { return value_; }
  void reset() noexcept { value_ = false; }

 private:
  bool value_;
};

}  // namespace detail

/// Writes one snapshot in pieces, then installs it durably. Made by
/// snapshot_store::begin (a .tmp file) or snapshot_store::begin_partial (a
/// resumable .part file).
///
/// Every error is sticky: after one, every call returns it and the snapshot
/// is never installed. Destroying a writer that was not committed removes its
/// .tmp file (best effort) but keeps a .part file, so the transfer can resume
/// from its last sync().
template <file_system FS>
class snapshot_writer {
 public:
  using file_type = typename FS::file_type;

  snapshot_writer(snapshot_writer&&) noexcept = default;
  snapshot_writer& operator=(snapshot_writer&&) = delete;
  ~snapshot_writer() {
    if (owns_file_ && !partial_) (void)fs_.remove(path_);
  }

  /// The index of the last log entry the snapshot covers.
  std::uint64_t index() const noexcept { return header_.index; }
  /// The term of that entry.
  std::uint64_t term() const noexcept { return header_.term; }
  /// Content bytes held so far: written in this session, plus, for a resumed
  /// .part file, the bytes its last sync() made durable. The next write()
  /// continues at this offset of the content.
  std::uint64_t held() const noexcept { return written_ + buffer_.size(); }

  /// Appends `data` to the content. Buffered: the file gets it in pieces of
  /// about snapshot_buffer_size bytes; it is durable only after sync() or
  /// commit().
  std::error_code write(std::span<const std::byte> data) {
    if (auto ec = usable()) return ec;
    if (buffer_.size() + data.size() > snapshot_buffer_size) {
      if (auto ec = flush()) return ec;
    }
    if (data.size() >= snapshot_buffer_size) {  // The buffer is empty here.
      if (auto ec = file_.write(header_bytes_ + written_, data)) {
        return fail(detail::snapshot_io_error(ec));
      }
      written_ += data.size();
    } else {
      if (buffer_.capacity() < snapshot_buffer_size) buffer_.reserve(snapshot_buffer_size);
      buffer_.insert(buffer_.end(), data.begin(), data.end());
    }
    if (crc_known_) crc_ = crc32c(data, crc_);
    return {};
  }

  /// A checkpoint: makes the content held so far durable and, in a .part
  /// file, records held() in the header, so that begin_partial after a crash
  /// resumes from here. In a .part file it costs two fsyncs (content, then
  /// the header that claims it); call it every few MiB, not per piece.
  std::error_code sync() {
    if (auto ec = usable()) return ec;
    if (auto ec = flush()) return ec;
    if (auto ec = file_.sync()) return fail(detail::snapshot_io_error(ec));
    if (partial_) {
      // Only after the content is durable may the header claim it.
      header_.size = written_;
      header_.crc = 0;
      const auto bytes =
          detail::encode_snapshot_header(detail::snapshot_in_progress_magic, header_);
      if (auto ec = file_.write(0, bytes)) return fail(detail::snapshot_io_error(ec));
      if (auto ec = file_.sync()) return fail(detail::snapshot_io_error(ec));
    }
    return sync_directory_once();
  }

  /// Installs the snapshot: writes the final header, syncs the file, renames
  /// it to .snap, syncs the directory, then removes the committed snapshots
  /// older than this one beyond the store's keep_old newest of them.
  /// An error before the rename leaves nothing installed; an error after it
  /// (syncing the directory, pruning) means the disk misbehaves and the
  /// snapshot may or may not survive a crash: stop (STYLE.md, fail-stop).
  std::error_code commit() { return finish(std::nullopt); }

  /// Like commit(), but first checks that the content is `expected_size`
  /// bytes with CRC32C `expected_crc` (what the sender announced). On a
  /// mismatch the file is removed, nothing is installed, and the result is
  /// errc::corrupt_snapshot. After a resume the CRC is computed by reading
  /// the file back in pieces.
  std::error_code commit(std::uint64_t expected_size, std::uint32_t expected_crc) {
    return finish(expectation{expected_size, expected_crc});
  }

 private:
  friend class snapshot_store<FS>;

  struct expectation {
    std::uint64_t size;
    std::uint32_t crc;
  };

  snapshot_writer(FS fs, std::string directory, snapshot_header header, file_type file,
                  bool partial, std::uint64_t held, std::size_t keep_old)
      : fs_(std::move(fs)),
        directory_(std::move(directory)),
        header_(std::move(header)),
        path_(detail::snapshot_path(
            directory_,
            snapshot_name{header_.index, header_.term,
                          partial ? snapshot_file_kind::partial : snapshot_file_kind::temporary}
                .str())),
        file_(std::move(file)),
        header_bytes_(snapshot_header_size(header_.metadata.size())),
        written_(held),
        crc_known_(held == 0),
        partial_(partial),
        keep_old_(keep_old),
        owns_file_(true) {}

  /// Creates `<name>.snap.tmp` (replacing a leftover one) with an in-progress
  /// header.
  static result<snapshot_writer> create(FS fs, std::string directory, snapshot_header header,
                                        std::size_t keep_old) {
    const std::string path = detail::snapshot_path(
        directory, snapshot_name{header.index, header.term, snapshot_file_kind::temporary}.str());
    auto file = fs.open(path, open_mode::create);
    if (!file && file.error() == std::errc::file_exists) {
      (void)fs.remove(path);
      file = fs.open(path, open_mode::create);
    }
    if (!file) return detail::snapshot_io_error(file.error());
    snapshot_writer writer(std::move(fs), std::move(directory), std::move(header), std::move(*file),
                           false, 0, keep_old);
    if (auto ec = writer.write_placeholder()) return ec;
    return writer;
  }

  /// Reopens `<name>.snap.part` and resumes after its checkpoint, or starts
  /// it afresh if it is missing, unreadable as a .part file, or describes a
  /// different snapshot (other metadata). A .part file whose commit was cut
  /// after it got its final header also starts afresh (rare, and safe).
  static result<snapshot_writer> resume(FS fs, std::string directory, snapshot_header header,
                                        std::size_t keep_old) {
    const std::string path = detail::snapshot_path(
        directory, snapshot_name{header.index, header.term, snapshot_file_kind::partial}.str());
    const std::uint64_t header_bytes = snapshot_header_size(header.metadata.size());
    auto file = fs.open(path, open_mode::read_write);
    if (!file) {
      if (file.error() != std::errc::no_such_file_or_directory) {
        return detail::snapshot_io_error(file.error());
      }
      file = fs.open(path, open_mode::create);
      if (!file) return detail::snapshot_io_error(file.error());
      snapshot_writer writer(std::move(fs), std::move(directory), std::move(header),
                             std::move(*file), true, 0, keep_old);
      if (auto ec = writer.write_placeholder()) return ec;
      return writer;
    }
    auto size = file->size();
    if (!size) return detail::snapshot_io_error(size.error());
    std::uint64_t held = 0;
    auto found = detail::read_snapshot_header(*file, *size, detail::snapshot_in_progress_magic);
    if (!found && found.error() != errc::corrupt_snapshot) {
      return detail::snapshot_io_error(found.error());
    }
    if (found && found->index == header.index && found->term == header.term &&
        found->metadata == header.metadata && found->size <= *size - header_bytes) {
      held = found->size;
    }
    // Anything past the checkpoint was never synced: it may be lost or torn.
    if (auto ec = file->truncate(held == 0 ? 0 : header_bytes + held)) {
      return detail::snapshot_io_error(ec);
    }
    snapshot_writer writer(std::move(fs), std::move(directory), std::move(header), std::move(*file),
                           true, held, keep_old);
    if (held == 0) {
      if (auto ec = writer.write_placeholder()) return ec;
    }
    return writer;
  }

  std::error_code write_placeholder() {
    header_.size = 0;
    header_.crc = 0;
    const auto bytes = detail::encode_snapshot_header(detail::snapshot_in_progress_magic, header_);
    if (auto ec = file_.write(0, bytes)) return fail(detail::snapshot_io_error(ec));
    return {};
  }

  std::error_code usable() const {
    if (error_) return error_;
    if (!owns_file_) return errc::invalid_argument;  // Committed or moved from.
    return {};
  }

  std::error_code fail(std::error_code ec) {
    error_ = ec;
    return ec;
  }

  std::error_code flush() {
    if (buffer_.empty()) return {};
    if (auto ec = file_.write(header_bytes_ + written_, buffer_)) {
      return fail(detail::snapshot_io_error(ec));
    }
    written_ += buffer_.size();
    buffer_.clear();
    return {};
  }

  std::error_code sync_directory_once() {
    if (directory_synced_) return {};
    if (auto ec = fs_.sync_directory(directory_)) return fail(detail::snapshot_io_error(ec));
    directory_synced_ = true;
    return {};
  }

  /// Removes the file after a failed verification (best effort).
  std::error_code reject() {
    (void)fs_.remove(path_);
    owns_file_.reset();
    return fail(errc::corrupt_snapshot);
  }

  std::error_code finish(std::optional<expectation> expected) {
    if (auto ec = usable()) return ec;
    if (auto ec = flush()) return ec;
    if (expected && expected->size != written_) return reject();
    if (!crc_known_) {
      auto crc = detail::snapshot_content_crc(file_, header_bytes_, written_, buffer_);
      buffer_.clear();
      if (!crc) {
        if (crc.error() == errc::corrupt_snapshot) return reject();  // The file shrank.
        return fail(detail::snapshot_io_error(crc.error()));
      }
      crc_ = *crc;
      crc_known_ = true;
    }
    if (expected && expected->crc != crc_) return reject();
    header_.size = written_;
    header_.crc = crc_;
    const auto bytes = detail::encode_snapshot_header(detail::snapshot_magic, header_);
    if (auto ec = file_.write(0, bytes)) return fail(detail::snapshot_io_error(ec));
    if (auto ec = file_.sync()) return fail(detail::snapshot_io_error(ec));
    const snapshot_name name{header_.index, header_.term, snapshot_file_kind::committed};
    if (auto ec = fs_.rename(path_, detail::snapshot_path(directory_, name.str()))) {
      return fail(detail::snapshot_io_error(ec));
    }
    owns_file_.reset();  // The temporary name is gone; never remove it now.
    if (auto ec = fs_.sync_directory(directory_)) return fail(detail::snapshot_io_error(ec));
    if (auto ec = detail::prune_snapshots(fs_, directory_, name, keep_old_)) return fail(ec);
    return {};
  }

  FS fs_;
  std::string directory_;
  snapshot_header header_;
  std::string path_;  ///< The .tmp or .part file.
  file_type file_;
  std::uint64_t header_bytes_;
  std::vector<std::byte> buffer_{};  ///< Content after written_, not yet in the file.
  std::uint64_t written_;            ///< Content bytes in the file.
  std::uint32_t crc_ = 0;            ///< CRC32C of the content held, if crc_known_.
  bool crc_known_;
  bool partial_;
  bool directory_synced_ = false;
  std::size_t keep_old_;
  std::error_code error_{};
  detail::snapshot_file_ownership owns_file_;  ///< The .tmp/.part file is still this writer's.
};

/// Reads a committed snapshot file in pieces, sequentially or at offsets.
/// open() checks the header; verify() checks the content.
template <file_system FS>
class snapshot_reader {
 public:
  using file_type = typename FS::file_type;

  /// Opens the snapshot file at `path` and checks its header.
  /// errc::corrupt_snapshot for a bad header or a size that does not match the
  /// file's; the file system's error if it cannot be read.
  static result<snapshot_reader> open(FS& fs, const std::string& path) {
    auto file = fs.open(path, open_mode::read_only);
    if (!file) return file.error();
    auto size = file->size();
    if (!size) return size.error();
    auto header = detail::read_snapshot_header(*file, *size, detail::snapshot_magic);
    if (!header) return header.error();
    const std::uint64_t header_bytes = snapshot_header_size(header->metadata.size());
    if (header->size != *size - header_bytes) return errc::corrupt_snapshot;
    return snapshot_reader(std::move(*file), std::move(*header));
  }

  /// The index of the last log entry the snapshot covers.
  std::uint64_t index() const noexcept { return header_.index; }
  /// The term of that entry.
  std::uint64_t term() const noexcept { return header_.term; }
  /// The metadata given to snapshot_store::begin.
  std::span<const std::byte> metadata() const noexcept { return header_.metadata; }
  /// The content's size in bytes.
  std::uint64_t size() const noexcept { return header_.size; }
  /// The content's CRC32C as the header records it (what a receiver's
  /// commit(size(), crc()) checks against).
  std::uint32_t crc() const noexcept { return header_.crc; }
  /// Where the next read() starts.
  std::uint64_t position() const noexcept { return position_; }

  /// Reads the next bytes of the content into `out`; fewer than out.size()
  /// only at the end, 0 at the end.
  result<std::size_t> read(std::span<std::byte> out) {
    auto n = read_at(position_, out);
    if (n) position_ += *n;
    return n;
  }

  /// Reads content bytes from `offset` into `out`; fewer than out.size() only
  /// at the end. errc::invalid_argument if offset > size().
  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) {
    if (offset > header_.size) return errc::invalid_argument;
    const auto length =
        static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), header_.size - offset));
    auto n = file_.read(header_bytes_ + offset, out.first(length));
    if (!n) return n.error();
    if (*n != length) return errc::corrupt_snapshot;  // The file shrank since open().
    return n;
  }

  /// Moves the position of read(). errc::invalid_argument if offset > size().
  std::error_code seek(std::uint64_t offset) {
    if (offset > header_.size) return errc::invalid_argument;
    position_ = offset;
    return {};
  }

  /// Reads the whole content, snapshot_buffer_size bytes at a time, and checks
  /// its CRC32C: errc::corrupt_snapshot on a mismatch. Leaves position() alone.
  std::error_code verify() {
    std::vector<std::byte> buffer;
    auto crc = detail::snapshot_content_crc(file_, header_bytes_, header_.size, buffer);
    if (!crc) return crc.error();
    if (*crc != header_.crc) return errc::corrupt_snapshot;
    return {};
  }

 private:
  snapshot_reader(file_type file, snapshot_header header)
      : file_(std::move(file)),
        header_(std::move(header)),
        header_bytes_(snapshot_header_size(header_.metadata.size())) {}

  file_type file_;
  snapshot_header header_;
  std::uint64_t header_bytes_;
  std::uint64_t position_ = 0;
};

}  // namespace keel::wal
