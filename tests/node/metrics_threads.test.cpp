// Metrics read from another thread while the runner's thread records them:
// under TSan (tests/node runs with it in CI) this checks that a scrape of a
// prometheus_metrics races with nothing the replica does.
#include <atomic>
#include <catch2/catch.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/node/runner.hpp"
#include "keel/observe/prometheus_metrics.hpp"
#include "keel/sim/disk.hpp"
#include "keel/transport/delivery_pump.hpp"
#include "keel/transport/in_process.hpp"

using keel::raft::node_id;
using keel::test::plain::node;
using keel::test::plain::service;
using keel::test::plain::task;
using namespace std::chrono_literals;

namespace {

struct prometheus_observe : keel::observe::defaults {
  using metrics = keel::observe::prometheus_metrics;
};

using runner_type = keel::node::basic_runner<prometheus_observe, keel::node::steady_clock,
                                             keel::sim::disk_file_system, keel::transport::endpoint,
                                             task, service, node>;

task make_task(std::string id) {
  task t;
  t.id = std::move(id);
  t.service_id = "web";
  t.slot = 1;
  return t;
}

/// The value of the first sample line of `name` (no labels but the node's).
std::uint64_t sample_value(std::string_view page, std::string_view name) {
  const std::string prefix = "\n" + std::string(name) + "{";
  const auto at = page.find(prefix);
  if (at == std::string_view::npos) return 0;
  const auto sp = page.find("} ", at);
  const auto end = page.find('\n', sp);
  std::uint64_t v = 0;
  (void)std::from_chars(page.data() + sp + 2, page.data() + end, v);
  return v;
}

}  // namespace

TEST_CASE("metrics: a scrape on another thread races with none of the replica's writes",
          "[node][metrics]") {
  keel::transport::in_process_network network(7);
  keel::sim::disk disk;
  keel::observe::prometheus_metrics metrics({{"node", "1"}});
  keel::node::replica_options opts{.id = 1, .members = {1}, .data_dir = "/data"};
  auto started = runner_type::start(
      disk.file_system(), opts, {.metrics = &metrics},
      [&](keel::transport::handler h) { return network.connect(1, std::move(h)); },
      {.tick_interval = 2ms});
  REQUIRE(started);
  std::unique_ptr<runner_type> r = std::move(*started);
  keel::transport::delivery_pump pump{network};
  // The single member elects itself after its election timeout: wait for it.
  bool leads = false;
  for (int attempt = 0; attempt < 100000 && !leads; ++attempt) {
    auto st = r->status(1s);
    leads = st && st->role == "leader" && r->view_linearizable([](const auto&) { return 0; }, 1s);
    if (!leads) std::this_thread::yield();
  }
  REQUIRE(leads);

  std::atomic<bool> done{false};
  std::size_t scrapes = 0;
  std::thread scraper([&] {
    while (!done.load(std::memory_order_acquire)) {
      const std::string page = metrics.render();
      (void)metrics.read();
      ++scrapes;
      if (page.empty()) break;
    }
  });

  constexpr std::uint64_t writes = 300;
  std::uint64_t failed = 0;
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < writes; ++i) {
      const std::string id = "t" + std::to_string(i);
      auto v = r->update([&](auto& tx) { return tx.create(make_task(id)); }, 10s);
      if (!v) ++failed;
    }
  });
  writer.join();
  done.store(true, std::memory_order_release);
  scraper.join();

  CHECK(failed == 0);
  CHECK(scrapes > 0);
  const std::string page = metrics.render();
  CHECK(sample_value(page, "keel_proposals_total") >= writes);
  CHECK(metrics.read().proposals >= writes);
  network.disconnect(1);
  r->stop();
}
