// The file/sync policy of the WAL and the snapshot store: every file
// operation they make goes through a `file_system`, so a simulated disk
// (keel/sim/disk.hpp) can replace the real one and lose unsynced writes, tear
// the last write, or fail a chosen call.
//
// Durability contract (what both the real and the simulated disk promise):
//  - file::write and writes through a mapping reach the disk at some
//    unspecified time; only file::sync (fdatasync) or mapping::sync (msync)
//    makes the written bytes durable.
//  - file::allocate reserves the blocks of a range, zero-filled, and extends
//    the size; after it, writes inside the range cannot fail for space, and
//    writes through a mapping of the range never fault (no SIGBUS).
//  - Creating, renaming or removing a file is durable only after
//    sync_directory on its directory.
//  - Errors come back as std::error_code (system category for the kernel's
//    errno); nothing here throws except std::bad_alloc.
//
// Thread safety: a file or mapping is used by one thread at a time.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/result.hpp"

namespace keel::wal {

enum class open_mode {
  read_only,   ///< An existing file, for reading.
  read_write,  ///< An existing file, for reading and writing.
  create,      ///< A new file for reading and writing; fails if it exists.
};

// clang-format off
/// A shared, writable mapping of a file's first size() bytes.
template <class M>
concept file_mapping = std::movable<M> && requires(M& m, std::uint64_t n) {
  { m.data() } -> std::same_as<std::byte*>;
  { m.size() } -> std::same_as<std::uint64_t>;
  /// Makes [offset, offset + length) durable (msync MS_SYNC).
  { m.sync(n, n) } -> std::same_as<std::error_code>;
};

/// An open file.
template <class F>
concept file = std::movable<F> && requires(F& f, std::uint64_t n, std::span<std::byte> out,
                                         std::span<const std::byte> in) {
  { f.size() } -> std::same_as<result<std::uint64_t>>;
  /// Reserves [offset, offset + length), zero-filled, growing the file.
  { f.allocate(n, n) } -> std::same_as<std::error_code>;
  { f.truncate(n) } -> std::same_as<std::error_code>;
  /// Reads up to out.size() bytes at offset; fewer only at the end of the file.
  { f.read(n, out) } -> std::same_as<result<std::size_t>>;
  /// Writes all of `in` at offset, or fails.
  { f.write(n, in) } -> std::same_as<std::error_code>;
  /// Makes every byte written so far durable (fdatasync).
  { f.sync() } -> std::same_as<std::error_code>;
  /// Maps [0, length); requires length <= size().
  { f.map(n) } -> std::same_as<result<std::remove_cvref_t<decltype(f.map(n).value())>>>;
  requires file_mapping<std::remove_cvref_t<decltype(f.map(n).value())>>;
};

/// Where files live.
template <class FS>
concept file_system = requires(FS& fs, const std::string& path) {
  typename FS::file_type;
  requires file<typename FS::file_type>;
  { fs.open(path, open_mode::read_only) } -> std::same_as<result<typename FS::file_type>>;
  { fs.remove(path) } -> std::same_as<std::error_code>;
  { fs.rename(path, path) } -> std::same_as<std::error_code>;
  /// Creates the directory if it does not exist (its parent must).
  { fs.make_directory(path) } -> std::same_as<std::error_code>;
  /// Makes the creations, renames and removals in a directory durable.
  { fs.sync_directory(path) } -> std::same_as<std::error_code>;
  /// The names (not paths) of the regular files in a directory, unsorted.
  { fs.list(path) } -> std::same_as<result<std::vector<std::string>>>;
};
// clang-format on

/// The mapping type of a file system's files.
template <class FS>
using mapping_of =
    std::remove_cvref_t<decltype(std::declval<typename FS::file_type&>().map(0).value())>;

namespace detail {
inline std::error_code last_system_error() noexcept { return {errno, std::system_category()}; }
}  // namespace detail

/// msync/munmap of a POSIX mapping.
class posix_mapping {
 public:
  posix_mapping() noexcept = default;
  posix_mapping(std::byte* data, std::uint64_t size) noexcept : data_(data), size_(size) {}
  posix_mapping(posix_mapping&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  posix_mapping& operator=(posix_mapping&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~posix_mapping() { unmap(); }

  std::byte* data() noexcept { return data_; }
  std::uint64_t size() const noexcept { return size_; }

  std::error_code sync(std::uint64_t offset, std::uint64_t length) noexcept {
    if (length == 0) return {};
    // msync wants a page-aligned start.
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t start = offset / page * page;
    if (::msync(data_ + start, offset + length - start, MS_SYNC) != 0) {
      return detail::last_system_error();
    }
    return {};
  }

 private:
  void unmap() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
  }

  std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

/// A file descriptor with the operations of the `file` concept.
class posix_file {
 public:
  explicit posix_file(int fd) noexcept : fd_(fd) {}
  posix_file(posix_file&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  posix_file& operator=(posix_file&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~posix_file() { close(); }

  result<std::uint64_t> size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return detail::last_system_error();
    return static_cast<std::uint64_t>(st.st_size);
  }

  std::error_code allocate(std::uint64_t offset, std::uint64_t length) {
    // posix_fallocate falls back to writing zeros where fallocate is missing.
    const int rc = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(length));
    if (rc != 0) return {rc, std::system_category()};
    return {};
  }

  std::error_code truncate(std::uint64_t size) {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return detail::last_system_error();
    return {};
  }

  result<std::size_t> read(std::uint64_t offset, std::span<std::byte> out) const {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return detail::last_system_error();
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  std::error_code write(std::uint64_t offset, std::span<const std::byte> in) {
    std::size_t done = 0;
    while (done < in.size()) {
      const ssize_t n =
          ::pwrite(fd_, in.data() + done, in.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return detail::last_system_error();
      }
      done += static_cast<std::size_t>(n);
    }
    return {};
  }

  std::error_code sync() {
    if (::fdatasync(fd_) != 0) return detail::last_system_error();
    return {};
  }

  result<posix_mapping> map(std::uint64_t length) {
    if (length == 0) return posix_mapping{};
    void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) return detail::last_system_error();
    return posix_mapping(static_cast<std::byte*>(p), length);
  }

 private:
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
};

/// The real disk, through POSIX calls.
struct posix_file_system {
  using file_type = posix_file;

  result<posix_file> open(const std::string& path, open_mode mode) {
    int flags = O_CLOEXEC;
    switch (mode) {
      case open_mode::read_only:
        flags |= O_RDONLY;
        break;
      case open_mode::read_write:
        flags |= O_RDWR;
        break;
      case open_mode::create:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
    }
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return detail::last_system_error();
    return posix_file(fd);
  }

  std::error_code remove(const std::string& path) {
    if (::unlink(path.c_str()) != 0) return detail::last_system_error();
    return {};
  }

  std::error_code rename(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) return detail::last_system_error();
    return {};
  }

  std::error_code make_directory(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return detail::last_system_error();
    return {};
  }

  std::error_code sync_directory(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return detail::last_system_error();
    const int rc = ::fsync(fd);
    const std::error_code ec = rc != 0 ? detail::last_system_error() : std::error_code{};
    ::close(fd);
    return ec;
  }

  result<std::vector<std::string>> list(const std::string& path) {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return detail::last_system_error();
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
      }
    }
    const std::error_code ec = errno != 0 ? detail::last_system_error() : std::error_code{};
    ::closedir(dir);
    if (ec) return ec;
    return names;
  }
};

static_assert(file_system<posix_file_system>);

}  // namespace keel::wal
