// The whole-cluster simulation: a seed replays its run exactly; with read
// barriers a range of seeds under faults stays linearizable and converges to
// identical stores; the deliberately broken read path (stale_reads) is
// caught by the checker.
//
// The hidden case "[.sweep]" runs the seeds given by the environment,
// KEEL_SIM_SEEDS (how many) from KEEL_SIM_FIRST_SEED (default 1), printing
// one line per failure and a summary; scripts/sim.sh drives it.
// KEEL_SIM_STALE_READS=1 turns on the broken read path, to see a failure;
// KEEL_SIM_MEMBERSHIP=0 leaves voter replacements out of the faults.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "keel/sim/cluster.hpp"

using keel::sim::cluster_options;
using keel::sim::options_for_seed;
using keel::sim::run_report;
using keel::sim::simulate;

namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

TEST_CASE("cluster: one seed replays one run exactly", "[sim][cluster]") {
  const cluster_options opts = options_for_seed(42);
  keel::sim::cluster a(opts);
  keel::sim::cluster b(opts);
  const run_report ra = a.run();
  const run_report rb = b.run();
  CHECK(ra.summary() == rb.summary());
  CHECK(ra.events == rb.events);
  const auto ha = a.recorded().operations();
  const auto hb = b.recorded().operations();
  REQUIRE(ha.size() == hb.size());
  for (std::size_t i = 0; i < ha.size(); ++i) {
    CHECK(keel::sim::describe(ha[i]) == keel::sim::describe(hb[i]));
  }
}

TEST_CASE("cluster: without faults every operation gets its outcome", "[sim][cluster]") {
  cluster_options opts = options_for_seed(7);
  opts.faults = false;
  const run_report r = simulate(opts);
  INFO(r.details());
  REQUIRE(r.ok());
  CHECK(r.stats.unknown == 0);
  CHECK(r.stats.operations >= opts.operations / 2);
}

TEST_CASE("cluster: with read barriers, faulty runs stay linearizable and converge",
          "[sim][cluster]") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const run_report r = simulate(options_for_seed(seed));
    INFO(r.details());
    CHECK(r.ok());
  }
}

TEST_CASE("cluster: stale reads from followers are caught by the checker", "[sim][cluster]") {
  int caught = 0;
  for (std::uint64_t seed = 1; seed <= 30 && caught == 0; ++seed) {
    cluster_options opts = options_for_seed(seed);
    opts.stale_reads = true;
    const run_report r = simulate(opts);
    if (r.ok()) continue;
    INFO(r.details());
    CHECK(r.check.outcome == keel::sim::verdict::not_linearizable);
    ++caught;
  }
  CHECK(caught > 0);
}

TEST_CASE("cluster: voters replaced under faults, runs stay linearizable and converge",
          "[sim][cluster]") {
  std::uint64_t replacements = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    cluster_options opts = options_for_seed(seed);
    opts.membership = true;
    const run_report r = simulate(opts);
    INFO(r.details());
    CHECK(r.ok());
    replacements += r.stats.replacements;
  }
  // The runs did replace members: removed ones shut down, new ones promoted.
  CHECK(replacements >= 10);
}

TEST_CASE("cluster: with a fixed membership, faulty runs stay linearizable and converge",
          "[sim][cluster]") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    cluster_options opts = options_for_seed(seed);
    opts.membership = false;
    const run_report r = simulate(opts);
    INFO(r.details());
    CHECK(r.ok());
    CHECK(r.stats.replacements == 0);
  }
}

TEST_CASE("cluster: the seeds of KEEL_SIM_SEEDS from KEEL_SIM_FIRST_SEED", "[.sweep]") {
  const std::uint64_t count = env_or("KEEL_SIM_SEEDS", 0);
  const std::uint64_t first = env_or("KEEL_SIM_FIRST_SEED", 1);
  std::vector<std::uint64_t> failed;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    cluster_options opts = options_for_seed(seed);
    opts.stale_reads = env_or("KEEL_SIM_STALE_READS", 0) != 0;
    opts.membership = env_or("KEEL_SIM_MEMBERSHIP", 1) != 0;
    const run_report r = simulate(opts);
    if (count == 1 && r.ok()) {
      // A replay tells its story (a failure prints it below).
      std::cout << r.summary() << "\nevents:\n";
      for (const std::string& e : r.events) std::cout << "  " << e << "\n";
    }
    if (!r.ok()) {
      failed.push_back(seed);
      std::cout << "keel-sim: FAILED " << r.details() << std::flush;
    }
  }
  std::cout << "keel-sim: seeds " << first << ".." << first + count - 1 << ": "
            << count - failed.size() << " passed, " << failed.size() << " failed";
  for (const std::uint64_t s : failed) std::cout << " " << s;
  std::cout << "\n";
  CHECK(failed.empty());
}
