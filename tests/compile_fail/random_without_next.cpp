// expect: 'random_source<Random>'.*the required expression 'r\.next\(\)' is invalid
// A random source without next(): raw_node must refuse it, naming the concept
// and the missing expression.
#include <cstdint>

#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"

namespace {

struct random_without_next {
  std::uint64_t draw() { return 4; }  // Named draw(), not next().
};

}  // namespace

int main() {
  keel::raft::memory_storage storage;
  auto node = keel::raft::raw_node<keel::raft::memory_storage, random_without_next>::create(
      keel::raft::config{.id = 1}, storage, random_without_next{});
  return node ? 0 : 1;
}
