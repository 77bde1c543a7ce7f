// Object traits for keel's example objects (proto/keel/objects.proto), with
// the indexes SwarmKit's store keeps for them (manager/state/store/
// {tasks,services,nodes,clusters,networks}.go); the tests and the demo use
// them. Getters are pointers to the generated const accessors: each has one
// overload, so taking its address is unambiguous.
//
// Needs the generated keel/objects.pb.h: link the keel_example_objects
// target (built when protobuf is found), which defines
// KEEL_HAS_EXAMPLE_OBJECTS.
#pragma once

#include <cstdint>
#include <string_view>
#include <tuple>

#include "keel/objects.pb.h"
#include "keel/store/indexer.hpp"
#include "keel/store/object_traits.hpp"
#include "keel/store/protobuf_traits.hpp"

namespace keel::example_objects {

namespace pb = ::keel::objects;

/// Task: by service, by node (empty until scheduled: missing), by (service,
/// slot), by desired state, by name, and the running ones.
struct task_indexes {
  static constexpr store::string_indexer service_id{&pb::Task::service_id};
  static constexpr store::string_indexer node_id{&pb::Task::node_id};
  static constexpr store::integer_indexer slot{&pb::Task::slot};
  static constexpr store::compound_indexer service_slot{service_id, slot};
  static constexpr store::integer_indexer desired_state{&pb::Task::desired_state};
  static constexpr store::string_indexer name{&pb::Task::name, store::case_fold::lower};
  static constexpr store::conditional_indexer running{[](const pb::Task& t) {
    return t.status().state() == pb::RUNNING;
  }};
};

/// Service: by name (unique, case-insensitive) and by label.
struct service_indexes {
  static constexpr store::string_indexer name{&pb::Service::name, store::case_fold::lower};
  static constexpr store::map_indexer labels{&pb::Service::labels};
};

/// Node: by name (hostnames may repeat: not unique), by label, by role.
struct node_indexes {
  static constexpr store::string_indexer name{&pb::Node::name, store::case_fold::lower};
  static constexpr store::map_indexer labels{&pb::Node::labels};
  static constexpr store::integer_indexer role{&pb::Node::role};
};

/// Cluster and Network: by name (unique, case-insensitive).
template <class M>
struct name_index {
  static constexpr store::string_indexer name{&M::name, store::case_fold::lower};
};

}  // namespace keel::example_objects

template <>
struct keel::store::object_traits<keel::objects::Task>
    : keel::store::protobuf_traits<keel::objects::Task> {
  static constexpr std::string_view table = "task";
  static constexpr auto indexes() {
    using ix = keel::example_objects::task_indexes;
    return std::tuple{
        index_schema{.name = "service_id", .allow_missing = true, .indexer = ix::service_id},
        index_schema{.name = "node_id", .allow_missing = true, .indexer = ix::node_id},
        index_schema{.name = "slot", .allow_missing = true, .indexer = ix::service_slot},
        index_schema{.name = "desired_state", .indexer = ix::desired_state},
        index_schema{.name = "name", .allow_missing = true, .indexer = ix::name},
        index_schema{.name = "running", .indexer = ix::running},
    };
  }
};

template <>
struct keel::store::object_traits<keel::objects::Service>
    : keel::store::protobuf_traits<keel::objects::Service> {
  static constexpr std::string_view table = "service";
  static constexpr auto indexes() {
    using ix = keel::example_objects::service_indexes;
    return std::tuple{
        index_schema{.name = "name", .unique = true, .indexer = ix::name},
        index_schema{.name = "labels", .allow_missing = true, .indexer = ix::labels},
    };
  }
};

template <>
struct keel::store::object_traits<keel::objects::Node>
    : keel::store::protobuf_traits<keel::objects::Node> {
  static constexpr std::string_view table = "node";
  static constexpr auto indexes() {
    using ix = keel::example_objects::node_indexes;
    return std::tuple{
        index_schema{.name = "name", .allow_missing = true, .indexer = ix::name},
        index_schema{.name = "labels", .allow_missing = true, .indexer = ix::labels},
        index_schema{.name = "role", .indexer = ix::role},
    };
  }
};

template <>
struct keel::store::object_traits<keel::objects::Cluster>
    : keel::store::protobuf_traits<keel::objects::Cluster> {
  static constexpr std::string_view table = "cluster";
  static constexpr auto indexes() {
    using ix = keel::example_objects::name_index<keel::objects::Cluster>;
    return std::tuple{index_schema{.name = "name", .unique = true, .indexer = ix::name}};
  }
};

template <>
struct keel::store::object_traits<keel::objects::Network>
    : keel::store::protobuf_traits<keel::objects::Network> {
  static constexpr std::string_view table = "network";
  static constexpr auto indexes() {
    using ix = keel::example_objects::name_index<keel::objects::Network>;
    return std::tuple{index_schema{.name = "name", .unique = true, .indexer = ix::name}};
  }
};
