// The writes of the demos' SwarmKit story, shared by the networked demo
// (demo.cpp) and the simulated one (demo_simulated.cpp): each is a
// function of a write transaction, so either demo commits it its own way.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "keel/keel.hpp"
#include "keel/objects_traits.hpp"

namespace keel::examples {

namespace pb = keel::objects;

/// Task web.<slot> of service web, wanted RUNNING, still PENDING.
inline pb::Task web_task(int slot) {
  pb::Task t;
  t.set_id("task-web-" + std::to_string(slot));
  t.set_name("web." + std::to_string(slot));
  t.set_service_id("svc-web");
  t.set_slot(static_cast<std::uint64_t>(slot));
  t.set_desired_state(pb::RUNNING);
  t.mutable_status()->set_state(pb::PENDING);
  return t;
}

/// The cluster object, service web and its tasks web.1-3.
template <class Tx>
std::error_code create_cluster_and_service(Tx& tx) {
  pb::Cluster cluster;
  cluster.set_id("cluster-1");
  cluster.set_name("default");
  if (auto ec = tx.create(cluster)) return ec;
  pb::Service web;
  web.set_id("svc-web");
  web.set_name("web");
  web.mutable_spec()->set_replicas(3);
  web.mutable_spec()->set_image("nginx:1.25");
  if (auto ec = tx.create(web)) return ec;
  for (int slot = 1; slot <= 3; ++slot) {
    if (auto ec = tx.create(web_task(slot))) return ec;
  }
  return {};
}

/// Every task of service web moves to RUNNING, in one transaction.
template <class Tx>
std::error_code start_web_tasks(Tx& tx) {
  std::vector<pb::Task> tasks;
  if (auto ec = tx.template for_each<pb::Task>(keel::store::by_service_id("svc-web"),
                                               [&](const auto& t) { tasks.push_back(*t); })) {
    return ec;
  }
  for (pb::Task& t : tasks) {
    t.mutable_status()->set_state(pb::RUNNING);
    if (auto ec = tx.update(t)) return ec;
  }
  return {};
}

/// Task web.2's container died.
template <class Tx>
std::error_code fail_web_2(Tx& tx) {
  pb::Task t = *tx.template get<pb::Task>("task-web-2");
  t.mutable_status()->set_state(pb::FAILED);
  t.mutable_status()->set_message("container exited with status 137");
  return tx.update(t);
}

}  // namespace keel::examples
