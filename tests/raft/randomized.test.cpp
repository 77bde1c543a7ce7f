// Randomized runs of the Raft core on the test network: for each seed, a
// cluster goes through random message loss, duplication and reordering,
// partitions that come and go, node restarts, ticks and proposals, and after
// every step the safety checker (network.hpp) verifies election safety,
// leader append-only, log matching, leader completeness and state machine
// safety. At the end the network heals, and the cluster must elect a leader
// and commit a last proposal on every node (liveness).
//
// Every run is a function of its seed. A failure prints the seed and the
// last steps; replay one seed with KEEL_SEED=<seed>, e.g.
//   KEEL_SEED=1234 ./keel_raft_tests "[randomized]"
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "network.hpp"

namespace {

using namespace keel::test;

// The seeds to run: 1..count, or only the one in KEEL_SEED.
std::vector<std::uint64_t> seeds(std::uint64_t count) {
  if (const char* s = std::getenv("KEEL_SEED"); s != nullptr && *s != '\0') {
    return {std::strtoull(s, nullptr, 10)};
  }
  std::vector<std::uint64_t> out;
  for (std::uint64_t seed = 1; seed <= count; ++seed) out.push_back(seed);
  return out;
}

struct run_options {
  std::vector<node_id> ids;
  int steps = 1500;
  /// Flow-control windows to draw from (max_inflight_msgs).
  std::vector<std::size_t> windows{256};
};

// One randomized run; reports the first violation through Catch.
class chaos_run {
 public:
  chaos_run(std::uint64_t seed, const run_options& o)
      : seed_(seed),
        rng_(seed * 0x9e3779b97f4a7c15ULL + 1),
        options_(o),
        net_(o.ids, seed, draw_config()) {}

  /// What a run went through, so a test can tell that its runs did real work.
  struct summary {
    std::size_t terms_with_leader = 0;
    std::size_t committed = 0;
    int proposals = 0;
    int restarts = 0;
    int partitions = 0;
  };

  summary play() {
    for (int step = 0; step < options_.steps; ++step) {
      act();
      verify();
    }
    const std::size_t committed_before_settling = safety_.committed_count();
    settle();
    return {safety_.terms_with_leader(), committed_before_settling, proposals_, restarts_,
            partitions_};
  }

 private:
  config draw_config() {
    config c = network::default_config();
    const int election_ticks[] = {3, 5, 10};
    c.election_tick = election_ticks[rng_() % 3];
    c.pre_vote = rng_() % 2 == 0;
    c.check_quorum = rng_() % 2 == 0;
    c.max_inflight_msgs = options_.windows[rng_() % options_.windows.size()];
    trace("config election_tick=" + std::to_string(c.election_tick) + " pre_vote=" +
          std::to_string(c.pre_vote) + " check_quorum=" + std::to_string(c.check_quorum) +
          " max_inflight_msgs=" + std::to_string(c.max_inflight_msgs));
    return c;
  }

  node_id any_node() { return options_.ids[rng_() % options_.ids.size()]; }
  double one_of(std::initializer_list<double> ps) { return *(ps.begin() + rng_() % ps.size()); }

  void act() {
    const auto roll = rng_() % 1000;
    if (roll < 350) {
      const auto n = 1 + rng_() % 10;
      trace("deliver " + std::to_string(n));
      for (std::uint64_t i = 0; i < n && net_.deliver_one(); ++i) {
        // Leaders can come and go within one step: look after each delivery.
        if (auto v = safety_.check_election_safety(net_); !v.empty()) fail(v);
      }
    } else if (roll < 600) {
      const node_id id = any_node();
      trace("tick " + std::to_string(id));
      net_.tick(id);
    } else if (roll < 750) {
      trace("tick all");
      net_.tick_all();
    } else if (roll < 900) {
      const node_id lead = net_.leader();
      const node_id at = lead != no_node && rng_() % 3 != 0 ? lead : any_node();
      const std::string data = "s" + std::to_string(seed_) + "-" + std::to_string(proposals_++);
      trace("propose " + data + " at " + std::to_string(at));
      (void)net_.node(at).propose(data);
      net_.process(at);
    } else if (roll < 925) {
      partition();
    } else if (roll < 950) {
      trace("heal");
      net_.heal();
    } else if (roll < 965) {
      const node_id id = any_node();
      trace("restart " + std::to_string(id));
      net_.restart(id);
      ++restarts_;
    } else if (roll < 980) {
      const double p = one_of({0, 0.05, 0.2, 0.5});
      trace("loss " + std::to_string(p));
      net_.set_loss(p);
    } else if (roll < 990) {
      const double p = one_of({0, 0.05, 0.2});
      trace("duplication " + std::to_string(p));
      net_.set_duplication(p);
    } else {
      reorder_ = !reorder_;
      trace(std::string("reorder ") + (reorder_ ? "on" : "off"));
      net_.set_reorder(reorder_);
    }
  }

  // Splits the cluster in two sides (the smaller one may be a single node)
  // and cuts every link across.
  void partition() {
    std::vector<node_id> ids = options_.ids;
    std::shuffle(ids.begin(), ids.end(), rng_);
    const std::size_t k = 1 + rng_() % (ids.size() / 2);
    std::string side;
    net_.heal();
    for (std::size_t i = 0; i < k; ++i) {
      side += std::to_string(ids[i]) + " ";
      for (std::size_t j = k; j < ids.size(); ++j) net_.cut(ids[i], ids[j]);
    }
    trace("partition {" + side + "} from the rest");
    ++partitions_;
  }

  void verify() {
    if (auto v = safety_.check(net_); !v.empty()) fail(v);
  }

  // Heals everything and requires a leader and a last proposal applied everywhere.
  void settle() {
    trace("heal all and settle");
    net_.recover();
    const std::string last = "final-" + std::to_string(seed_);
    auto applied_everywhere = [&] {
      for (node_id id : options_.ids) {
        const auto data = net_.applied_data(id);
        if (std::find(data.begin(), data.end(), last) == data.end()) return false;
      }
      return true;
    };
    int since_proposal = -1;
    for (int round = 0; round < 300 && !applied_everywhere(); ++round) {
      net_.tick_all();
      net_.stabilize();
      verify();
      const node_id lead = net_.leader();
      if (lead != no_node && (since_proposal < 0 || since_proposal > 40)) {
        // Propose (again, if an earlier attempt was lost with its leader).
        if (!net_.node(lead).propose(last)) {
          net_.process(lead);
          net_.stabilize();
          verify();
          since_proposal = 0;
        }
      } else if (since_proposal >= 0) {
        ++since_proposal;
      }
    }
    if (net_.leader() == no_node) fail("liveness: no leader after healing the network");
    if (!applied_everywhere()) {
      std::ostringstream out;
      out << "liveness: \"" << last << "\" is not applied everywhere after healing:";
      for (node_id id : options_.ids) {
        const auto& c = net_.core_of(id);
        out << "\n  node " << id << ": " << to_string(c.state()) << " term " << c.term() << " last "
            << c.log().last_index() << " commit " << c.log().committed();
        if (c.state() == state_type::leader) {
          for (const auto& [peer, pr] : c.tracker().progress) {
            out << "\n    progress " << peer << ": " << to_string(pr.state) << " match " << pr.match
                << " next " << pr.next << " inflight " << pr.inflights.count()
                << (pr.is_paused() ? " paused" : "");
          }
        }
      }
      fail(out.str());
    }
  }

  void trace(std::string line) {
    recent_.push_back(std::move(line));
    if (recent_.size() > 25) recent_.pop_front();
  }

  [[noreturn]] void fail(const std::string& what) {
    std::ostringstream out;
    out << what << "\nreplay with KEEL_SEED=" << seed_ << "; the last steps were:";
    for (const auto& line : recent_) out << "\n  " << line;
    FAIL(out.str());
    std::abort();  // Not reached: FAIL throws.
  }

  std::uint64_t seed_;
  std::mt19937_64 rng_;
  run_options options_;
  std::deque<std::string> recent_;
  network net_;
  safety_checker safety_;
  int proposals_ = 0;
  int restarts_ = 0;
  int partitions_ = 0;
  bool reorder_ = false;
};

// Runs every seed and checks that, together, the runs saw many elections,
// commits, restarts and partitions, so that no change to the harness can make
// them vacuous.
void run_seeds(std::uint64_t count, const run_options& options) {
  chaos_run::summary total;
  const auto all = seeds(count);
  for (std::uint64_t seed : all) {
    CAPTURE(seed);
    const auto s = chaos_run(seed, options).play();
    total.terms_with_leader += s.terms_with_leader;
    total.committed += s.committed;
    total.proposals += s.proposals;
    total.restarts += s.restarts;
    total.partitions += s.partitions;
  }
  // A replayed seed alone says nothing about coverage.
  if (all.size() < 20) return;
  const auto runs = static_cast<int>(all.size());
  CAPTURE(runs, total.terms_with_leader, total.committed, total.proposals, total.restarts,
          total.partitions);
  CHECK(total.terms_with_leader >= 4 * all.size());
  CHECK(total.committed >= 25 * all.size());
  CHECK(total.restarts >= 10 * runs);
  CHECK(total.partitions >= 20 * runs);
}

TEST_CASE("three-node clusters stay safe and live under random faults", "[raft][randomized]") {
  run_seeds(200, {.ids = {1, 2, 3}});
}

TEST_CASE("five-node clusters stay safe and live under random faults", "[raft][randomized]") {
  run_seeds(100, {.ids = {1, 2, 3, 4, 5}});
}

TEST_CASE("clusters with a flow-control window of one or two appends stay live",
          "[raft][randomized]") {
  run_seeds(60, {.ids = {1, 2, 3}, .windows = {1, 2}});
}

}  // namespace
