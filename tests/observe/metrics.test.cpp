// The metrics policy: the Prometheus text format written exactly as the
// format says (a golden text derived by hand from the 0.0.4 specification),
// and a three-node cluster whose per-replica prometheus_metrics agree with
// the replicas' status: term, commit, applied, apply lag, proposals, WAL
// syncs, snapshots saved, sent and installed, watch queue depths.
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "keel/node/runner.hpp"
#include "keel/observe/prometheus_metrics.hpp"
#include "keel/observe/prometheus_text.hpp"
#include "keel/sim/disk.hpp"
#include "keel/transport/delivery_pump.hpp"
#include "observed_cluster.hpp"

using keel::observe::label;
using keel::observe::prometheus_metrics;
using keel::observe::prometheus_text;
using keel::raft::node_id;
using namespace std::chrono_literals;

namespace {

struct prometheus_observe : keel::observe::defaults {
  using metrics = prometheus_metrics;
};

using cluster = keel::test::observed_cluster<prometheus_observe>;

cluster make_cluster(std::uint64_t seed, keel::node::replica_options base = {}) {
  return cluster(
      seed, {1, 2, 3}, base,
      [](node_id id) {
        return std::make_unique<prometheus_metrics>(
            std::vector<label>{{"node", std::to_string(id)}});
      },
      nullptr);
}

bool contains_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

}  // namespace

TEST_CASE("prometheus text: families, escaped labels and a histogram render as the format says",
          "[observe][metrics]") {
  std::string out;
  const std::vector<label> common{{"node", "a\\b\"c\nd"}};
  prometheus_text w(out, common);
  w.family("keel_requests_total", "counter", "Requests, with a \\ and a\nnewline.");
  w.sample("keel_requests_total", 42, {{"type", "app"}});
  w.family("keel_temperature", "gauge", "A gauge.");
  w.sample_double("keel_temperature", -1.5);
  const double bounds[] = {0.001, 0.01, 0.1};
  const std::uint64_t counts[] = {2, 0, 1};
  w.histogram("keel_latency_seconds", "Latency.", bounds, counts, 0.25, 4);
  const std::string expected = R"txt(# HELP keel_requests_total Requests, with a \\ and a\nnewline.
# TYPE keel_requests_total counter
keel_requests_total{node="a\\b\"c\nd",type="app"} 42
# HELP keel_temperature A gauge.
# TYPE keel_temperature gauge
keel_temperature{node="a\\b\"c\nd"} -1.5
# HELP keel_latency_seconds Latency.
# TYPE keel_latency_seconds histogram
keel_latency_seconds_bucket{node="a\\b\"c\nd",le="0.001"} 2
keel_latency_seconds_bucket{node="a\\b\"c\nd",le="0.01"} 2
keel_latency_seconds_bucket{node="a\\b\"c\nd",le="0.1"} 3
keel_latency_seconds_bucket{node="a\\b\"c\nd",le="+Inf"} 4
keel_latency_seconds_sum{node="a\\b\"c\nd"} 0.25
keel_latency_seconds_count{node="a\\b\"c\nd"} 4
)txt";
  CHECK(out == expected);
}

TEST_CASE("prometheus text: numbers are written as Prometheus clients write them",
          "[observe][metrics]") {
  auto number = [](double v) {
    std::string out;
    prometheus_text::append_number(out, v);
    return out;
  };
  CHECK(number(1) == "1");
  CHECK(number(0) == "0");
  CHECK(number(0.0001) == "0.0001");
  CHECK(number(0.00025) == "0.00025");
  CHECK(number(0.00001) == "1e-05");
  CHECK(number(2.5) == "2.5");
  CHECK(number(1.0 / 0.0) == "+Inf");
  CHECK(number(-1.0 / 0.0) == "-Inf");
  CHECK(number(0.0 / 0.0) == "NaN");
  std::string out;
  prometheus_text w(out);
  w.sample("keel_plain", 7);
  CHECK(out == "keel_plain 7\n");
}

TEST_CASE("prometheus metrics: the WAL sync histogram has cumulative buckets from 100us to 1s",
          "[observe][metrics]") {
  prometheus_metrics m({{"node", "1"}});
  m.wal_synced(50us);
  m.wal_synced(300us);
  m.wal_synced(2s);
  const std::string text = m.render();
  const std::string h = "keel_wal_sync_duration_seconds";
  CHECK(contains_line(text, "# HELP " + h + " Latency of WAL syncs (fsync or msync)."));
  CHECK(contains_line(text, "# TYPE " + h + " histogram"));
  CHECK(contains_line(text, h + "_bucket{node=\"1\",le=\"0.0001\"} 1"));
  CHECK(contains_line(text, h + "_bucket{node=\"1\",le=\"0.00025\"} 1"));
  CHECK(contains_line(text, h + "_bucket{node=\"1\",le=\"0.0005\"} 2"));
  CHECK(contains_line(text, h + "_bucket{node=\"1\",le=\"1\"} 2"));
  CHECK(contains_line(text, h + "_bucket{node=\"1\",le=\"+Inf\"} 3"));
  CHECK(contains_line(text, h + "_sum{node=\"1\"} 2.00035"));
  CHECK(contains_line(text, h + "_count{node=\"1\"} 3"));
  // Every family is prefixed and typed.
  std::size_t families = 0;
  for (std::size_t at = text.find("# TYPE "); at != std::string::npos;
       at = text.find("# TYPE ", at + 1)) {
    ++families;
    CHECK(text.compare(at, 12, "# TYPE keel_") == 0);
  }
  CHECK(families >= 25);
}

TEST_CASE("metrics: the silent default is empty and every shipped policy satisfies the concept",
          "[observe][metrics]") {
  STATIC_REQUIRE(keel::observe::metrics<keel::observe::null_metrics>);
  STATIC_REQUIRE(keel::observe::metrics<prometheus_metrics>);
  STATIC_REQUIRE(std::is_empty_v<keel::observe::null_metrics>);
  STATIC_REQUIRE(keel::observe::is_silent<keel::observe::null_metrics>);
  STATIC_REQUIRE_FALSE(keel::observe::is_silent<prometheus_metrics>);
  STATIC_REQUIRE_FALSE(keel::observe::null_metrics::timed);
  STATIC_REQUIRE(keel::observe::policy_bundle<prometheus_observe>);
}

TEST_CASE("metrics: a three-node cluster's gauges and counters agree with its status",
          "[observe][metrics]") {
  cluster c = make_cluster(5);
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  constexpr int writes = 12;
  for (int i = 0; i < writes; ++i) c.write("t" + std::to_string(i));
  // A barrier, then every replica has applied what the leader committed.
  auto barrier = leader->read_barrier();
  REQUIRE(barrier);
  for (int i = 0; i < 50 && !(*barrier)->done; ++i) c.step();
  REQUIRE((*barrier)->done);
  for (int i = 0; i < 5; ++i) c.step();
  const auto lst = leader->status();
  const auto lv = c.metrics(leader->id()).read();
  CHECK(lv.proposals >= writes);
  CHECK(lv.proposals_failed == 0);
  CHECK(lv.is_leader);
  CHECK(lv.leader == leader->id());
  CHECK(lv.leader_changes >= 1);
  for (node_id id : {1, 2, 3}) {
    INFO("node " << id);
    const auto st = c.at(id).status();
    const auto v = c.metrics(id).read();
    CHECK(v.term == st.term);
    CHECK(v.commit == st.commit);
    CHECK(v.applied == st.applied);
    CHECK(v.commit == lst.commit);
    CHECK(v.leader == leader->id());
    CHECK(v.wal_syncs > 0);
    CHECK(v.wal_bytes > 0);
    const std::string text = c.metrics(id).render();
    const std::string n = "{node=\"" + std::to_string(id) + "\"}";
    CHECK(contains_line(text, "keel_raft_apply_lag" + n + " 0"));
    CHECK(contains_line(text, "keel_raft_term" + n + " " + std::to_string(st.term)));
    CHECK(contains_line(text, "keel_raft_commit_index" + n + " " + std::to_string(st.commit)));
    CHECK(contains_line(text, "keel_raft_has_leader" + n + " 1"));
    CHECK(contains_line(text, "keel_node_stopped" + n + " 0"));
  }
  // Messages went both ways, counted by type.
  const std::string text = c.metrics(leader->id()).render();
  CHECK(text.find("keel_messages_sent_total{node=\"" + std::to_string(leader->id()) +
                  "\",type=\"app\"} 0") == std::string::npos);
  CHECK(text.find("type=\"app_resp\"}") != std::string::npos);
  // A follower's refused write counts as a failed proposal only when it
  // reached the log: not_leader is answered before.
  auto refused = c.follower()->propose([](auto& tx) {
    keel::test::plain::task t;
    t.id = "x";
    return tx.create(t);
  });
  CHECK(refused.error() == keel::errc::not_leader);
}

TEST_CASE("metrics: snapshots saved, sent and installed move their counters",
          "[observe][metrics]") {
  cluster c = make_cluster(37, {.snapshot_interval = 20, .snapshot_keep_entries = 5});
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  c.write("first");
  for (int i = 0; i < 5; ++i) c.step();
  const node_id lagging = c.follower()->id();
  c.network().isolate(lagging);
  for (int i = 0; i < 60; ++i) c.write("t" + std::to_string(i));
  const auto lv = c.metrics(leader->id()).read();
  CHECK(lv.snapshots_saved >= 2);
  CHECK(lv.snapshot_index >= 40);
  CHECK(c.metrics(lagging).read().snapshots_installed == 0);
  c.network().heal();
  const auto commit = leader->status().commit;
  for (int i = 0; i < 100 && c.at(lagging).applied_index() < commit; ++i) c.step();
  REQUIRE(c.at(lagging).applied_index() >= commit);
  const auto after = c.metrics(leader->id()).read();
  CHECK(after.snapshots_sent >= 1);
  CHECK(after.snapshot_sent_bytes > 0);
  const auto lagged = c.metrics(lagging).read();
  CHECK(lagged.snapshots_installed == 1);
  CHECK(lagged.snapshot_index >= 40);
  const std::string text = c.metrics(lagging).render();
  CHECK(text.find("keel_snapshot_installed_bytes_total{node=\"" + std::to_string(lagging) +
                  "\"} 0\n") == std::string::npos);
}

TEST_CASE("metrics: watch queue depths are sampled each tick", "[observe][metrics]") {
  cluster c = make_cluster(9);
  auto* leader = c.wait_for_leader();
  REQUIRE(leader != nullptr);
  auto unread = leader->store().watch([](const auto&) { return true; }, 100);
  auto drained = leader->store().watch([](const auto&) { return true; }, 100);
  for (int i = 0; i < 3; ++i) c.write("t" + std::to_string(i));
  while (drained.try_next()) {
  }
  leader->tick();
  auto v = c.metrics(leader->id()).read();
  CHECK(v.watches == 2);
  CHECK(v.watch_queued == 3);
  const std::string n = "{node=\"" + std::to_string(leader->id()) + "\"}";
  CHECK(contains_line(c.metrics(leader->id()).render(), "keel_watch_queue_max_depth" + n + " 3"));
  unread = {};
  leader->tick();
  v = c.metrics(leader->id()).read();
  CHECK(v.watches == 1);
  CHECK(v.watch_queued == 0);
}

TEST_CASE("metrics: a runner reports to the application's metrics object", "[observe][metrics]") {
  using runner_type = keel::node::basic_runner<prometheus_observe, keel::node::steady_clock,
                                               keel::sim::disk_file_system,
                                               keel::transport::endpoint, keel::test::plain::task>;
  keel::transport::in_process_network network(3);
  keel::sim::disk disk;
  prometheus_metrics m({{"node", "1"}});
  auto r = runner_type::start(
      disk.file_system(), {.id = 1, .members = {1}, .data_dir = "/data", .election_tick = 2},
      {.metrics = &m, .log = nullptr},
      [&](keel::transport::handler h) { return network.connect(1, std::move(h)); },
      {.tick_interval = 1ms});
  REQUIRE(r);
  std::uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    keel::result<std::uint64_t> v = keel::errc::not_leader;
    // A single voter elects itself within a few ticks.
    for (int attempt = 0; attempt < 100000 && !v; ++attempt) {
      v = (*r)->update(
          [&](auto& tx) {
            keel::test::plain::task t;
            t.id = "t" + std::to_string(i);
            return tx.create(t);
          },
          5s);
      if (!v)
        REQUIRE((v.error() == keel::errc::not_leader || v.error() == keel::errc::leader_not_ready));
    }
    REQUIRE(v);
    last = *v;
  }
  CHECK(&(*r)->metrics() == &m);
  keel::observe::prometheus_metrics::values seen;
  keel::node::node_status st;
  REQUIRE_FALSE((*r)->call(
      [&](auto& rep) {
        st = rep.status();
        seen = rep.metrics().read();
      },
      5s));
  CHECK(seen.proposals >= 5);
  CHECK(seen.applied >= last);
  CHECK(seen.applied == st.applied);
  CHECK(seen.commit == st.commit);
  CHECK(seen.term == st.term);
  CHECK(seen.wal_syncs > 0);
  network.disconnect(1);
  (*r)->stop();
}

TEST_CASE("metrics: a stateful policy without its object is refused", "[observe][metrics]") {
  keel::sim::disk disk;
  keel::transport::in_process_network network(1);
  using replica_type = cluster::replica_type;
  auto r = replica_type::open(
      disk.file_system(), {.id = 1, .members = {1}, .data_dir = "/data"},
      [&](keel::transport::handler h) { return network.connect(1, std::move(h)); });
  CHECK(r.error() == keel::errc::invalid_argument);
}

TEST_CASE("prometheus text: a histogram from an inconsistent snapshot is still cumulative",
          "[observe][metrics]") {
  // A scrape between a bucket's store and the count's sees the buckets
  // ahead of the count: +Inf and _count are clamped to the buckets' sum.
  std::string out;
  keel::observe::prometheus_text w(out);
  const std::array<double, 2> bounds{0.5, 1.0};
  const std::array<std::uint64_t, 2> counts{2, 3};
  w.histogram("keel_h", "H.", bounds, counts, 1.0, 4);
  CHECK(out.find("keel_h_bucket{le=\"0.5\"} 2\n") != std::string::npos);
  CHECK(out.find("keel_h_bucket{le=\"1\"} 5\n") != std::string::npos);
  CHECK(out.find("keel_h_bucket{le=\"+Inf\"} 5\n") != std::string::npos);
  CHECK(out.find("keel_h_count 5\n") != std::string::npos);
}
