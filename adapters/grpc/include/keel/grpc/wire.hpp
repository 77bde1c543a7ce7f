// Conversions between keel's raft messages (keel/raft/types.hpp) and their
// protobuf wire form (proto/keel/raft.proto, generated as keel/raft.pb.h).
//
// to_wire copies every field a peer needs; `after_persist` is a local
// scheduling flag and never travels. from_wire is the gate between the network
// and raft: whatever a peer sends, it answers with a message or an error and
// never asserts, throws on content or reads out of bounds. It checks only what
// a correct raft can never violate, whatever its state:
//
//   - the type is a MessageType this build knows (else unknown_message_type)
//     and one that travels between nodes (else local_message);
//   - `to` and `from` are non-zero and differ;
//   - every entry's type is known, and no entry's term exceeds a non-zero
//     message term (a leader's log holds no entry from a later term;
//     forwarded proposals and reads carry term 0 and are not checked);
//   - an append's entries are consecutive, starting right after `index`;
//   - a snapshot travels with snap messages only, and every snap message has
//     one whose metadata is present, with index > 0 and non-zero node ids.
//
// A failure of any but the first check is errc::invalid_message. Everything
// that depends on the receiver's state (its id, its members, its log, value
// bounds) is left to raw_node::step, which checks it again anyway.
//
// Thread safety: free functions over values; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/bytes.hpp"
#include "keel/errc.hpp"
#include "keel/raft.pb.h"
#include "keel/raft/types.hpp"
#include "keel/result.hpp"

namespace keel::rpc {

// ---- the enums match ---------------------------------------------------------------

// raft::message_type converts to wire::MessageType by value, so each value
// must be the same number on both sides, and neither side may have more.
static_assert(wire::MessageType_ARRAYSIZE == raft::message_type_count,
              "wire::MessageType and raft::message_type must list the same types");
static_assert(wire::MSG_HUP == static_cast<int>(raft::message_type::hup));
static_assert(wire::MSG_BEAT == static_cast<int>(raft::message_type::beat));
static_assert(wire::MSG_PROP == static_cast<int>(raft::message_type::prop));
static_assert(wire::MSG_UNREACHABLE == static_cast<int>(raft::message_type::unreachable));
static_assert(wire::MSG_SNAP_STATUS == static_cast<int>(raft::message_type::snap_status));
static_assert(wire::MSG_CHECK_QUORUM == static_cast<int>(raft::message_type::check_quorum));
static_assert(wire::MSG_TRANSFER_LEADER == static_cast<int>(raft::message_type::transfer_leader));
static_assert(wire::MSG_READ_INDEX == static_cast<int>(raft::message_type::read_index));
static_assert(wire::MSG_APP == static_cast<int>(raft::message_type::app));
static_assert(wire::MSG_APP_RESP == static_cast<int>(raft::message_type::app_resp));
static_assert(wire::MSG_VOTE == static_cast<int>(raft::message_type::vote));
static_assert(wire::MSG_VOTE_RESP == static_cast<int>(raft::message_type::vote_resp));
static_assert(wire::MSG_SNAP == static_cast<int>(raft::message_type::snap));
static_assert(wire::MSG_HEARTBEAT == static_cast<int>(raft::message_type::heartbeat));
static_assert(wire::MSG_HEARTBEAT_RESP == static_cast<int>(raft::message_type::heartbeat_resp));
static_assert(wire::MSG_TIMEOUT_NOW == static_cast<int>(raft::message_type::timeout_now));
static_assert(wire::MSG_READ_INDEX_RESP == static_cast<int>(raft::message_type::read_index_resp));
static_assert(wire::MSG_PRE_VOTE == static_cast<int>(raft::message_type::pre_vote));
static_assert(wire::MSG_PRE_VOTE_RESP == static_cast<int>(raft::message_type::pre_vote_resp));

static_assert(wire::EntryType_ARRAYSIZE == static_cast<int>(raft::entry_type::conf_change) + 1,
              "wire::EntryType and raft::entry_type must list the same types");
static_assert(wire::ENTRY_NORMAL == static_cast<int>(raft::entry_type::normal));
static_assert(wire::ENTRY_CONF_CHANGE == static_cast<int>(raft::entry_type::conf_change));

namespace detail {

inline void to_wire(const std::vector<raft::node_id>& ids,
                    google::protobuf::RepeatedField<std::uint64_t>& out) {
  out.Reserve(static_cast<int>(ids.size()));
  for (raft::node_id id : ids) out.Add(id);
}

inline void to_wire(const raft::conf_state& c, wire::ConfState& out) {
  to_wire(c.voters, *out.mutable_voters());
  to_wire(c.voters_outgoing, *out.mutable_voters_outgoing());
  to_wire(c.learners, *out.mutable_learners());
  to_wire(c.learners_next, *out.mutable_learners_next());
  out.set_auto_leave(c.auto_leave);
}

/// Copies node ids; false if one of them is no_node.
inline bool from_wire(const google::protobuf::RepeatedField<std::uint64_t>& ids,
                      std::vector<raft::node_id>& out) {
  out.reserve(static_cast<std::size_t>(ids.size()));
  for (std::uint64_t id : ids) {
    if (id == raft::no_node) return false;
    out.push_back(id);
  }
  return true;
}

inline bool from_wire(const wire::ConfState& w, raft::conf_state& out) {
  out.auto_leave = w.auto_leave();
  return from_wire(w.voters(), out.voters) && from_wire(w.voters_outgoing(), out.voters_outgoing) &&
         from_wire(w.learners(), out.learners) && from_wire(w.learners_next(), out.learners_next);
}

}  // namespace detail

// ---- raft -> wire -------------------------------------------------------------------

/// Writes `m` into `out`, replacing what `out` held; `after_persist` is not sent.
inline void to_wire(const raft::message& m, wire::Message& out) {
  out.Clear();
  out.set_type(static_cast<wire::MessageType>(m.type));
  out.set_to(m.to);
  out.set_from(m.from);
  out.set_term(m.term);
  out.set_log_term(m.log_term);
  out.set_index(m.index);
  out.mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const raft::entry& e : m.entries) {
    wire::Entry& we = *out.add_entries();
    we.set_term(e.term);
    we.set_index(e.index);
    we.set_type(static_cast<wire::EntryType>(e.type));
    we.set_data(e.data.data(), e.data.size());
  }
  out.set_commit(m.commit);
  if (m.snapshot) {
    wire::Snapshot& ws = *out.mutable_snapshot();
    wire::SnapshotMetadata& meta = *ws.mutable_metadata();
    meta.set_index(m.snapshot->metadata.index);
    meta.set_term(m.snapshot->metadata.term);
    detail::to_wire(m.snapshot->metadata.conf, *meta.mutable_conf());
    ws.set_data(m.snapshot->data);
  }
  out.set_reject(m.reject);
  out.set_reject_hint(m.reject_hint);
  out.set_context(m.context);
}

// ---- wire -> raft -------------------------------------------------------------------

/// The raft message `w` carries, or why it cannot be one (see the file comment):
/// errc::unknown_message_type, errc::local_message or errc::invalid_message.
inline result<raft::message> from_wire(const wire::Message& w) {
  // proto3 enums are open: an unknown number parses and must be caught here.
  const int type = w.type();
  if (!wire::MessageType_IsValid(type) || type >= raft::message_type_count) {
    return errc::unknown_message_type;
  }
  raft::message m;
  m.type = static_cast<raft::message_type>(type);
  if (!raft::is_network_message(m.type)) return errc::local_message;

  if (w.to() == raft::no_node || w.from() == raft::no_node || w.to() == w.from()) {
    return errc::invalid_message;
  }
  m.to = w.to();
  m.from = w.from();
  m.term = w.term();
  m.log_term = w.log_term();
  m.index = w.index();
  m.commit = w.commit();
  m.reject = w.reject();
  m.reject_hint = w.reject_hint();
  m.context = w.context();

  const bool append = m.type == raft::message_type::app;
  std::uint64_t expected_index = m.index;  // An append's entries follow m.index.
  m.entries.reserve(static_cast<std::size_t>(w.entries_size()));
  for (const wire::Entry& we : w.entries()) {
    if (!wire::EntryType_IsValid(we.type())) return errc::invalid_message;
    if (m.term != 0 && we.term() > m.term) return errc::invalid_message;
    if (append) {
      if (expected_index == std::numeric_limits<std::uint64_t>::max()) {
        return errc::invalid_message;
      }
      ++expected_index;
      if (we.index() != expected_index) return errc::invalid_message;
    }
    // A protobuf message is under 2 GiB, so bytes' 4 GiB limit cannot throw.
    m.entries.push_back({.term = we.term(),
                         .index = we.index(),
                         .type = static_cast<raft::entry_type>(we.type()),
                         .data = bytes(std::string_view(we.data()))});
  }

  const bool snap = m.type == raft::message_type::snap;
  if (snap != w.has_snapshot()) return errc::invalid_message;
  if (snap) {
    const wire::Snapshot& ws = w.snapshot();
    if (!ws.has_metadata() || ws.metadata().index() == 0) return errc::invalid_message;
    raft::snapshot s;
    s.metadata.index = ws.metadata().index();
    s.metadata.term = ws.metadata().term();
    if (!detail::from_wire(ws.metadata().conf(), s.metadata.conf)) return errc::invalid_message;
    s.data = ws.data();
    m.snapshot = std::move(s);
  }
  return m;
}

}  // namespace keel::rpc
