// expect: 'log_storage<Storage>'.*the required expression 's\.term\(i\)' is invalid
// A log storage policy without term(i): raw_node must refuse it at the point
// of use, naming the concept and the missing expression.
#include <cstdint>
#include <vector>

#include "keel/raft/raw_node.hpp"

namespace {

struct storage_without_term {
  keel::raft::initial_state initial_state() const { return {}; }
  keel::result<std::vector<keel::raft::entry>> entries(std::uint64_t, std::uint64_t,
                                                       std::uint64_t) const {
    return std::vector<keel::raft::entry>{};
  }
  // No term(i).
  std::uint64_t first_index() const { return 1; }
  std::uint64_t last_index() const { return 0; }
  keel::result<keel::raft::snapshot> snapshot() const { return keel::raft::snapshot{}; }
};

}  // namespace

int main() {
  storage_without_term storage;
  auto node =
      keel::raft::raw_node<storage_without_term>::create(keel::raft::config{.id = 1}, storage);
  return node ? 0 : 1;
}
