// Helpers of keelctl's tests: runners of keel's example objects over the
// gRPC transport on loopback (one for a data directory to inspect, three
// for a cluster an admin server answers for), keelctl::run with captured
// streams, and JSON lines read back with protobuf's JSON parser.
#pragma once

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../wal/wal_test_support.hpp"
#include "keel/grpc/admin.hpp"
#include "keel/grpc/transport.hpp"
#include "keel/node/runner.hpp"
#include "keel/objects_traits.hpp"
#include "keel/wal/file_system.hpp"
#include "keelctl/commands.hpp"

namespace keel::test::tools {

namespace pb = ::keel::objects;
using namespace std::chrono_literals;
using example_runner = node::runner<node::steady_clock, wal::posix_file_system, rpc::grpc_transport,
                                    pb::Task, pb::Service, pb::Node, pb::Cluster, pb::Network>;

/// keelctl's exit status and what it printed.
struct run_output {
  int rc = 0;
  std::string out{};
  std::string err{};
};

inline run_output run_keelctl(std::vector<std::string> words) {
  std::ostringstream out;
  std::ostringstream err;
  run_output r;
  r.rc = ::keelctl::run(words, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

/// The lines of `text`.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

/// One JSON object, parsed by protobuf's JSON parser.
inline google::protobuf::Struct parse_json(const std::string& line) {
  google::protobuf::Struct s;
  const auto status = google::protobuf::util::JsonStringToMessage(line, &s);
  INFO(line);
  REQUIRE(status.ok());
  return s;
}

inline pb::Task make_task(const std::string& id, const std::string& service, std::uint64_t slot) {
  pb::Task t;
  t.set_id(id);
  t.set_name(service + "." + std::to_string(slot));
  t.set_service_id(service);
  t.set_slot(slot);
  t.set_desired_state(pb::RUNNING);
  return t;
}

/// Runners of the example objects over gRPC on loopback, each with its own
/// directory and ephemeral port, plus an admin server each when asked.
class example_cluster {
 public:
  example_cluster(const std::string& root, std::vector<raft::node_id> ids, bool with_admin,
                  node::replica_options tuning = {})
      : root_(root), tuning_(std::move(tuning)) {
    for (const auto id : ids) {
      rpc::transport_options o;
      o.id = id;
      o.tls.plaintext = true;
      auto t = rpc::grpc_transport::listen(o);
      REQUIRE(t);
      addresses_[id] = t->address();
      pending_[id].emplace(std::move(*t));
    }
    for (const auto id : ids) start(id, ids, with_admin);
  }

  ~example_cluster() { stop(); }

  /// Stops every runner and admin server (the data directories stay).
  void stop() {
    admins_.clear();
    for (auto& [id, r] : runners_) {
      if (r) r->stop();
    }
    runners_.clear();
  }

  std::string data_dir(raft::node_id id) const { return root_ + "/n" + std::to_string(id); }
  example_runner& at(raft::node_id id) { return *runners_.at(id); }
  std::string admin_address(raft::node_id id) const { return admins_.at(id).address(); }

  /// Asks every member until one leads and takes writes (within a minute,
  /// generous for sanitizers on a loaded machine).
  example_runner* leader() {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& [id, r] : runners_) {
        auto st = r->status(2s);
        if (st && st->role == "leader" && st->applied >= st->commit &&
            r->view_linearizable([](const auto&) { return 0; }, 2s)) {
          return r.get();
        }
      }
      std::this_thread::sleep_for(5ms);
    }
    return nullptr;
  }

 private:
  void start(raft::node_id id, const std::vector<raft::node_id>& members, bool with_admin) {
    node::replica_options opts = tuning_;
    opts.id = id;
    opts.members = members;
    opts.data_dir = data_dir(id);
    // A 10 ms tick and a 1 s election timeout: a sanitizer build under a
    // parallel ctest stalls for 100 ms and more, and a shorter timeout lets
    // check_quorum step a healthy leader down mid-test.
    opts.election_tick = 100;
    auto connect = [&](transport::handler h) {
      rpc::grpc_transport& t = *pending_[id];
      t.attach(std::move(h));
      for (const auto& [peer, address] : addresses_) {
        if (peer != id) t.add_peer(peer, address);
      }
      return std::move(t);
    };
    auto r =
        example_runner::start(wal::posix_file_system{}, opts, connect, {.tick_interval = 10ms});
    REQUIRE(r);
    runners_[id] = std::move(*r);
    pending_.erase(id);
    if (with_admin) {
      rpc::admin_options a;
      a.tls.plaintext = true;
      a.timeout = 5s;
      auto server = rpc::admin_server<example_runner>::listen(a, *runners_[id]);
      REQUIRE(server);
      admins_.emplace(id, std::move(*server));
    }
  }

  std::string root_;
  node::replica_options tuning_;
  std::map<raft::node_id, std::string> addresses_;
  std::map<raft::node_id, std::optional<rpc::grpc_transport>> pending_;
  std::map<raft::node_id, std::unique_ptr<example_runner>> runners_;
  std::map<raft::node_id, rpc::admin_server<example_runner>> admins_;
};

/// What the sample data directory's store held when its node stopped:
/// table -> id -> the object's JSON as protobuf prints it.
using expected_objects = std::map<std::string, std::map<std::string, std::string>>;

inline std::string json_of(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  REQUIRE(google::protobuf::util::MessageToJsonString(m, &out, o).ok());
  return out;
}

/// A stopped single node's data directory under `root` (returned), after
/// enough writes for snapshots and compaction and entries after the last
/// snapshot: creates, updates, removes, in several tables.
inline std::string write_sample_data_dir(const std::string& root, expected_objects& expected) {
  node::replica_options tuning;
  tuning.snapshot_interval = 40;
  tuning.snapshot_keep_entries = 10;
  example_cluster c(root, {1}, false, tuning);
  example_runner* leader = c.leader();
  REQUIRE(leader != nullptr);
  for (int i = 0; i < 90; ++i) {
    const auto v = leader->update(
        [&](auto& tx) {
          return tx.create(make_task("task-" + std::to_string(i), i % 2 ? "web" : "db",
                                     static_cast<std::uint64_t>(i)));
        },
        10s);
    REQUIRE(v);
  }
  for (int i = 0; i < 3; ++i) {
    pb::Service s;
    s.set_id("svc-" + std::to_string(i));
    s.set_name(i == 0 ? "web" : "db" + std::to_string(i));
    (*s.mutable_labels())["tier"] = "front";
    REQUIRE(leader->update([&](auto& tx) { return tx.create(s); }, 10s));
  }
  // Updates and removes after the last snapshot.
  REQUIRE(leader->update(
      [&](auto& tx) {
        auto t = tx.template get<pb::Task>("task-3");
        if (!t) return make_error_code(errc::not_found);
        pb::Task changed = *t;
        changed.set_node_id("node-7");
        return tx.update(changed);
      },
      10s));
  REQUIRE(leader->update([&](auto& tx) { return tx.template remove<pb::Task>("task-4"); }, 10s));
  leader->view([&](const auto& tx) {
    auto tasks = tx.template find<pb::Task>(store::all());
    REQUIRE(tasks);
    for (const auto& t : *tasks) expected["task"][t->id()] = json_of(*t);
    auto services = tx.template find<pb::Service>(store::all());
    REQUIRE(services);
    for (const auto& s : *services) expected["service"][s->id()] = json_of(*s);
  });
  c.stop();
  return c.data_dir(1);
}

}  // namespace keel::test::tools
