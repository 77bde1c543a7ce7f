// expect: 'log_storage<Storage>'.*'s\.term\(i\)' does not satisfy return-type-requirement
// A log storage whose term(i) returns a bare integer: it cannot report
// errc::compacted or errc::unavailable, so it does not model log_storage.
#include <cstdint>
#include <vector>

#include "keel/raft/raw_node.hpp"

namespace {

struct storage_with_bare_term {
  keel::raft::initial_state initial_state() const { return {}; }
  keel::result<std::vector<keel::raft::entry>> entries(std::uint64_t, std::uint64_t,
                                                       std::uint64_t) const {
    return std::vector<keel::raft::entry>{};
  }
  std::uint64_t term(std::uint64_t) const { return 0; }  // Should be result<std::uint64_t>.
  std::uint64_t first_index() const { return 1; }
  std::uint64_t last_index() const { return 0; }
  keel::result<keel::raft::snapshot> snapshot() const { return keel::raft::snapshot{}; }
};

}  // namespace

int main() {
  storage_with_bare_term storage;
  auto node =
      keel::raft::raw_node<storage_with_bare_term>::create(keel::raft::config{.id = 1}, storage);
  return node ? 0 : 1;
}
