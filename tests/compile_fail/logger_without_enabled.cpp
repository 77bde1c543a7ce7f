// expect: 'logger<Logger>'.*the required expression 'l\.enabled\(level\)' is invalid
// A logger without enabled(level): raw_node must refuse it, naming the
// concept and the missing expression.
#include <string_view>

#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"

namespace {

struct logger_without_enabled {
  void log(keel::raft::log_level, std::string_view) {}
};

}  // namespace

int main() {
  keel::raft::memory_storage storage;
  auto node =
      keel::raft::raw_node<keel::raft::memory_storage, keel::raft::splitmix_random,
                           logger_without_enabled>::create(keel::raft::config{.id = 1}, storage,
                                                           keel::raft::splitmix_random{1});
  return node ? 0 : 1;
}
