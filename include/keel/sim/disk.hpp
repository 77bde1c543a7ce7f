// A simulated disk: the keel::wal::file_system policy in memory, so WAL and
// snapshot tests can cut the power at any operation, tear the last writes and
// inject errors, deterministically (no randomness, threads or clock).
//
// Model:
//  - A file (inode) has two contents, each with its own size: `current` (the
//    page cache: what reads and mappings see) and `durable` (what survives a
//    crash). write, allocate, truncate and writes through a mapping change
//    `current` only. file::sync (fdatasync) makes all of `current`, size
//    included, durable; mapping::sync(offset, length) (msync) makes exactly
//    that range durable and the durable size at least the mapping's length.
//  - allocate never changes existing bytes (like fallocate): it extends the
//    file with zeros to offset + length. Growing by truncate or by a write
//    past the end also zero-fills.
//  - The namespace (path -> file or directory) also has a current and a
//    durable version. open(create), rename, remove and make_directory change
//    the current one; sync_directory(d) makes d's entries durable. A crash
//    reverts the namespace to its durable version and drops entries whose
//    directory is not durable itself (make_directory needs a sync_directory
//    of the parent, as on a real file system). "/" always exists.
//  - crash(torn_bytes) is power loss: every file's `current` becomes its
//    `durable`, except that the first torn_bytes bytes of the region where
//    they differ (from the first differing offset within the current size)
//    are persisted too. Files and mappings opened before it are dead: their
//    calls fail with EIO; a dead mapping's memory stays valid.
//  - Every mutating call (open(create), write, allocate, truncate, file and
//    mapping sync, rename, remove, make_directory, sync_directory) is an
//    operation numbered from 0, refused ones included. An injected failure
//    (fail_operation, fail_next, freeze_after) returns its error and has no
//    effect. Reads, size, list, open of an existing file and map are not
//    operations.
//  - Capacity: a file uses its current size while the current namespace,
//    an open file or a mapping reaches it. Growing past the capacity fails
//    with ENOSPC and changes nothing.
//  - Bug catchers: while a file is mapped, its size may not grow (the buffer
//    would move) nor shrink below a mapping (a real mapping would SIGBUS);
//    such calls fail with EBUSY. Mapping a read-only file fails with EACCES;
//    mapping more than the file's size fails with EINVAL.
//  - Not modelled: directory renames and removals, hard links, sparse files.
//
// Errors are std::error_code values of the generic category.
//
// Thread safety: none. One thread uses a disk and everything opened on it.
// Requires: the disk outlives its file systems, files and mappings.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/result.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::sim {

/// The kinds of numbered operations, for disk::fail_next.
enum class op : std::uint8_t {
  write,
  allocate,
  truncate,
  sync,      ///< file::sync
  map_sync,  ///< mapping::sync
  rename,
  remove,
  create,  ///< open with open_mode::create
  sync_directory,
  make_directory,
};

/// How many kinds of operations there are.
inline constexpr std::size_t op_kinds = static_cast<std::size_t>(op::make_directory) + 1;

class disk;
class disk_file;
class disk_mapping;
class disk_file_system;

namespace detail {

using bytes = std::vector<std::byte>;

inline std::error_code error(std::errc e) noexcept { return std::make_error_code(e); }

/// One file's contents and what still refers to it.
struct inode {
  std::shared_ptr<bytes> current = std::make_shared<bytes>();  ///< Shared with live mappings.
  bytes durable;
  std::uint32_t links = 0;          ///< Entries in the current namespace.
  std::uint32_t durable_links = 0;  ///< Entries in the durable namespace.
  std::uint32_t open_files = 0;
  std::multiset<std::uint64_t> mappings;  ///< The lengths of the live mappings.
};

/// A namespace entry: a directory, or a link to an inode.
struct entry {
  bool directory = false;
  std::uint64_t inode = 0;
};

/// Absolute, no trailing '/', no empty, "." or ".." component.
inline bool valid_path(std::string_view path) noexcept {
  if (path.empty() || path.front() != '/') return false;
  if (path == "/") return true;
  std::size_t begin = 1;
  while (begin <= path.size()) {
    std::size_t end = path.find('/', begin);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view name = path.substr(begin, end - begin);
    if (name.empty() || name == "." || name == "..") return false;
    begin = end + 1;
  }
  return true;
}

/// Requires: valid_path(path) and path != "/".
inline std::string_view parent_of(std::string_view path) noexcept {
  const std::size_t slash = path.rfind('/');
  return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

/// Whether `path` names an entry directly inside directory `dir`.
inline bool is_child(std::string_view dir, std::string_view path) noexcept {
  return path != "/" && parent_of(path) == dir;
}

}  // namespace detail

/// The simulated disk: owns every file, directory and fault.
class disk {
 public:
  disk() {
    current_.emplace("/", detail::entry{.directory = true});
    durable_.emplace("/", detail::entry{.directory = true});
  }
  disk(const disk&) = delete;
  disk& operator=(const disk&) = delete;
  ~disk() = default;

  /// A handle satisfying keel::wal::file_system; copies share this disk.
  disk_file_system file_system() noexcept;

  // --- capacity -------------------------------------------------------------

  /// Growing files past `bytes` in total fails with ENOSPC (default: unlimited).
  void set_capacity(std::uint64_t bytes) noexcept { capacity_ = bytes; }
  std::uint64_t capacity() const noexcept { return capacity_; }
  /// The bytes files use now (see the capacity rule in the file comment).
  std::uint64_t used_bytes() const noexcept {
    std::uint64_t used = 0;
    for (const auto& [id, node] : inodes_) {
      if (node.links > 0 || node.open_files > 0 || !node.mappings.empty()) {
        used += node.current->size();
      }
    }
    return used;
  }

  // --- operations and faults ------------------------------------------------

  /// How many operations have been numbered so far: the next one's number.
  std::uint64_t operations() const noexcept { return operations_; }

  /// Makes operation number n fail with ec, without effect.
  void fail_operation(std::uint64_t n, std::error_code ec) {
    assert(ec && "an injected failure must be an error");
    failures_[n] = ec;
  }

  /// Makes the next operation of this kind fail with ec, without effect. Calls
  /// queue up: two calls fail the next two operations of the kind.
  void fail_next(op kind, std::error_code ec) {
    assert(ec && "an injected failure must be an error");
    next_failures_[static_cast<std::size_t>(kind)].push_back(ec);
  }

  /// Cuts the power before operation n: it and every later one fail with EIO
  /// and have no effect, until crash(). Reads still work.
  void freeze_after(std::uint64_t n) noexcept { freeze_at_ = n; }

  /// Whether the operation counter has reached the freeze point.
  bool frozen() const noexcept { return freeze_at_ && operations_ >= *freeze_at_; }

  /// Power loss and reboot; see the file comment. Unfreezes the disk; failures
  /// armed by fail_operation and fail_next stay armed.
  void crash(std::uint64_t torn_bytes = 0) {
    for (auto& [id, node] : inodes_) {
      const detail::bytes& current = *node.current;
      if (torn_bytes > 0) {
        const auto diff =
            std::mismatch(current.begin(), current.end(), node.durable.begin(), node.durable.end());
        const auto first = static_cast<std::uint64_t>(diff.first - current.begin());
        if (first < current.size()) {
          const std::uint64_t torn = std::min<std::uint64_t>(torn_bytes, current.size() - first);
          if (node.durable.size() < first + torn) node.durable.resize(first + torn);
          std::memcpy(node.durable.data() + first, current.data() + first, torn);
        }
      }
      // Live mappings keep the old buffer; the file gets a fresh one.
      node.current = std::make_shared<detail::bytes>(node.durable);
      node.open_files = 0;
      node.mappings.clear();
    }
    ++boot_;
    freeze_at_.reset();

    // Keep the durable entries whose directory survives; the map's order puts
    // every directory before its entries.
    name_space survivors;
    for (const auto& [path, e] : durable_) {
      if (path == "/") {
        survivors.emplace(path, e);
        continue;
      }
      const auto parent = survivors.find(detail::parent_of(path));
      if (parent != survivors.end() && parent->second.directory) survivors.emplace(path, e);
    }
    durable_ = survivors;
    current_ = std::move(survivors);
    for (auto& [id, node] : inodes_) node.links = node.durable_links = 0;
    for (const auto& [path, e] : durable_) {
      if (!e.directory) {
        ++inodes_.at(e.inode).links;
        ++inodes_.at(e.inode).durable_links;
      }
    }
    std::erase_if(inodes_, [](const auto& item) { return unreferenced(item.second); });
  }

  // --- inspection and corruption, for tests ---------------------------------

  /// Whether a file or directory exists at path (in the current namespace).
  bool exists(std::string_view path) const { return current_.find(path) != current_.end(); }

  /// The current size of the file at path. Throws std::invalid_argument if
  /// there is no file at path (a bug in the test).
  std::uint64_t file_size(std::string_view path) const { return file_at(path).current->size(); }

  /// The current content of the file at path. Throws std::invalid_argument if
  /// there is no file at path.
  std::string read_all(std::string_view path) const {
    const detail::bytes& content = *file_at(path).current;
    return {reinterpret_cast<const char*>(content.data()), content.size()};
  }

  /// How many byte positions of the file at path a crash would change or cut
  /// off now (without tearing). Throws std::invalid_argument if there is no
  /// file at path.
  std::uint64_t unsynced_bytes(std::string_view path) const {
    const detail::inode& node = file_at(path);
    const detail::bytes& current = *node.current;
    const detail::bytes& durable = node.durable;
    const std::size_t common = std::min(current.size(), durable.size());
    std::uint64_t n = std::max(current.size(), durable.size()) - common;
    for (std::size_t i = 0; i < common; ++i) n += current[i] != durable[i] ? 1 : 0;
    return n;
  }

  /// Flips the low bit of the byte at offset, in both the current and the
  /// durable content (wherever the offset is inside them). Throws
  /// std::invalid_argument if there is no file at path or the offset is past
  /// both ends.
  void flip_byte(std::string_view path, std::uint64_t offset) {
    detail::inode& node = file_at(path);
    if (offset >= node.current->size() && offset >= node.durable.size()) {
      throw std::invalid_argument("keel::sim::disk::flip_byte: offset " + std::to_string(offset) +
                                  " is past the end of " + std::string(path));
    }
    if (offset < node.current->size()) (*node.current)[offset] ^= std::byte{0x01};
    if (offset < node.durable.size()) node.durable[offset] ^= std::byte{0x01};
  }

 private:
  friend class disk_file;
  friend class disk_mapping;
  friend class disk_file_system;

  using name_space = std::map<std::string, detail::entry, std::less<>>;

  static constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

  static bool unreferenced(const detail::inode& node) noexcept {
    return node.links == 0 && node.durable_links == 0 && node.open_files == 0 &&
           node.mappings.empty();
  }

  /// Numbers an operation and returns the failure injected into it, if any.
  std::error_code begin(op kind) {
    const std::uint64_t n = operations_++;
    if (freeze_at_ && n >= *freeze_at_) return detail::error(std::errc::io_error);
    if (const auto it = failures_.find(n); it != failures_.end()) {
      const std::error_code ec = it->second;
      failures_.erase(it);
      return ec;
    }
    auto& queue = next_failures_[static_cast<std::size_t>(kind)];
    if (!queue.empty()) {
      const std::error_code ec = queue.front();
      queue.pop_front();
      return ec;
    }
    return {};
  }

  /// Whether `growth` more bytes fit in the capacity.
  bool fits(std::uint64_t growth) const noexcept {
    if (capacity_ == unlimited || growth == 0) return true;
    const std::uint64_t used = used_bytes();
    return used <= capacity_ && growth <= capacity_ - used;
  }

  /// Drops the inode if nothing refers to it any more.
  void release(std::uint64_t id) {
    const auto it = inodes_.find(id);
    if (it != inodes_.end() && unreferenced(it->second)) inodes_.erase(it);
  }

  /// Points `path` at `e` in a namespace, keeping the link counts. Returns the
  /// inode it replaced, if any.
  std::optional<std::uint64_t> link(name_space& ns, const std::string& path, detail::entry e) {
    std::optional<std::uint64_t> replaced = unlink(ns, path);
    if (!e.directory) ++link_count(ns, e.inode);
    ns.insert_or_assign(path, e);
    return replaced;
  }

  /// Removes `path` from a namespace, keeping the link counts. Returns the
  /// inode it linked, if any; the caller releases it.
  std::optional<std::uint64_t> unlink(name_space& ns, std::string_view path) {
    const auto it = ns.find(path);
    if (it == ns.end()) return std::nullopt;
    std::optional<std::uint64_t> old;
    if (!it->second.directory) {
      --link_count(ns, it->second.inode);
      old = it->second.inode;
    }
    ns.erase(it);
    return old;
  }

  std::uint32_t& link_count(const name_space& ns, std::uint64_t id) {
    detail::inode& node = inodes_.at(id);
    return &ns == &current_ ? node.links : node.durable_links;
  }

  /// ENOENT or ENOTDIR unless the parent of path is a directory.
  std::error_code check_parent(std::string_view path) const {
    const auto it = current_.find(detail::parent_of(path));
    if (it == current_.end()) return detail::error(std::errc::no_such_file_or_directory);
    if (!it->second.directory) return detail::error(std::errc::not_a_directory);
    return {};
  }

  const detail::inode& file_at(std::string_view path) const {
    const auto it = current_.find(path);
    if (it == current_.end() || it->second.directory) {
      throw std::invalid_argument("keel::sim::disk: no file at " + std::string(path));
    }
    return inodes_.at(it->second.inode);
  }
  detail::inode& file_at(std::string_view path) {
    return const_cast<detail::inode&>(std::as_const(*this).file_at(path));
  }

  // The file system's calls; see keel::wal::file_system.
  result<disk_file> open(const std::string& path, wal::open_mode mode);
  std::error_code remove(const std::string& path);
  std::error_code rename(const std::string& from, const std::string& to);
  std::error_code make_directory(const std::string& path);
  std::error_code sync_directory(const std::string& path);
  result<std::vector<std::string>> list(const std::string& path) const;

  std::map<std::uint64_t, detail::inode> inodes_;
  std::uint64_t next_inode_ = 1;
  name_space current_;
  name_space durable_;
  std::uint64_t boot_ = 0;  ///< Crashes so far; files and mappings of older boots are dead.
  std::uint64_t capacity_ = unlimited;
  std::uint64_t operations_ = 0;
  std::optional<std::uint64_t> freeze_at_;
  std::map<std::uint64_t, std::error_code> failures_;
  std::array<std::deque<std::error_code>, op_kinds> next_failures_;
};

/// A mapping of a simulated file's first size() bytes: data() points into the
/// file's current content, so reads see writes through it at once.
class disk_mapping {
 public:
  /// An empty mapping, as mapping zero bytes returns.
  disk_mapping() noexcept = default;
  disk_mapping(disk_mapping&& other) noexcept
      : disk_(std::exchange(other.disk_, nullptr)),
        inode_(other.inode_),
        boot_(other.boot_),
        buffer_(std::move(other.buffer_)),
        size_(std::exchange(other.size_, 0)) {}
  disk_mapping& operator=(disk_mapping&& other) noexcept {
    if (this != &other) {
      unmap();
      disk_ = std::exchange(other.disk_, nullptr);
      inode_ = other.inode_;
      boot_ = other.boot_;
      buffer_ = std::move(other.buffer_);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~disk_mapping() { unmap(); }

  std::byte* data() noexcept { return buffer_ ? buffer_->data() : nullptr; }
  std::uint64_t size() const noexcept { return size_; }

  /// Makes [offset, offset + length) durable. EIO after a crash; EINVAL past
  /// the end of the mapping.
  std::error_code sync(std::uint64_t offset, std::uint64_t length) {
    if (disk_ == nullptr) return length == 0 ? std::error_code{} : invalid();
    if (const std::error_code ec = disk_->begin(op::map_sync)) return ec;
    if (boot_ != disk_->boot_) return detail::error(std::errc::io_error);
    if (offset > size_ || length > size_ - offset) return invalid();
    detail::bytes& durable = disk_->inodes_.at(inode_).durable;
    if (durable.size() < size_) durable.resize(size_);
    std::memcpy(durable.data() + offset, buffer_->data() + offset, length);
    return {};
  }

 private:
  friend class disk_file;

  disk_mapping(disk* d, std::uint64_t inode, std::shared_ptr<detail::bytes> buffer,
               std::uint64_t size) noexcept
      : disk_(d), inode_(inode), boot_(d->boot_), buffer_(std::move(buffer)), size_(size) {}

  static std::error_code invalid() noexcept { return detail::error(std::errc::invalid_argument); }

  void unmap() noexcept {
    if (disk_ != nullptr && boot_ == disk_->boot_) {
      detail::inode& node = disk_->inodes_.at(inode_);
      node.mappings.erase(node.mappings.find(size_));
      disk_->release(inode_);
    }
    disk_ = nullptr;
    buffer_.reset();
    size_ = 0;
  }

  disk* disk_ = nullptr;
  std::uint64_t inode_ = 0;
  std::uint64_t boot_ = 0;
  std::shared_ptr<detail::bytes> buffer_;  ///< Outlives a crash that detaches it.
  std::uint64_t size_ = 0;
};

/// An open simulated file. Calls on a moved-from file fail with EBADF, and are
/// not operations; calls on a file opened before a crash fail with EIO.
class disk_file {
 public:
  disk_file(disk_file&& other) noexcept
      : disk_(std::exchange(other.disk_, nullptr)),
        inode_(other.inode_),
        boot_(other.boot_),
        writable_(other.writable_) {}
  disk_file& operator=(disk_file&& other) noexcept {
    if (this != &other) {
      close();
      disk_ = std::exchange(other.disk_, nullptr);
      inode_ = other.inode_;
      boot_ = other.boot_;
      writable_ = other.writable_;
    }
    return *this;
  }
  ~disk_file() { close(); }

  result<std::uint64_t> size() const {
    if (const std::error_code ec = usable()) return ec;
    return static_cast<std::uint64_t>(node().current->size());
  }

  /// Extends the file with zeros to offset + length; existing bytes stay.
  std::error_code allocate(std::uint64_t offset, std::uint64_t length) {
    if (const std::error_code ec = begin(op::allocate, true)) return ec;
    if (length == 0) return detail::error(std::errc::invalid_argument);  // As posix_fallocate.
    if (offset > max_size - length) return detail::error(std::errc::file_too_large);
    return resize_at_least(offset + length);
  }

  std::error_code truncate(std::uint64_t size) {
    if (const std::error_code ec = begin(op::truncate, true)) return ec;
    if (size > max_size) return detail::error(std::errc::file_too_large);
    detail::inode& n = node();
    const std::uint64_t old = n.current->size();
    if (size > old) return resize_at_least(size);
    if (!n.mappings.empty() && size < *n.mappings.rbegin()) {
      return detail::error(std::errc::device_or_resource_busy);
    }
    n.current->resize(size);
    return {};
  }

  result<std::size_t> read(std::uint64_t offset, std::span<std::byte> out) const {
    if (const std::error_code ec = usable()) return ec;
    const detail::bytes& content = *node().current;
    if (offset >= content.size()) return std::size_t{0};
    const std::size_t n = std::min<std::uint64_t>(out.size(), content.size() - offset);
    std::memcpy(out.data(), content.data() + offset, n);
    return n;
  }

  std::error_code write(std::uint64_t offset, std::span<const std::byte> in) {
    if (const std::error_code ec = begin(op::write, true)) return ec;
    if (in.empty()) return {};
    if (offset > max_size - in.size()) return detail::error(std::errc::file_too_large);
    if (const std::error_code ec = resize_at_least(offset + in.size())) return ec;
    std::memcpy(node().current->data() + offset, in.data(), in.size());
    return {};
  }

  /// Makes the whole current content and size durable.
  std::error_code sync() {
    if (const std::error_code ec = begin(op::sync, false)) return ec;
    detail::inode& n = node();
    n.durable = *n.current;
    return {};
  }

  /// Maps [0, length). EACCES on a read-only file; EINVAL past the end.
  result<disk_mapping> map(std::uint64_t length) {
    if (const std::error_code ec = usable()) return ec;
    if (!writable_) return detail::error(std::errc::permission_denied);
    detail::inode& n = node();
    if (length > n.current->size()) return detail::error(std::errc::invalid_argument);
    if (length == 0) return disk_mapping{};
    n.mappings.insert(length);
    return disk_mapping(disk_, inode_, n.current, length);
  }

 private:
  friend class disk;

  /// Keeps sizes within what std::vector and an off_t can hold.
  static constexpr std::uint64_t max_size =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

  disk_file(disk* d, std::uint64_t inode, bool writable) noexcept
      : disk_(d), inode_(inode), boot_(d->boot_), writable_(writable) {}

  detail::inode& node() const { return disk_->inodes_.at(inode_); }

  std::error_code usable() const noexcept {
    if (disk_ == nullptr) return detail::error(std::errc::bad_file_descriptor);
    if (boot_ != disk_->boot_) return detail::error(std::errc::io_error);
    return {};
  }

  /// Numbers a mutating call and checks that this file may make it.
  std::error_code begin(op kind, bool writes) {
    if (disk_ == nullptr) return detail::error(std::errc::bad_file_descriptor);
    if (const std::error_code ec = disk_->begin(kind)) return ec;
    if (boot_ != disk_->boot_) return detail::error(std::errc::io_error);
    if (writes && !writable_) return detail::error(std::errc::bad_file_descriptor);
    return {};
  }

  /// Grows the current content with zeros to `size`, if it is smaller.
  std::error_code resize_at_least(std::uint64_t size) {
    detail::inode& n = node();
    const std::uint64_t old = n.current->size();
    if (size <= old) return {};
    // Growing would move the buffer under a live mapping.
    if (!n.mappings.empty()) return detail::error(std::errc::device_or_resource_busy);
    if (!disk_->fits(size - old)) return detail::error(std::errc::no_space_on_device);
    n.current->resize(size);
    return {};
  }

  void close() noexcept {
    if (disk_ != nullptr && boot_ == disk_->boot_) {
      --node().open_files;
      disk_->release(inode_);
    }
    disk_ = nullptr;
  }

  disk* disk_ = nullptr;
  std::uint64_t inode_ = 0;
  std::uint64_t boot_ = 0;
  bool writable_ = false;
};

/// The keel::wal::file_system policy over a simulated disk: a pointer, cheap
/// to copy.
class disk_file_system {
 public:
  using file_type = disk_file;

  explicit disk_file_system(disk& d) noexcept : disk_(&d) {}

  /// ENOENT for a missing file (or parent), EEXIST for open_mode::create of an
  /// existing one, EISDIR for a directory.
  result<disk_file> open(const std::string& path, wal::open_mode mode) {
    return disk_->open(path, mode);
  }
  /// Removes a file (not a directory: EISDIR).
  std::error_code remove(const std::string& path) { return disk_->remove(path); }
  /// Renames a file, replacing any file at `to`; directories are not renamed.
  std::error_code rename(const std::string& from, const std::string& to) {
    return disk_->rename(from, to);
  }
  std::error_code make_directory(const std::string& path) { return disk_->make_directory(path); }
  std::error_code sync_directory(const std::string& path) { return disk_->sync_directory(path); }
  result<std::vector<std::string>> list(const std::string& path) { return disk_->list(path); }

 private:
  disk* disk_;
};

static_assert(wal::file_system<disk_file_system>);
static_assert(std::is_same_v<wal::mapping_of<disk_file_system>, disk_mapping>);

// --- disk's calls that need the file types ------------------------------------

inline disk_file_system disk::file_system() noexcept { return disk_file_system(*this); }

inline result<disk_file> disk::open(const std::string& path, wal::open_mode mode) {
  const bool create = mode == wal::open_mode::create;
  if (create) {
    if (const std::error_code ec = begin(op::create)) return ec;
  }
  if (!detail::valid_path(path)) return detail::error(std::errc::invalid_argument);
  if (path == "/") return detail::error(std::errc::is_a_directory);
  if (const std::error_code ec = check_parent(path)) return ec;
  const auto it = current_.find(path);
  std::uint64_t id = 0;
  if (create) {
    if (it != current_.end()) return detail::error(std::errc::file_exists);
    id = next_inode_++;
    inodes_.try_emplace(id);
    link(current_, path, detail::entry{.inode = id});
  } else {
    if (it == current_.end()) return detail::error(std::errc::no_such_file_or_directory);
    if (it->second.directory) return detail::error(std::errc::is_a_directory);
    id = it->second.inode;
  }
  ++inodes_.at(id).open_files;
  return disk_file(this, id, mode != wal::open_mode::read_only);
}

inline std::error_code disk::remove(const std::string& path) {
  if (const std::error_code ec = begin(op::remove)) return ec;
  if (!detail::valid_path(path)) return detail::error(std::errc::invalid_argument);
  if (path == "/") return detail::error(std::errc::is_a_directory);
  if (const std::error_code ec = check_parent(path)) return ec;
  const auto it = current_.find(path);
  if (it == current_.end()) return detail::error(std::errc::no_such_file_or_directory);
  if (it->second.directory) return detail::error(std::errc::is_a_directory);
  if (const auto id = unlink(current_, path)) release(*id);
  return {};
}

inline std::error_code disk::rename(const std::string& from, const std::string& to) {
  if (const std::error_code ec = begin(op::rename)) return ec;
  if (!detail::valid_path(from) || !detail::valid_path(to)) {
    return detail::error(std::errc::invalid_argument);
  }
  if (from == "/" || to == "/") return detail::error(std::errc::operation_not_supported);
  if (const std::error_code ec = check_parent(from)) return ec;
  const auto source = current_.find(from);
  if (source == current_.end()) return detail::error(std::errc::no_such_file_or_directory);
  if (source->second.directory) return detail::error(std::errc::operation_not_supported);
  if (const std::error_code ec = check_parent(to)) return ec;
  const auto target = current_.find(to);
  if (target != current_.end() && target->second.directory) {
    return detail::error(std::errc::is_a_directory);
  }
  if (from == to) return {};
  const detail::entry moved = source->second;
  // Link first so the moved inode never looks unreferenced.
  const std::optional<std::uint64_t> replaced = link(current_, to, moved);
  unlink(current_, from);
  if (replaced) release(*replaced);
  return {};
}

inline std::error_code disk::make_directory(const std::string& path) {
  if (const std::error_code ec = begin(op::make_directory)) return ec;
  if (!detail::valid_path(path)) return detail::error(std::errc::invalid_argument);
  if (path == "/") return {};
  if (const std::error_code ec = check_parent(path)) return ec;
  const auto it = current_.find(path);
  if (it != current_.end()) {
    return it->second.directory ? std::error_code{} : detail::error(std::errc::file_exists);
  }
  current_.emplace(path, detail::entry{.directory = true});
  return {};
}

inline std::error_code disk::sync_directory(const std::string& path) {
  if (const std::error_code ec = begin(op::sync_directory)) return ec;
  if (!detail::valid_path(path)) return detail::error(std::errc::invalid_argument);
  const auto dir = current_.find(path);
  if (dir == current_.end()) return detail::error(std::errc::no_such_file_or_directory);
  if (!dir->second.directory) return detail::error(std::errc::not_a_directory);

  // The directory's durable entries become its current ones.
  std::vector<std::string> stale;
  for (const auto& [child, e] : durable_) {
    if (detail::is_child(path, child)) stale.push_back(child);
  }
  std::vector<std::uint64_t> unlinked;
  for (const std::string& child : stale) {
    if (const auto id = unlink(durable_, child)) unlinked.push_back(*id);
  }
  for (const auto& [child, e] : current_) {
    if (detail::is_child(path, child)) link(durable_, child, e);
  }
  for (const std::uint64_t id : unlinked) release(id);
  return {};
}

inline result<std::vector<std::string>> disk::list(const std::string& path) const {
  if (!detail::valid_path(path)) return detail::error(std::errc::invalid_argument);
  const auto dir = current_.find(path);
  if (dir == current_.end()) return detail::error(std::errc::no_such_file_or_directory);
  if (!dir->second.directory) return detail::error(std::errc::not_a_directory);
  std::vector<std::string> names;
  for (const auto& [child, e] : current_) {
    if (!e.directory && detail::is_child(path, child)) {
      names.emplace_back(child.substr(child.rfind('/') + 1));
    }
  }
  return names;
}

}  // namespace keel::sim
