// keel's side of `scripts/bench.sh cluster`: three replicas, each with its
// own WAL (fsync on) under --dir; N writer threads call update() on the
// leader, each writing a 256-byte value to keys of its own, for --seconds.
// Prints one JSON line:
//   {"side":"keel","transport":T,"writers":N,"ops_per_s":X,"p50_ms":Y,"p99_ms":Z}
// (bench.sh runs etcd's side, takes medians and prints the comparison).
//
// --transport grpc (the default when the gRPC adapter is built): three
// processes over loopback gRPC, as etcd's members are. This process is
// member 1 and runs the writers; members 2 and 3 are this program re-run
// with --replica, and wait longer before an election, so member 1 leads.
// --transport in-process: the three replicas in this process, over the
// in-process network.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "keel/detail/codec.hpp"
#include "keel/node/runner.hpp"
#include "keel/transport/delivery_pump.hpp"
#include "keel/transport/in_process.hpp"
#include "keel/wal/file_system.hpp"

#ifdef KEEL_BENCH_GRPC
#include "../examples/replica_process.hpp"
#include "keel/grpc/transport.hpp"
#endif

namespace {

/// The benchmark's object: a key and its value, like an etcd key.
struct record {
  std::string id;
  std::string value;
  std::uint64_t version = 0;
};

}  // namespace

template <>
struct keel::store::object_traits<record> {
  static constexpr std::string_view table = "record";
  static std::string_view id(const record& r) { return r.id; }
  static std::uint64_t version(const record& r) { return r.version; }
  static void set_version(record& r, std::uint64_t v) { r.version = v; }
  static std::string encode(const record& r) {
    std::string out(8 + 4 + r.id.size() + 4 + r.value.size(), '\0');
    keel::detail::body_writer w(reinterpret_cast<std::byte*>(out.data()));
    w.u64(r.version);
    w.string(r.id);
    w.string(r.value);
    return out;
  }
  static keel::result<record> decode(std::string_view bytes) {
    keel::detail::body_reader rd(std::as_bytes(std::span(bytes.data(), bytes.size())));
    record r;
    std::string_view id;
    std::string_view value;
    if (!rd.u64(r.version) || !rd.view(id) || !rd.view(value) || rd.left() != 0) {
      return keel::errc::invalid_object;
    }
    r.id = id;
    r.value = value;
    return r;
  }
  static auto indexes() { return std::tuple{}; }
};

namespace {

template <class Transport>
using runner_of =
    keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system, Transport, record>;
using namespace std::chrono_literals;

struct arguments {
  int writers = 1;
  double seconds = 3;
  std::string dir;
#ifdef KEEL_BENCH_GRPC
  std::string transport = "grpc";
#else
  std::string transport = "in-process";
#endif
  keel::raft::node_id replica = 0;  ///< Set in a child member's process.
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: keel_cluster_bench --writers N --seconds S --dir DATA_DIR "
               "[--transport grpc|in-process]\n");
  std::exit(2);
}

arguments parse(int argc, char** argv) {
  arguments a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--writers") {
      a.writers = std::atoi(argv[i + 1]);
    } else if (flag == "--seconds") {
      a.seconds = std::atof(argv[i + 1]);
    } else if (flag == "--dir") {
      a.dir = argv[i + 1];
    } else if (flag == "--transport") {
      a.transport = argv[i + 1];
    } else if (flag == "--replica") {
      a.replica = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      usage();
    }
  }
  if (argc % 2 == 0 || a.writers <= 0 || a.seconds <= 0 || a.dir.empty()) usage();
  if (a.transport != "grpc" && a.transport != "in-process") usage();
  return a;
}

/// A member's options: its WAL under dir, fsync on, snapshots in the
/// background (posix_file_system may be used from two threads).
keel::node::replica_options member_options(const arguments& args, keel::raft::node_id id,
                                           int election_tick) {
  const std::string dir = args.dir + "/node" + std::to_string(id);
  std::filesystem::create_directories(dir);
  keel::node::replica_options opts{
      .id = id, .members = {1, 2, 3}, .data_dir = dir + "/replica", .election_tick = election_tick};
  opts.snapshot_in_background = true;
  if (const char* m = std::getenv("KEEL_WAL_MODE"); m && std::string_view(m) == "pwrite") {
    opts.wal.mode = keel::wal::write_mode::pwrite;
  }
  return opts;
}

double percentile_ms(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

/// Runs the writers against `leader` and prints the JSON line.
template <class Runner>
void run_writers(const arguments& args, Runner* leader) {
  const std::string value(256, 'v');
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> errors{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(args.writers));
  std::vector<std::thread> threads;
  for (int w = 0; w < args.writers; ++w) {
    threads.emplace_back([&, w] {
      auto& mine = latencies[static_cast<std::size_t>(w)];
      mine.reserve(1 << 16);
      while (!go.load()) std::this_thread::yield();
      for (std::uint64_t i = 0; !done.load(); ++i) {
        // Each writer owns its keys: no two writers race on one object.
        const std::string key = "w" + std::to_string(w) + "/" + std::to_string(i % 1000);
        const auto start = std::chrono::steady_clock::now();
        auto v = leader->update(
            [&](auto& tx) {
              record r{key, value, 0};
              if (auto cur = tx.template get<record>(key)) {
                r.version = cur->version;
                return tx.update(std::move(r));
              }
              return tx.create(std::move(r));
            },
            10s);
        const std::chrono::duration<double, std::milli> took =
            std::chrono::steady_clock::now() - start;
        if (v) {
          mine.push_back(took.count());
        } else if (errors++ == 0) {
          std::fprintf(stderr, "keel_cluster_bench: first failed write: %s\n",
                       v.error().message().c_str());
        }
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  go.store(true);
  std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));  // The run's length.
  done.store(true);
  for (auto& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  if (errors.load() != 0) {
    std::fprintf(stderr, "keel_cluster_bench: %llu writes failed\n",
                 static_cast<unsigned long long>(errors.load()));
  }
  std::printf(
      "{\"side\":\"keel\",\"transport\":\"%s\",\"writers\":%d,\"ops_per_s\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      args.transport.c_str(), args.writers, static_cast<double>(all.size()) / elapsed,
      percentile_ms(all, 0.50), percentile_ms(all, 0.99));
  std::fflush(stdout);
}

/// The first of `candidates` that answers a write, within 30 s.
template <class Runner>
Runner* find_leader(const std::vector<Runner*>& candidates) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    for (Runner* r : candidates) {
      auto v = r->update([](auto& tx) { return tx.create(record{"probe", "", 0}); }, 1s);
      if (v || v.error() == keel::errc::exists) return r;
    }
    std::this_thread::sleep_for(20ms);  // An election takes ticks.
  }
  std::fprintf(stderr, "keel_cluster_bench: no leader elected\n");
  return nullptr;
}

int run_in_process(const arguments& args) {
  using runner_type = runner_of<keel::transport::endpoint>;
  keel::transport::in_process_network network(1);
  std::map<keel::raft::node_id, std::unique_ptr<runner_type>> runners;
  for (keel::raft::node_id id : {1, 2, 3}) {
    auto r = runner_type::start(
        keel::wal::posix_file_system{}, member_options(args, id, 20),
        [&](keel::transport::handler h) { return network.connect(id, std::move(h)); },
        {.tick_interval = 50ms});
    if (!r) {
      std::fprintf(stderr, "keel_cluster_bench: node %lu: %s\n", static_cast<unsigned long>(id),
                   r.error().message().c_str());
      return 1;
    }
    runners[id] = std::move(*r);
  }
  keel::transport::delivery_pump pump(network);
  std::vector<runner_type*> candidates;
  for (auto& [id, r] : runners) candidates.push_back(r.get());
  runner_type* leader = find_leader(candidates);
  if (leader != nullptr) run_writers(args, leader);
  for (auto& [id, r] : runners) {
    network.disconnect(id);
    r->stop();
  }
  return leader != nullptr ? 0 : 1;
}

#ifdef KEEL_BENCH_GRPC
using grpc_runner = runner_of<keel::rpc::grpc_transport>;

keel::rpc::transport_options plaintext(keel::raft::node_id id) {
  keel::rpc::transport_options o;
  o.id = id;
  o.tls.plaintext = true;  // etcd's members talk plain HTTP in the peer benchmark too.
  return o;
}

/// A child member: runs until the parent closes its stdin.
int run_child(const arguments& args) {
  auto t = keel::examples::listen_as_child(plaintext(args.replica));
  if (!t) return 1;
  // Members 2 and 3 wait four times longer before an election: member 1 leads.
  auto r =
      grpc_runner::start(keel::wal::posix_file_system{}, member_options(args, args.replica, 80),
                         [&](keel::transport::handler h) {
                           t->attach(std::move(h));
                           return std::move(*t);
                         },
                         {.tick_interval = 50ms});
  if (!r) return 1;
  keel::examples::wait_for_parent();
  (*r)->stop();
  return 0;
}

int run_over_grpc(const arguments& args) {
  auto self = keel::rpc::grpc_transport::listen(plaintext(1));
  if (!self) return 1;
  keel::examples::address_book book{{1, self->address()}};
  std::vector<std::unique_ptr<keel::examples::replica_process>> children;
  for (keel::raft::node_id id : {2, 3}) {
    auto child = keel::examples::replica_process::spawn(
        id, {"--writers", "1", "--seconds", "1", "--dir", args.dir}, "");
    if (!child) {
      std::fprintf(stderr, "keel_cluster_bench: member %lu did not start\n",
                   static_cast<unsigned long>(id));
      return 1;
    }
    book[id] = child->address();
    children.push_back(std::move(child));
  }
  for (auto& c : children) c->send_line(keel::examples::format_addresses(book));
  self->set_addresses(book);
  auto r = grpc_runner::start(keel::wal::posix_file_system{}, member_options(args, 1, 20),
                              [&](keel::transport::handler h) {
                                self->attach(std::move(h));
                                return std::move(*self);
                              },
                              {.tick_interval = 50ms});
  if (!r) return 1;
  grpc_runner* leader = find_leader(std::vector<grpc_runner*>{r->get()});
  if (leader != nullptr) run_writers(args, leader);
  (*r)->stop();
  r->reset();
  children.clear();
  return leader != nullptr ? 0 : 1;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const arguments args = parse(argc, argv);
#ifdef KEEL_BENCH_GRPC
  if (args.replica != 0) return run_child(args);
  if (args.transport == "grpc") return run_over_grpc(args);
#endif
  return run_in_process(args);
}
