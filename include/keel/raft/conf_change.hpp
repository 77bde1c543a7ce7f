// Membership changes as raft proposes and logs them, and their byte
// encoding inside a conf_change entry.
//
// One conf_change holds any number of single changes and a transition:
//  - auto_: one change is applied in a single step; several enter a joint
//    configuration that raft leaves by itself once it is committed;
//  - joint_implicit: always joint, left automatically;
//  - joint_explicit: always joint, left by proposing an empty conf_change.
// An empty conf_change (no changes) leaves the joint configuration.
//
// Encoding (little endian): u8 format version (1), u8 transition, u32 count,
// count x (u8 type, u64 node), u32 context length, context bytes. Decoding
// validates every field and the exact length.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "keel/raft/types.hpp"
#include "keel/result.hpp"

namespace keel::raft {

enum class conf_change_type : std::uint8_t { add_node, remove_node, add_learner };
enum class conf_change_transition : std::uint8_t { auto_, joint_implicit, joint_explicit };

struct conf_change_single {
  conf_change_type type = conf_change_type::add_node;
  node_id node = no_node;
  friend bool operator==(const conf_change_single&, const conf_change_single&) = default;
};

struct conf_change {
  conf_change_transition transition = conf_change_transition::auto_;
  std::vector<conf_change_single> changes{};
  std::string context{};

  /// An empty change that leaves a joint configuration.
  bool leaves_joint() const { return changes.empty(); }

  /// Whether applying this change enters a joint configuration, and if so
  /// whether raft leaves it by itself.
  bool enters_joint() const {
    return transition != conf_change_transition::auto_ || changes.size() > 1;
  }
  bool auto_leave() const {
    return enters_joint() && transition != conf_change_transition::joint_explicit;
  }

  friend bool operator==(const conf_change&, const conf_change&) = default;
};

namespace detail {
inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline std::uint64_t get_le(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
}  // namespace detail

/// Encodes cc as the data of a conf_change entry.
inline std::string encode(const conf_change& cc) {
  std::string out{};
  out.reserve(10 + cc.changes.size() * 9 + cc.context.size());
  out.push_back(1);
  out.push_back(static_cast<char>(cc.transition));
  detail::put_u32(out, static_cast<std::uint32_t>(cc.changes.size()));
  for (const auto& c : cc.changes) {
    out.push_back(static_cast<char>(c.type));
    detail::put_u64(out, c.node);
  }
  detail::put_u32(out, static_cast<std::uint32_t>(cc.context.size()));
  out += cc.context;
  return out;
}

/// Decodes the data of a conf_change entry; errc::invalid_conf_change if it
/// is malformed.
inline result<conf_change> decode_conf_change(std::string_view in) {
  constexpr auto bad = errc::invalid_conf_change;
  if (in.size() < 10 || in[0] != 1) return bad;
  conf_change cc;
  const auto transition = static_cast<std::uint8_t>(in[1]);
  if (transition > static_cast<std::uint8_t>(conf_change_transition::joint_explicit)) return bad;
  cc.transition = static_cast<conf_change_transition>(transition);
  const std::uint64_t count = detail::get_le(in.data() + 2, 4);
  if (count > (in.size() - 10) / 9) return bad;
  std::size_t at = 6;
  cc.changes.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i, at += 9) {
    const auto type = static_cast<std::uint8_t>(in[at]);
    if (type > static_cast<std::uint8_t>(conf_change_type::add_learner)) return bad;
    cc.changes.push_back(
        {static_cast<conf_change_type>(type), detail::get_le(in.data() + at + 1, 8)});
  }
  if (in.size() - at < 4) return bad;
  const std::uint64_t context_size = detail::get_le(in.data() + at, 4);
  at += 4;
  if (in.size() - at != context_size) return bad;
  cc.context.assign(in.substr(at));
  return cc;
}

}  // namespace keel::raft
