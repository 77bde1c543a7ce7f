// Test support: plain structs with hand-written object traits, in the shape of
// SwarmKit's objects, for the store tests that must not depend on protobuf.
//
//   task     by service ("service_id"), by node ("node_id", empty until
//            scheduled: missing), by service and slot ("slot"), by desired
//            state ("desired_state", an enum) and by lower-cased name ("name",
//            not unique: tasks of a service may share a name).
//   service  by lower-cased name ("name", unique, required) and by each label
//            ("labels", a map index).
//   node     by lower-cased name ("name", not unique) and by weight ("weight",
//            a signed integer: the range queries and the concurrency
//            invariants use it).
//
// The codec is a tag and length-prefixed fields: enough for the `object`
// concept; the traits tests cover codecs.
//
// Thread safety: plain values; the traits are stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/store/indexer.hpp"
#include "keel/store/object_traits.hpp"
#include "keel/store/store.hpp"

namespace keel::test::plain {

/// A task's desired state; the values are SwarmKit's TaskState numbers.
enum class task_state : std::int32_t {
  created = 0,
  pending = 64,
  assigned = 192,
  running = 512,
  shutdown = 640,
};

struct task {
  std::string id;
  std::string service_id;
  std::string node_id;
  std::uint64_t slot = 0;
  task_state desired_state = task_state::created;
  std::string name;
  std::uint64_t version = 0;

  bool operator==(const task&) const = default;
};

struct service {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;
  std::uint64_t version = 0;

  bool operator==(const service&) const = default;
};

struct node {
  std::string id;
  std::string name;
  std::int64_t weight = 0;
  std::uint64_t version = 0;

  bool operator==(const node&) const = default;
};

namespace codec {

// Strings are an 8-byte little-endian length and the bytes; integers 8 bytes
// little-endian. Every encoding starts with the table's one-letter tag.

inline void put(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
inline void put(std::string& out, std::string_view s) {
  put(out, static_cast<std::uint64_t>(s.size()));
  out.append(s);
}

inline bool get(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  }
  in.remove_prefix(8);
  return true;
}
inline bool get(std::string_view& in, std::string& s) {
  std::uint64_t size = 0;
  if (!get(in, size) || size > in.size()) return false;
  s.assign(in.substr(0, size));
  in.remove_prefix(size);
  return true;
}
inline bool tag(std::string_view& in, char t) {
  if (in.empty() || in.front() != t) return false;
  in.remove_prefix(1);
  return true;
}

}  // namespace codec

/// The indexers, as constants so the traits stay constexpr.
struct task_indexes {
  static constexpr store::string_indexer service_id{&task::service_id};
  static constexpr store::string_indexer node_id{&task::node_id};
  static constexpr store::integer_indexer slot{&task::slot};
  static constexpr store::compound_indexer service_slot{service_id, slot};
  static constexpr store::integer_indexer desired_state{&task::desired_state};
  static constexpr store::string_indexer name{&task::name, store::case_fold::lower};
};

struct service_indexes {
  static constexpr store::string_indexer name{&service::name, store::case_fold::lower};
  static constexpr store::map_indexer labels{&service::labels};
};

struct node_indexes {
  static constexpr store::string_indexer name{&node::name, store::case_fold::lower};
  static constexpr store::integer_indexer weight{&node::weight};
};

}  // namespace keel::test::plain

template <>
struct keel::store::object_traits<keel::test::plain::task> {
  using task = keel::test::plain::task;
  static constexpr std::string_view table = "task";
  static std::string_view id(const task& t) { return t.id; }
  static std::uint64_t version(const task& t) { return t.version; }
  static void set_version(task& t, std::uint64_t v) { t.version = v; }

  static std::string encode(const task& t) {
    namespace c = keel::test::plain::codec;
    std::string out = "t";
    c::put(out, t.id);
    c::put(out, t.service_id);
    c::put(out, t.node_id);
    c::put(out, t.slot);
    c::put(out, static_cast<std::uint64_t>(static_cast<std::int32_t>(t.desired_state)));
    c::put(out, t.name);
    c::put(out, t.version);
    return out;
  }
  static keel::result<task> decode(std::string_view in) {
    namespace c = keel::test::plain::codec;
    task t;
    std::uint64_t state = 0;
    if (!c::tag(in, 't') || !c::get(in, t.id) || !c::get(in, t.service_id) ||
        !c::get(in, t.node_id) || !c::get(in, t.slot) || !c::get(in, state) ||
        !c::get(in, t.name) || !c::get(in, t.version) || !in.empty()) {
      return keel::errc::invalid_object;
    }
    t.desired_state = static_cast<keel::test::plain::task_state>(static_cast<std::int32_t>(state));
    return t;
  }

  static constexpr auto indexes() {
    using ix = keel::test::plain::task_indexes;
    return std::tuple{
        index_schema{.name = "service_id", .allow_missing = true, .indexer = ix::service_id},
        index_schema{.name = "node_id", .allow_missing = true, .indexer = ix::node_id},
        index_schema{.name = "slot", .allow_missing = true, .indexer = ix::service_slot},
        index_schema{.name = "desired_state", .indexer = ix::desired_state},
        index_schema{.name = "name", .allow_missing = true, .indexer = ix::name},
    };
  }
};

template <>
struct keel::store::object_traits<keel::test::plain::service> {
  using service = keel::test::plain::service;
  static constexpr std::string_view table = "service";
  static std::string_view id(const service& s) { return s.id; }
  static std::uint64_t version(const service& s) { return s.version; }
  static void set_version(service& s, std::uint64_t v) { s.version = v; }

  static std::string encode(const service& s) {
    namespace c = keel::test::plain::codec;
    std::string out = "s";
    c::put(out, s.id);
    c::put(out, s.name);
    c::put(out, static_cast<std::uint64_t>(s.labels.size()));
    for (const auto& [k, v] : s.labels) {
      c::put(out, k);
      c::put(out, v);
    }
    c::put(out, s.version);
    return out;
  }
  static keel::result<service> decode(std::string_view in) {
    namespace c = keel::test::plain::codec;
    service s;
    std::uint64_t labels = 0;
    if (!c::tag(in, 's') || !c::get(in, s.id) || !c::get(in, s.name) || !c::get(in, labels)) {
      return keel::errc::invalid_object;
    }
    for (std::uint64_t i = 0; i < labels; ++i) {
      std::string k, v;
      if (!c::get(in, k) || !c::get(in, v)) return keel::errc::invalid_object;
      s.labels.emplace(std::move(k), std::move(v));
    }
    if (!c::get(in, s.version) || !in.empty()) return keel::errc::invalid_object;
    return s;
  }

  static constexpr auto indexes() {
    using ix = keel::test::plain::service_indexes;
    return std::tuple{
        index_schema{.name = "name", .unique = true, .indexer = ix::name},
        index_schema{.name = "labels", .allow_missing = true, .indexer = ix::labels},
    };
  }
};

template <>
struct keel::store::object_traits<keel::test::plain::node> {
  using node = keel::test::plain::node;
  static constexpr std::string_view table = "node";
  static std::string_view id(const node& n) { return n.id; }
  static std::uint64_t version(const node& n) { return n.version; }
  static void set_version(node& n, std::uint64_t v) { n.version = v; }

  static std::string encode(const node& n) {
    namespace c = keel::test::plain::codec;
    std::string out = "n";
    c::put(out, n.id);
    c::put(out, n.name);
    c::put(out, static_cast<std::uint64_t>(n.weight));
    c::put(out, n.version);
    return out;
  }
  static keel::result<node> decode(std::string_view in) {
    namespace c = keel::test::plain::codec;
    node n;
    std::uint64_t weight = 0;
    if (!c::tag(in, 'n') || !c::get(in, n.id) || !c::get(in, n.name) || !c::get(in, weight) ||
        !c::get(in, n.version) || !in.empty()) {
      return keel::errc::invalid_object;
    }
    n.weight = static_cast<std::int64_t>(weight);
    return n;
  }

  static constexpr auto indexes() {
    using ix = keel::test::plain::node_indexes;
    return std::tuple{
        index_schema{.name = "name", .allow_missing = true, .indexer = ix::name},
        index_schema{.name = "weight", .indexer = ix::weight},
    };
  }
};

namespace keel::test::plain {

/// The store the tests use: every plain table.
using plain_store = store::store<task, service, node>;
using plain_change = plain_store::change_type;

inline task make_task(std::string id, std::string service_id, std::uint64_t slot,
                      task_state state = task_state::running, std::string node_id = "",
                      std::string name = "") {
  task t;
  t.id = std::move(id);
  t.service_id = std::move(service_id);
  t.node_id = std::move(node_id);
  t.slot = slot;
  t.desired_state = state;
  t.name = std::move(name);
  return t;
}

inline service make_service(std::string id, std::string name,
                            std::map<std::string, std::string> labels = {}) {
  service s;
  s.id = std::move(id);
  s.name = std::move(name);
  s.labels = std::move(labels);
  return s;
}

inline node make_node(std::string id, std::int64_t weight, std::string name = "") {
  node n;
  n.id = std::move(id);
  n.name = std::move(name);
  n.weight = weight;
  return n;
}

}  // namespace keel::test::plain
