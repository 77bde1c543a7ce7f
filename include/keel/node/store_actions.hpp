// Store actions: how a write transaction travels through the Raft log.
//
// The leader runs a write transaction, takes its collapsed changes
// (write_transaction::take_changes) and encodes them into one log entry;
// every member, the leader included, applies the entry's actions once Raft
// has committed it, with put/remove in a write transaction whose version is
// the entry's index. Objects travel with the meta the leader stamped, so
// every replica ends up with the same bytes (SwarmKit's StoreAction list).
//
// Entry payload, little-endian:
//
//   u8   format (1)
//   u64  version: the Raft index the leader expects the entry to get
//   u32  number of actions
//   per action: u8 kind (1 create, 2 update, 3 remove), u64 base version
//   (the version the leader's transaction saw; 0 for a create), then table,
//   id and object bytes as u32-length-prefixed strings (no object for a
//   remove)
//
// Applying checks each base version against the replica's store: a write
// that was built on a state another committed write has changed since
// fails with errc::sequence_conflict, the same on every replica, so
// optimistic writes proposed concurrently can never lose an update.
//
// Decoding checks every length against the payload before using it: a
// damaged or hostile entry is errc::invalid_object, never a crash.
//
// Thread safety: pure functions over caller-owned bytes and transactions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>
#include <vector>

#include "keel/detail/codec.hpp"
#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/store/change.hpp"
#include "keel/store/transaction.hpp"

namespace keel::node {

enum class action_kind : std::uint8_t { create = 1, update = 2, remove = 3 };

/// One decoded action; its views point into the payload it came from.
struct store_action {
  action_kind kind = action_kind::create;
  std::uint64_t base_version = 0;
  std::string_view table{};
  std::string_view id{};
  std::string_view object{};  ///< Encoded with the table's object traits; empty for a remove.
};

struct decoded_actions {
  std::uint64_t version = 0;
  std::vector<store_action> actions{};
};

inline constexpr std::uint8_t store_actions_format = 1;

namespace detail {

template <store::object... Ts>
std::string_view id_of(const store::change<Ts...>& c) {
  return std::visit(
      [&](const auto& p) -> std::string_view {
        using T = std::remove_const_t<typename std::decay_t<decltype(p)>::element_type>;
        return store::object_traits<T>::id(*c.template object_as<T>());
      },
      c.after);
}

}  // namespace detail

/// Encodes a transaction's changes as the payload of one log entry. With
/// `placeholder` != 0 the changes were made at that stand-in version before
/// the entry's index was known (a batch's group): objects and base versions
/// that carry it are written with `version` instead.
template <store::object... Ts>
std::string encode_actions(std::uint64_t version, std::span<const store::change<Ts...>> changes,
                           std::uint64_t placeholder = 0) {
  const auto restamp = [&](std::uint64_t v) {
    return placeholder != 0 && v == placeholder ? version : v;
  };
  struct encoded {
    action_kind kind;
    std::uint64_t base_version;
    std::string_view table;
    std::string_view id;
    std::string object;
  };
  std::vector<encoded> parts;
  parts.reserve(changes.size());
  std::size_t size = 1 + 8 + 4;
  for (const auto& c : changes) {
    encoded e{.kind = action_kind::create,
              .base_version = 0,
              .table = c.table(),
              .id = detail::id_of(c),
              .object = {}};
    switch (c.kind()) {
      case store::change_kind::create:
        e.kind = action_kind::create;
        break;
      case store::change_kind::update:
        e.kind = action_kind::update;
        break;
      case store::change_kind::remove:
        e.kind = action_kind::remove;
        break;
    }
    if (e.kind != action_kind::create) {
      e.base_version = restamp(std::visit(
          [](const auto& p) {
            using T = std::remove_const_t<typename std::decay_t<decltype(p)>::element_type>;
            return store::object_traits<T>::version(*p);
          },
          c.before));
    }
    if (e.kind != action_kind::remove) {
      e.object = std::visit(
          [&](const auto& p) {
            using T = std::remove_const_t<typename std::decay_t<decltype(p)>::element_type>;
            using traits = store::object_traits<T>;
            if (placeholder == 0 || traits::version(*p) != placeholder) return traits::encode(*p);
            T stamped = *p;
            traits::set_version(stamped, version);
            return traits::encode(stamped);
          },
          c.after);
    }
    size += 1 + 8 + 12 + e.table.size() + e.id.size() + e.object.size();
    parts.push_back(std::move(e));
  }
  std::string out(size, '\0');
  keel::detail::body_writer w(reinterpret_cast<std::byte*>(out.data()));
  w.u8(store_actions_format);
  w.u64(version);
  w.u32(static_cast<std::uint32_t>(parts.size()));
  for (const encoded& e : parts) {
    w.u8(static_cast<std::uint8_t>(e.kind));
    w.u64(e.base_version);
    w.string(e.table);
    w.string(e.id);
    w.string(e.object);
  }
  return out;
}

/// Decodes a payload; errc::invalid_object if it is not a valid one.
inline result<decoded_actions> decode_actions(std::string_view payload) {
  keel::detail::body_reader r(std::as_bytes(std::span(payload.data(), payload.size())));
  std::uint8_t format = 0;
  decoded_actions out;
  std::uint32_t count = 0;
  if (!r.u8(format) || format != store_actions_format || !r.u64(out.version) || !r.u32(count)) {
    return errc::invalid_object;
  }
  // Each action takes at least 21 bytes: never reserve what is not there.
  if (count > r.left() / 21) return errc::invalid_object;
  out.actions.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    store_action a;
    std::uint8_t kind = 0;
    if (!r.u8(kind) || kind < 1 || kind > 3 || !r.u64(a.base_version) || !r.view(a.table) ||
        !r.view(a.id) || !r.view(a.object)) {
      return errc::invalid_object;
    }
    a.kind = static_cast<action_kind>(kind);
    if (a.id.empty() || (a.kind == action_kind::remove) != a.object.empty()) {
      return errc::invalid_object;
    }
    out.actions.push_back(a);
  }
  if (r.left() != 0) return errc::invalid_object;
  return out;
}

namespace detail {

template <class T, store::object... Ts>
std::error_code apply_one(store::write_transaction<Ts...>& tx, const store_action& a) {
  const auto current = tx.template get<T>(a.id);
  if (a.kind == action_kind::create) {
    if (current != nullptr) return errc::exists;
  } else {
    if (current == nullptr) return errc::not_found;
    if (store::object_traits<T>::version(*current) != a.base_version) {
      return errc::sequence_conflict;
    }
  }
  if (a.kind == action_kind::remove) return tx.template remove<T>(a.id);
  auto obj = store::object_traits<T>::decode(a.object);
  if (!obj) return errc::invalid_object;
  if (store::object_traits<T>::id(*obj) != a.id) return errc::invalid_object;
  return tx.put(std::move(*obj));
}

}  // namespace detail

/// Applies decoded actions in a write transaction (whose version is the
/// entry's index). Stops at the first error, and the caller then drops the
/// transaction, so an entry applies whole or not at all: errc::invalid_object
/// for an unknown table or undecodable object; exists, not_found or
/// sequence_conflict when the store changed since the leader built it.
template <store::object... Ts>
std::error_code apply_actions(store::write_transaction<Ts...>& tx,
                              std::span<const store_action> actions) {
  for (const store_action& a : actions) {
    std::error_code ec = errc::invalid_object;  // Unless a table claims it.
    const bool known = ((a.table == std::string_view(store::object_traits<Ts>::table)
                             ? (ec = detail::apply_one<Ts>(tx, a), true)
                             : false) ||
                        ...);
    if (!known || ec) return ec ? ec : make_error_code(errc::invalid_object);
  }
  return {};
}

}  // namespace keel::node
