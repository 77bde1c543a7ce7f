// The keel demo: three SwarmKit-style managers, each its own process, with
// its own write-ahead log on disk, talking gRPC over loopback. This process
// is manager 1; managers 2, 3 (and later 4) are this program run again with
// --replica. The story:
//
//   1. the managers elect a leader (manager 1: the others wait longer);
//   2. the leader creates the cluster object, a service and its tasks;
//   3. a watcher in manager 3's process prints every task state change;
//   4. one write moves all tasks to RUNNING;
//   5. the service scales out to 2000 tasks: one batch, grouped into entries;
//   6. an update built on a stale version is refused;
//   7. the leader hands over to manager 2, whose process is then killed
//      (SIGKILL); the others elect a new leader, which keeps writing;
//   8. manager 2 restarts, recovers from its WAL and catches up;
//   9. a fourth manager joins: added as a learner, it receives the store as
//      a snapshot streamed over gRPC in chunks, catches up and is promoted;
//      the leader's status shows every peer's progress and transport.
//
// Usage: keel_demo [--dir DIR]   (default: a new directory under /tmp)
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/grpc/transport.hpp"
#include "keel/keel.hpp"
#include "keel/objects_traits.hpp"
#include "replica_process.hpp"
#include "swarm_story.hpp"

namespace {

namespace pb = keel::objects;
using keel::raft::node_id;
using manager = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                   keel::rpc::grpc_transport, pb::Cluster, pb::Service, pb::Task>;
using namespace std::chrono_literals;

struct arguments {
  std::string dir;
  node_id replica = 0;  ///< Set in a child manager's process.
  int port = 0;         ///< A child's port (0: any); a restart keeps its old one.
  bool join = false;
  bool watch = false;
};

arguments parse(int argc, char** argv) {
  arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--dir" && has_value) {
      a.dir = argv[++i];
    } else if (flag == "--replica" && has_value) {
      a.replica = std::strtoull(argv[++i], nullptr, 10);
    } else if (flag == "--port" && has_value) {
      a.port = std::atoi(argv[++i]);
    } else if (flag == "--join") {
      a.join = true;
    } else if (flag == "--watch") {
      a.watch = true;
    } else {
      std::fprintf(stderr, "usage: keel_demo [--dir DIR]\n");
      std::exit(2);
    }
  }
  return a;
}

std::string task_state(pb::TaskState s) { return pb::TaskState_Name(s); }

keel::rpc::transport_options transport_for(node_id id, int port) {
  keel::rpc::transport_options o;
  o.id = id;
  o.listen_address = "127.0.0.1:" + std::to_string(port);
  // The demo's managers share one machine; a production cluster uses mutual
  // TLS (tls_options), which the transport requires unless told otherwise.
  o.tls.plaintext = true;
  // Small chunks, so the demo's snapshot travels in several.
  o.chunk_bytes = keel::transport::min_chunk_bytes;
  return o;
}

keel::node::replica_options manager_options(const arguments& a, node_id id, int election_tick) {
  keel::node::replica_options opts{.id = id,
                                   .members = {1, 2, 3},
                                   .data_dir = a.dir + "/manager" + std::to_string(id),
                                   .election_tick = election_tick,
                                   .join = a.join};
  opts.snapshot_interval = 1000;
  return opts;
}

std::unique_ptr<manager> start_manager(const arguments& a, node_id id, int election_tick,
                                       keel::rpc::grpc_transport& transport) {
  auto m = manager::start(keel::wal::posix_file_system{}, manager_options(a, id, election_tick),
                          [&](keel::transport::handler h) {
                            transport.attach(std::move(h));
                            return std::move(transport);
                          },
                          {.tick_interval = 20ms});
  if (!m) {
    std::printf("manager %llu failed to start: %s\n", static_cast<unsigned long long>(id),
                m.error().message().c_str());
    std::exit(1);
  }
  return std::move(*m);
}

std::size_t task_count(manager& m) {
  return m.view([](const auto& tx) { return tx.template count<pb::Task>(); });
}

void print_status(const keel::node::node_status& st) {
  std::printf("  manager %llu: %s, term %llu, commit %llu, applied %llu, snapshot at %llu\n",
              static_cast<unsigned long long>(st.id), st.role.c_str(),
              static_cast<unsigned long long>(st.term), static_cast<unsigned long long>(st.commit),
              static_cast<unsigned long long>(st.applied),
              static_cast<unsigned long long>(st.snapshot_index));
  for (const auto& p : st.peers) {
    if (p.progress.empty()) continue;  // Only the leader tracks its peers.
    std::printf(
        "      peer %llu%s: %s, match %llu; %s, %llu messages sent, %llu dropped%s%s\n",
        static_cast<unsigned long long>(p.id), p.learner ? " (learner)" : "", p.progress.c_str(),
        static_cast<unsigned long long>(p.match),
        p.transport.reachable ? "reachable" : "unreachable",
        static_cast<unsigned long long>(p.transport.sent),
        static_cast<unsigned long long>(p.transport.dropped),
        p.transport.last_error.empty() ? "" : "; last error: ", p.transport.last_error.c_str());
    if (const auto& s = p.transport.snapshot) {
      std::printf("        snapshot %llu: %llu of %llu bytes, %.1f MB/s, %s\n",
                  static_cast<unsigned long long>(s->index),
                  static_cast<unsigned long long>(s->bytes_sent),
                  static_cast<unsigned long long>(s->total_bytes), s->bytes_per_second / 1e6,
                  s->active ? "in progress" : (s->succeeded ? "delivered" : "failed"));
    }
  }
}

// --- a child manager -----------------------------------------------------------

/// Runs manager a.replica until the parent closes stdin. Commands on stdin:
/// "transfer ID" hands leadership to ID; "status" prints a line.
int run_child(const arguments& a) {
  auto t = keel::examples::listen_as_child(transport_for(a.replica, a.port));
  if (!t) return 1;
  // A wider election timeout than manager 1's, so manager 1 leads at first.
  auto m = start_manager(a, a.replica, 30, *t);
  const std::string me = "[manager " + std::to_string(a.replica) + "] ";
  std::thread watcher;
  decltype(m->store().watch(keel::store::on_update<pb::Task>(), 1)) watch;
  if (a.watch) {
    watch = m->store().watch(keel::store::on_update<pb::Task>(), 4096);
    watcher = std::thread([&] {
      while (auto ev = watch.next()) {
        const auto& before = ev->before_as<pb::Task>();
        const auto& after = ev->after_as<pb::Task>();
        if (before->status().state() == after->status().state()) continue;
        std::cout << me << "watch: " << after->name() << " " << task_state(before->status().state())
                  << " -> " << task_state(after->status().state()) << " (version "
                  << after->meta().version() << ")" << std::endl;
      }
    });
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.rfind("transfer ", 0) == 0) {
      (void)m->transfer_leadership(std::strtoull(line.c_str() + 9, nullptr, 10), 2s);
    } else if (line == "status") {
      if (auto st = m->status(2s)) {
        std::cout << me << st->role << ", term " << st->term << ", applied " << st->applied
                  << ", snapshot at " << st->snapshot_index << ", " << task_count(*m) << " tasks"
                  << std::endl;
      }
    }
  }
  if (a.watch) {
    watch.cancel();
    watcher.join();
  }
  m->stop();
  return 0;
}

// --- manager 1 and the story -------------------------------------------------------

class demo {
 public:
  explicit demo(arguments a) : args_(std::move(a)) {}

  void start() {
    auto self = keel::rpc::grpc_transport::listen(transport_for(1, 0));
    if (!self) fail("manager 1 cannot listen");
    book_[1] = self->address();
    spawn(2, false);
    spawn(3, false);
    for (auto& [id, child] : children_) child->send_line(keel::examples::format_addresses(book_));
    self->set_addresses(book_);
    me_ = start_manager(args_, 1, 10, *self);
  }

  manager& me() { return *me_; }

  /// Waits until manager 1 sees `leader` (or any leader, for 0) lead; its status.
  keel::node::node_status await_leader(node_id leader = 0) {
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < give_up) {
      auto st = me_->status(1s);
      if (st && st->leader != keel::raft::no_node && (leader == 0 || st->leader == leader)) {
        if (st->leader != 1 || me_->view_linearizable([](const auto&) { return 0; }, 1s)) {
          return *st;
        }
      }
      std::this_thread::sleep_for(20ms);  // Elections take ticks.
    }
    fail("no leader elected");
  }

  /// Commits fn on manager 1, which must lead.
  template <class F>
  void commit(const std::string& what, F&& fn) {
    auto v = me_->update(std::forward<F>(fn), 10s);
    if (!v) fail(what + " failed: " + v.error().message());
    std::printf("  %s: committed at index %llu\n", what.c_str(),
                static_cast<unsigned long long>(*v));
  }

  void spawn(node_id id, bool join, int port = 0) {
    std::vector<std::string> args{"--dir", args_.dir};
    if (port != 0) args.insert(args.end(), {"--port", std::to_string(port)});
    if (join) args.emplace_back("--join");
    if (id == 3) args.emplace_back("--watch");
    auto child = keel::examples::replica_process::spawn(id, args, "");
    if (!child) fail("manager " + std::to_string(id) + " did not start");
    book_[id] = child->address();
    children_[id] = std::move(child);
  }

  keel::examples::replica_process& child(node_id id) { return *children_.at(id); }
  const std::string& address(node_id id) { return book_.at(id); }
  const keel::examples::address_book& book() const { return book_; }

  /// Asks every child for its status line, then stops them and manager 1.
  void finish() {
    for (auto& [id, c] : children_) c->send_line("status");
    children_.clear();  // Each answers, then sees its stdin close.
    me_->stop();
  }

  [[noreturn]] void fail(const std::string& why) {
    std::printf("demo failed: %s\n", why.c_str());
    std::fflush(stdout);
    children_.clear();
    std::exit(1);
  }

 private:
  arguments args_;
  keel::examples::address_book book_;
  std::map<node_id, std::unique_ptr<keel::examples::replica_process>> children_;
  std::unique_ptr<manager> me_;
};

int run_story(arguments args) {
  const bool temporary = args.dir.empty();
  if (temporary) {
    std::string pattern = (std::filesystem::temp_directory_path() / "keel-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return 1;
    args.dir = pattern;
  }
  std::printf("Data under %s\n", args.dir.c_str());
  demo d(args);
  d.start();

  std::printf("1. Three managers, three processes, elect a leader over gRPC.\n");
  auto st = d.await_leader(1);
  std::printf("  manager 1 leads (term %llu); managers 2 and 3 listen at %s and %s\n",
              static_cast<unsigned long long>(st.term), d.address(2).c_str(), d.address(3).c_str());

  std::printf("2. The leader creates the cluster, a service and its three tasks.\n");
  d.commit("create cluster, service web, tasks web.1-3",
           [](auto& tx) { return keel::examples::create_cluster_and_service(tx); });

  std::printf("3. Manager 3's process watches task state changes (its lines start [manager 3]).\n");
  std::printf("4. One write moves every task of the service to RUNNING.\n");
  d.commit("tasks web.1-3 -> RUNNING",
           [](auto& tx) { return keel::examples::start_web_tasks(tx); });

  std::printf("5. The service scales to 2000 tasks: one batch, 200 creates per entry.\n");
  auto before = d.me().status(2s);
  const auto scaled = d.me().batch(
      [](auto& b) {
        for (int slot = 4; slot <= 2000; ++slot) {
          if (b.update([slot](auto& tx) { return tx.create(keel::examples::web_task(slot)); }))
            return;
        }
      },
      60s);
  auto after = d.me().status(2s);
  if (scaled.error || !before || !after) d.fail("the batch failed: " + scaled.error.message());
  std::printf("  %zu creates committed in %llu log entries\n", scaled.committed,
              static_cast<unsigned long long>(after->commit - before->commit));

  std::printf("6. An update built on a stale version is refused.\n");
  pb::Task stale =
      *d.me().view([](const auto& tx) { return tx.template get<pb::Task>("task-web-1"); });
  stale.mutable_meta()->set_version(stale.meta().version() - 1);
  stale.mutable_status()->set_state(pb::SHUTDOWN);
  auto refused = d.me().update([&](auto& tx) { return tx.update(stale); }, 10s);
  std::printf("  update of web.1 from version %llu: %s\n",
              static_cast<unsigned long long>(stale.meta().version()),
              refused ? "accepted (wrong!)" : refused.error().message().c_str());
  if (refused) d.fail("a stale update was accepted");

  std::printf("7. Manager 1 hands leadership to manager 2, whose process is then killed.\n");
  if (auto ec = d.me().transfer_leadership(2, 5s)) d.fail("transfer: " + ec.message());
  st = d.await_leader(2);
  std::printf("  manager 2 leads (term %llu); kill -9 manager 2\n",
              static_cast<unsigned long long>(st.term));
  const int port2 = d.child(2).port();
  d.child(2).kill_hard();
  // Manager 1 or 3 wins the election; manager 1 runs this story, so 3 hands over.
  st = d.await_leader();
  while (st.leader == 2) {
    std::this_thread::sleep_for(20ms);  // Until they notice manager 2 is gone.
    st = d.await_leader();
  }
  if (st.leader == 3) {
    d.child(3).send_line("transfer 1");
    st = d.await_leader(1);
  }
  std::printf("  manager 1 leads again (term %llu)\n", static_cast<unsigned long long>(st.term));
  d.commit("task web.2 -> FAILED", [](auto& tx) { return keel::examples::fail_web_2(tx); });

  std::printf("8. Manager 2 restarts on its old port, recovers from its WAL and catches up.\n");
  d.spawn(2, false, port2);
  d.child(2).send_line(keel::examples::format_addresses(d.book()));
  bool caught_up = false;
  for (int i = 0; i < 1500 && !caught_up; ++i) {
    st = *d.me().status(1s);
    for (const auto& p : st.peers) {
      if (p.id == 2) caught_up = p.match >= st.commit;
    }
    if (!caught_up) std::this_thread::sleep_for(20ms);  // Catching up takes a few heartbeats.
  }
  if (!caught_up) d.fail("manager 2 did not catch up");
  std::printf("  manager 2 is back and holds the whole log (up to index %llu)\n",
              static_cast<unsigned long long>(st.commit));

  std::printf("9. A fourth manager joins through a snapshot streamed over gRPC.\n");
  d.spawn(4, true);
  d.child(4).send_line(keel::examples::format_addresses(d.book()));
  auto added = d.me().add_learner(4, d.address(4), 10s);
  if (!added) d.fail("add_learner: " + added.error().message());
  std::printf("  manager 4 added as a learner at index %llu\n",
              static_cast<unsigned long long>(*added));
  bool voter = false;
  for (int i = 0; i < 1500 && !voter; ++i) {
    st = *d.me().status(1s);
    for (node_id v : st.voters) voter |= v == 4;
    if (!voter) std::this_thread::sleep_for(20ms);  // Catching up takes a few heartbeats.
  }
  if (!voter) d.fail("manager 4 was not promoted");
  std::printf("  manager 4 caught up and was promoted to voter; the leader's view:\n");
  print_status(st);
  std::printf("  manager 1 holds %zu tasks; every manager reports:\n", task_count(d.me()));
  d.finish();
  if (temporary) std::filesystem::remove_all(args.dir);
  std::printf("Done.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const arguments args = parse(argc, argv);
  if (args.replica != 0) return run_child(args);
  return run_story(args);
}
