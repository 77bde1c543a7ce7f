// keel's error codes: every failure the library reports is a value of
// `keel::errc` wrapped in a std::error_code with keel's category, so callers
// compare against the enum and print a message that says what to do next.
//
// Thread safety: the category is a function-local static; safe from any thread.
#pragma once

#include <string>
#include <system_error>

namespace keel {

/// Everything keel can fail with. Zero is never an error.
enum class errc {
  // raft
  proposal_dropped = 1,
  not_leader,
  invalid_message,
  unknown_message_type,
  local_message,
  message_from_non_member,
  message_to_other_node,
  index_out_of_range,
  compacted,
  unavailable,
  snapshot_out_of_date,
  snapshot_temporarily_unavailable,
  invalid_conf_change,
  pending_conf_change,
  transfer_in_progress,
  invalid_argument,
};

/// The error category of keel::errc.
class error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "keel"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::proposal_dropped:
        return "proposal dropped: no leader is known, leadership is being transferred, or the "
               "uncommitted log is full; retry later";
      case errc::not_leader:
        return "this node is not the leader; send the request to the leader";
      case errc::invalid_message:
        return "malformed raft message rejected; the sender is buggy or not a keel peer";
      case errc::unknown_message_type:
        return "raft message of unknown type rejected; the peer may run a newer version";
      case errc::local_message:
        return "a local-only raft message arrived from the network and was rejected";
      case errc::message_from_non_member:
        return "raft message from a node outside the configuration rejected";
      case errc::message_to_other_node:
        return "raft message addressed to another node rejected";
      case errc::index_out_of_range:
        return "log index out of range of the stored log";
      case errc::compacted:
        return "requested log index was compacted into a snapshot";
      case errc::unavailable:
        return "requested log entries are not available yet";
      case errc::snapshot_out_of_date:
        return "snapshot is older than the one already stored";
      case errc::snapshot_temporarily_unavailable:
        return "snapshot is being prepared; retry later";
      case errc::invalid_conf_change:
        return "configuration change rejected: it is not valid for the current configuration";
      case errc::pending_conf_change:
        return "a configuration change is already pending; wait for it to be applied";
      case errc::transfer_in_progress:
        return "a leadership transfer is in progress; proposals are refused until it ends";
      case errc::invalid_argument:
        return "invalid argument";
    }
    return "unknown keel error " + std::to_string(value);
  }
};

/// The single instance of keel's error category.
inline const std::error_category& keel_category() noexcept {
  static const error_category category;
  return category;
}

/// Makes a std::error_code from a keel::errc (found by ADL).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), keel_category()};
}

}  // namespace keel

template <>
struct std::is_error_code_enum<keel::errc> : std::true_type {};
