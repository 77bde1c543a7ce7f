// Helpers of the WAL tests: a temporary directory, entries, raw file bytes.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/raft/types.hpp"

namespace keel::test {

/// A directory under the system's temporary directory, removed with its
/// contents when the object goes.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "keel-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Entries [first, last] of one term, each with `size` payload bytes that
/// depend on the index.
inline std::vector<raft::entry> make_entries(std::uint64_t first, std::uint64_t last,
                                             std::uint64_t term, std::size_t size) {
  std::vector<raft::entry> out;
  for (std::uint64_t i = first; i <= last; ++i) {
    std::string data(size, static_cast<char>('a' + i % 26));
    if (size >= 8) data.replace(0, 8, std::to_string(100000000 + i % 100000000).substr(1));
    out.push_back({.term = term, .index = i, .data = keel::bytes(data)});
  }
  return out;
}

inline std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<char>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace keel::test
