// The logging policy of the node layer: what a replica tells an operator,
// and the silent default.
//
// A replica logs what etcd's operators look for: elections won and lost,
// term and leader changes, membership changes, snapshots saved, sent and
// installed, storage failures that stop it, peers it cannot reach. Never one
// line per entry at info level. Every event carries its context as fields
// (node id, term, index, peer), so an adapter can print them as key=value
// pairs or hand them to a structured logger.
//
// Cost of the default: null_log declares `silent = true` and its enabled()
// is constexpr false; the replica tests `silent` with `if constexpr`, so no
// event is built and no string formatted.
//
// Thread safety: a replica logs from its own thread, except that a storage
// failure of a received snapshot is noticed on the transport's thread and
// logged later from the replica's. A policy shared by several replicas must
// accept calls from each of their threads.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

#include "keel/raft/types.hpp"

namespace keel::observe {

enum class log_level : std::uint8_t { debug, info, warn, error };

constexpr const char* to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "invalid";
}

/// One thing a replica tells. The string views live only during write().
struct log_event {
  log_level level = log_level::info;
  /// What happened, in a few words ("became leader", "snapshot saved").
  std::string_view message{};
  raft::node_id node = raft::no_node;
  std::uint64_t term = 0;
  /// The log index the event is about (0: none).
  std::uint64_t index = 0;
  /// The peer the event is about (raft::no_node: none).
  raft::node_id peer = raft::no_node;
  /// More, in words: an error's message, a role (empty: nothing).
  std::string_view detail{};
};

/// The logging policy: `l.enabled(level)` says whether events of that level
/// are wanted (the replica builds none otherwise); `l.write(event)` records
/// one. Optional: `static constexpr bool silent = true`, as null_log.
template <class L>
concept logger = requires(L& l, log_level level, const log_event& e) {
  { l.enabled(level) } -> std::same_as<bool>;
  l.write(e);
};

/// The default: logs nothing and costs nothing.
struct null_log {
  static constexpr bool silent = true;
  static constexpr bool enabled(log_level) noexcept { return false; }
  static constexpr void write(const log_event&) noexcept {}
};

static_assert(logger<null_log>);

}  // namespace keel::observe
