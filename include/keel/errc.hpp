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
  // store watches
  watch_overflow,
  watch_cancelled,
  watch_closed,
  watch_delivery_failed,
  // store objects and indexes
  invalid_object,
  missing_index_value,
  invalid_index_schema,
  // store transactions
  exists,
  not_found,
  name_conflict,
  invalid_index,
  sequence_conflict,
  transaction_closed,

  // wal and snapshot files
  corrupt_wal,
  wal_failed,
  wal_io_error,
  no_space,
  corrupt_snapshot,

  // node
  lost_leadership,
  request_too_large,
  node_stopped,
  timeout,
  leader_not_ready,
  removed_member,
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
      case errc::watch_overflow:
        return "watch closed: the watcher fell behind and its queue reached its capacity; the "
               "events queued before are still readable; read faster or raise the capacity, "
               "then watch again from a fresh snapshot";
      case errc::watch_cancelled:
        return "watch cancelled by its owner";
      case errc::watch_closed:
        return "watch closed because its watch queue was closed or destroyed (store shutdown); "
               "watch again on a running store";
      case errc::watch_delivery_failed:
        return "watch closed: its filter threw or an event could not be copied into its queue, so "
               "it missed events; fix the filter or free memory, then watch again from a fresh "
               "snapshot";
      case errc::invalid_object:
        return "an object's encoded bytes could not be decoded: the log entry or snapshot holding "
               "it is corrupt, or was written with an incompatible object schema";
      case errc::missing_index_value:
        return "the object has no value for an index that does not allow missing values (e.g. an "
               "empty id); set the field, or declare the index with allow_missing";
      case errc::invalid_index_schema:
        return "a table's index schemas are invalid: every index needs a non-empty name distinct "
               "from the others, and 'id' is reserved for the primary index";
      case errc::exists:
        return "an object with this id already exists in the table; update it instead, or "
               "choose another id";
      case errc::not_found:
        return "no object with this id in the table; it was deleted or never created";
      case errc::name_conflict:
        return "another object already holds this value in a unique index (e.g. the name); "
               "choose another value or change the other object first";
      case errc::invalid_index:
        return "the query names an index the table does not have, or gives values of the "
               "wrong types for it";
      case errc::sequence_conflict:
        return "the object changed since it was read (its version is not the stored "
               "version); read it again, reapply the change and retry";
      case errc::transaction_closed:
        return "the write transaction was already committed or aborted; start a new one";
      case errc::corrupt_wal:
        return "the write-ahead log is corrupt before its tail (a record fails its checksum or "
               "framing, or segments are missing); the recovery report names the file and "
               "offset; restore this member from a snapshot of a healthy peer";
      case errc::wal_failed:
        return "the write-ahead log stopped after a failed write or sync and refuses further "
               "appends (fail-stop: data it acknowledged may not be durable); restart the "
               "process, which recovers from what is on disk";
      case errc::wal_io_error:
        return "a file operation of the write-ahead log or snapshot store failed (see the "
               "system error logged with it); check the disk and permissions";
      case errc::no_space:
        return "no space left on the device for the write-ahead log or a snapshot; nothing "
               "was acknowledged; free space and retry";
      case errc::lost_leadership:
        return "this node lost its leadership before the write was committed; the write may or "
               "may not have taken effect: read again, then retry on the new leader";
      case errc::request_too_large:
        return "the write's changes exceed the maximum proposal size; split it (batch) or raise "
               "the limit";
      case errc::node_stopped:
        return "the node stopped (its storage failed, or it was removed from the cluster); "
               "restart it or send the request to another member";
      case errc::timeout:
        return "the request did not finish in time; a write may or may not have taken effect: "
               "read again, then retry";
      case errc::leader_not_ready:
        return "this node was just elected and has not yet committed an entry of its term, so "
               "its store may miss writes of the previous leader; retry in a moment";
      case errc::removed_member:
        return "the node was removed from the cluster; its messages are refused and it stopped; "
               "wipe its data and add it again as a new member to bring it back";
      case errc::corrupt_snapshot:
        return "a snapshot file is corrupt (bad header, size or checksum); it is ignored, and "
               "a snapshot must be fetched from a peer";
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
