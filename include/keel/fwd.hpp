// Forward declarations of keel's public templates and types, so a header
// that only names them does not pay for their definitions.
#pragma once

#include <cstdint>

namespace keel {

class bytes;
template <class T>
class result;
enum class errc;

namespace raft {

using node_id = std::uint64_t;
struct entry;
struct message;
struct hard_state;
struct conf_state;
struct snapshot;
struct config;
struct ready;
struct status;
class memory_storage;
class splitmix_random;
struct null_logger;

}  // namespace raft
}  // namespace keel
