// keel's side of `scripts/bench.sh cluster`: three replicas in this process,
// each on its own thread with its own WAL (fsync on) under --dir, over the
// in-process network; N writer threads call update() on the leader, each
// writing a 256-byte value to keys of its own, for --seconds. Prints one
// JSON line: {"side":"keel","writers":N,"ops_per_s":X,"p50_ms":Y,"p99_ms":Z}
// (bench.sh runs etcd's side, takes medians and prints the comparison).
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

using runner_type = keel::node::runner<keel::node::steady_clock, keel::wal::posix_file_system,
                                       keel::transport::endpoint, record>;
using namespace std::chrono_literals;

struct arguments {
  int writers = 1;
  double seconds = 3;
  std::string dir;
};

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: keel_cluster_bench --writers N --seconds S --dir DATA_DIR\n");
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
    } else {
      usage();
    }
  }
  if (argc % 2 == 0 || a.writers <= 0 || a.seconds <= 0 || a.dir.empty()) usage();
  return a;
}

double percentile_ms(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

}  // namespace

int main(int argc, char** argv) {
  const arguments args = parse(argc, argv);
  keel::transport::in_process_network network(1);
  std::map<keel::raft::node_id, std::unique_ptr<runner_type>> runners;
  for (keel::raft::node_id id : {1, 2, 3}) {
    const std::string dir = args.dir + "/node" + std::to_string(id);
    std::filesystem::create_directories(dir);
    keel::node::replica_options opts{
        .id = id, .members = {1, 2, 3}, .data_dir = dir + "/replica", .election_tick = 20};
    opts.snapshot_in_background = true;  // posix_file_system may be used from two threads.
    if (const char* m = std::getenv("KEEL_WAL_MODE"); m && std::string_view(m) == "pwrite") {
      opts.wal.mode = keel::wal::write_mode::pwrite;
    }
    auto r = runner_type::start(
        keel::wal::posix_file_system{}, opts,
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

  // The leader: the first node that answers a write.
  runner_type* leader = nullptr;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (leader == nullptr && std::chrono::steady_clock::now() < give_up) {
    for (auto& [id, r] : runners) {
      auto v = r->update([](auto& tx) { return tx.create(record{"probe", "", 0}); }, 1s);
      if (v || v.error() == keel::errc::exists) {
        leader = r.get();
        break;
      }
    }
    if (leader == nullptr) std::this_thread::sleep_for(20ms);  // An election takes ticks.
  }
  if (leader == nullptr) {
    std::fprintf(stderr, "keel_cluster_bench: no leader elected\n");
    return 1;
  }

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
      "{\"side\":\"keel\",\"writers\":%d,\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      args.writers, static_cast<double>(all.size()) / elapsed, percentile_ms(all, 0.50),
      percentile_ms(all, 0.99));
  std::fflush(stdout);
  for (auto& [id, r] : runners) {
    network.disconnect(id);
    r->stop();
  }
  return 0;
}
