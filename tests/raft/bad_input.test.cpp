// Input from the network and from disk is never a precondition (STYLE.md
// "Errors"): raw_node::step answers every malformed, local-only, misaddressed
// or foreign message with an error and changes nothing, raw_node::create
// refuses a bad config or an inconsistent stored state, and random messages
// fed to a node in every role never crash it or break its invariants.
//
// Cases that have crashed the core run in a child process (like GoogleTest's
// death tests), so a crash fails that test case instead of the whole run.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../support/child_process.hpp"
#include "keel/errc.hpp"
#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"
#include "network.hpp"

namespace {

using namespace keel::raft;
using keel::errc;
using node_type = raw_node<memory_storage>;
using keel::test::run_isolated;
using keel::test::shared_page;
using keel::test::write_shared;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

// ---- describing messages ---------------------------------------------------------

std::string describe(const message& m) {
  std::ostringstream s;
  s << "{type " << static_cast<int>(m.type) << " (" << to_string(m.type) << "), to " << m.to
    << ", from " << m.from << ", term " << m.term << ", log_term " << m.log_term << ", index "
    << m.index << ", commit " << m.commit << ", reject " << m.reject << ", hint " << m.reject_hint
    << ", context \"" << m.context << "\", entries [";
  for (const entry& e : m.entries) {
    s << " (" << e.index << "," << e.term << ",type " << static_cast<int>(e.type) << ","
      << e.data.size() << "B)";
  }
  s << " ]";
  if (m.snapshot) {
    const auto& md = m.snapshot->metadata;
    s << ", snapshot (" << md.index << "," << md.term << ", voters";
    for (node_id id : md.conf.voters) s << " " << id;
    s << ", outgoing";
    for (node_id id : md.conf.voters_outgoing) s << " " << id;
    s << ", learners";
    for (node_id id : md.conf.learners) s << " " << id;
    s << ", next";
    for (node_id id : md.conf.learners_next) s << " " << id;
    s << ")";
  }
  s << "}";
  return s.str();
}

// ---- a 3-voter node over memory storage ----------------------------------------------

/// What a rejected message must leave untouched.
struct observed {
  std::uint64_t term = 0;
  node_id vote = no_node;
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  std::uint64_t last_index = 0;
  node_id lead = no_node;
  state_type state = state_type::follower;
  bool has_ready = false;

  friend bool operator==(const observed&, const observed&) = default;
  friend std::ostream& operator<<(std::ostream& os, const observed& o) {
    return os << "{term " << o.term << ", vote " << o.vote << ", commit " << o.commit
              << ", applied " << o.applied << ", last " << o.last_index << ", lead " << o.lead
              << ", " << to_string(o.state) << ", has_ready " << o.has_ready << "}";
  }
};

/// Node 1 of voters {1, 2, 3}: a snapshot at index 1 (term 1), entries 2 and 3
/// of term 2, hard state {term 2, vote 2, commit 2}; every ready handled.
struct three_voters {
  memory_storage storage;
  std::optional<node_type> node;

  explicit three_voters(bool with_log = true) {
    snapshot boot;
    boot.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}}};
    REQUIRE_FALSE(storage.apply_snapshot(boot));
    if (with_log) {
      REQUIRE_FALSE(storage.append({{.term = 2, .index = 2}, {.term = 2, .index = 3}}));
      storage.set_hard_state({.term = 2, .vote = 2, .commit = 2});
    }
    auto created = node_type::create(config{.id = 1}, storage);
    REQUIRE(created);
    node.emplace(std::move(*created));
    handle_readies();
  }

  /// Plays the node layer; returns the messages sent.
  std::vector<message> handle_readies() {
    std::vector<message> sent;
    for (int guard = 0; guard < 1000 && node->has_ready(); ++guard) {
      ready rd = node->ready();
      if (rd.snapshot) (void)storage.apply_snapshot(*rd.snapshot);
      if (!rd.entries.empty()) REQUIRE_FALSE(storage.append(rd.entries));
      if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
      for (message& m : rd.messages) sent.push_back(std::move(m));
      node->advance();
    }
    return sent;
  }

  observed observe() const {
    const auto& c = node->state();
    return {c.term(), c.vote(),  c.log().committed(), c.log().applied(), c.log().last_index(),
            c.lead(), c.state(), node->has_ready()};
  }
};

/// Messages that node 1 of three_voters accepts; each bad case below breaks one thing.
message heartbeat() {
  return {.type = message_type::heartbeat, .to = 1, .from = 2, .term = 2, .commit = 2};
}
message append() {
  return {.type = message_type::app,
          .to = 1,
          .from = 2,
          .term = 2,
          .log_term = 2,
          .index = 3,
          .entries = {{.term = 2, .index = 4, .data = "x"}},
          .commit = 2};
}
message vote() {
  return {.type = message_type::vote, .to = 1, .from = 3, .term = 3, .log_term = 2, .index = 3};
}
message append_response() {
  return {.type = message_type::app_resp, .to = 1, .from = 2, .term = 2, .index = 3};
}
message snapshot_message() {
  message m{.type = message_type::snap, .to = 1, .from = 2, .term = 2};
  m.snapshot = snapshot{.metadata = {.index = 5, .term = 2, .conf = {.voters = {1, 2, 3}}}};
  return m;
}
message read_index_response() {
  return {.type = message_type::read_index_resp,
          .to = 1,
          .from = 2,
          .term = 2,
          .index = 3,
          .entries = {{.data = "ctx"}}};
}

/// Steps m into a fresh node and checks the error and that nothing changed.
void check_rejected(const message& m, errc want) {
  three_voters n;
  const observed before = n.observe();
  INFO("message " << describe(m));
  const std::error_code ec = n.node->step(m);
  CHECK(ec == want);
  if (ec != want) return;  // Accepted: the changes that follow say nothing new.
  CHECK(n.observe() == before);
  CHECK_FALSE(n.node->has_ready());
  CHECK(n.handle_readies().empty());
}

}  // namespace

// ---- the baseline ---------------------------------------------------------------------

TEST_CASE("the baseline messages of these tests are accepted") {
  for (const message& m : {heartbeat(), append(), vote(), append_response(), snapshot_message(),
                           read_index_response()}) {
    three_voters n;
    INFO("message " << describe(m));
    CHECK_FALSE(n.node->step(m));
  }
}

// ---- step: what is rejected ---------------------------------------------------------------

TEST_CASE("a message of an unknown type is rejected") {
  for (int type : {message_type_count, 100, 200, 255}) {
    message m = heartbeat();
    m.type = static_cast<message_type>(type);
    INFO("type " << type);
    check_rejected(m, errc::unknown_message_type);
  }
}

TEST_CASE("a local-only message from the network is rejected") {
  for (message_type t : {message_type::hup, message_type::beat, message_type::unreachable,
                         message_type::snap_status, message_type::check_quorum}) {
    message m = heartbeat();
    m.type = t;
    check_rejected(m, errc::local_message);
  }
}

TEST_CASE("a message without a sender is rejected") {
  for (message m : {heartbeat(), append(), vote(), snapshot_message()}) {
    m.from = no_node;
    check_rejected(m, errc::invalid_message);
  }
}

TEST_CASE("a message addressed to another node is rejected") {
  for (node_id to : {node_id{0}, node_id{2}, node_id{9}, max_u64}) {
    message m = append();
    m.to = to;
    check_rejected(m, errc::message_to_other_node);
  }
}

TEST_CASE("a protocol message with term 0 is rejected") {
  for (message m : {heartbeat(), append(), vote(), append_response(), snapshot_message(),
                    read_index_response()}) {
    m.term = 0;
    m.log_term = 0;
    for (entry& e : m.entries) e.term = 0;
    if (m.snapshot) m.snapshot->metadata.term = 0;
    check_rejected(m, errc::invalid_message);
  }
  for (message_type t : {message_type::pre_vote, message_type::timeout_now,
                         message_type::transfer_leader, message_type::heartbeat_resp}) {
    message m{.type = t, .to = 1, .from = 2, .term = 0};
    check_rejected(m, errc::invalid_message);
  }
}

TEST_CASE("a response from a node outside the configuration is rejected") {
  for (message_type t : {message_type::app_resp, message_type::heartbeat_resp,
                         message_type::vote_resp, message_type::pre_vote_resp}) {
    message m{.type = t, .to = 1, .from = 9, .term = 2};
    check_rejected(m, errc::message_from_non_member);
  }
  message m = read_index_response();
  m.from = 9;
  check_rejected(m, errc::message_from_non_member);
}

TEST_CASE("a proposal without entries is rejected") {
  check_rejected({.type = message_type::prop, .to = 1, .from = 2}, errc::invalid_message);
}

TEST_CASE("an append whose entry indexes are not contiguous is rejected") {
  const std::vector<std::vector<std::uint64_t>> cases = {
      {5},     // Does not follow index 3.
      {3},     // Goes back.
      {4, 6},  // A gap.
      {4, 4},  // A repeat.
      {4, 5, 4},
  };
  for (const auto& indexes : cases) {
    message m = append();
    m.entries.clear();
    for (std::uint64_t i : indexes) m.entries.push_back({.term = 2, .index = i});
    INFO("entries " << indexes.size());
    check_rejected(m, errc::index_out_of_range);
  }
}

TEST_CASE("an append whose entry indexes would overflow is rejected") {
  message m = append();
  m.index = max_u64 - 1;
  m.entries = {{.term = 2, .index = max_u64}, {.term = 2, .index = 0}};
  check_rejected(m, errc::index_out_of_range);
  m.index = max_u64;
  m.entries = {{.term = 2, .index = 0}};
  check_rejected(m, errc::index_out_of_range);
}

TEST_CASE("an append carrying an entry of a term above the message term is rejected") {
  message m = append();
  m.entries = {{.term = 3, .index = 4}};
  check_rejected(m, errc::invalid_message);
}

TEST_CASE("an append whose entry terms go backwards or are zero is rejected") {
  message m = append();
  m.entries = {{.term = 2, .index = 4}, {.term = 1, .index = 5}};
  check_rejected(m, errc::invalid_message);
  m.entries = {{.term = 1, .index = 4}};  // Below the log term of its predecessor.
  check_rejected(m, errc::invalid_message);
  m.log_term = 0;
  m.index = 0;
  m.entries = {{.term = 0, .index = 1}};
  check_rejected(m, errc::invalid_message);
}

TEST_CASE("a log term above the message term is rejected") {
  message a = append();
  a.log_term = 3;
  check_rejected(a, errc::invalid_message);
  message v = vote();
  v.log_term = 4;
  check_rejected(v, errc::invalid_message);
  v.type = message_type::pre_vote;
  check_rejected(v, errc::invalid_message);
}

TEST_CASE("a snapshot message without a snapshot is rejected") {
  message m = snapshot_message();
  m.snapshot.reset();
  check_rejected(m, errc::invalid_message);
}

TEST_CASE("a snapshot message with a snapshot at index 0 is rejected") {
  message m = snapshot_message();
  m.snapshot->metadata.index = 0;
  check_rejected(m, errc::invalid_message);
}

TEST_CASE("a snapshot message with a snapshot of term 0 or above the message term is rejected") {
  message m = snapshot_message();
  m.snapshot->metadata.term = 0;
  check_rejected(m, errc::invalid_message);
  m.snapshot->metadata.term = 3;
  check_rejected(m, errc::invalid_message);
}

TEST_CASE("a read request or answer without exactly one context entry is rejected") {
  for (std::size_t n : {0, 2}) {
    message r{.type = message_type::read_index, .to = 1, .from = 2, .term = 2};
    message a = read_index_response();
    r.entries.assign(n, entry{.data = "ctx"});
    a.entries.assign(n, entry{.data = "ctx"});
    INFO("entries " << n);
    check_rejected(r, errc::invalid_message);
    check_rejected(a, errc::invalid_message);
  }
}

TEST_CASE("a heartbeat carrying entries is rejected") {
  message m = heartbeat();
  m.entries = {{.term = 2, .index = 4}};
  check_rejected(m, errc::invalid_message);
}

TEST_CASE("a message carrying a payload its type never carries is rejected") {
  const std::vector<entry> ents = {{.term = 2, .index = 4}};
  const snapshot snap{.metadata = {.index = 5, .term = 2, .conf = {.voters = {1, 2, 3}}}};
  std::vector<message> cases;
  cases.push_back(heartbeat());
  cases.back().snapshot = snap;
  cases.push_back(append_response());
  cases.back().entries = ents;
  cases.push_back(vote());
  cases.back().entries = ents;
  cases.push_back(vote());
  cases.back().snapshot = snap;
  cases.push_back(vote());
  cases.back().type = message_type::pre_vote;
  cases.back().entries = ents;
  cases.push_back(append());
  cases.back().snapshot = snap;
  cases.push_back(snapshot_message());
  cases.back().entries = ents;
  for (const message& m : cases) check_rejected(m, errc::invalid_message);
}

TEST_CASE("an entry of an unknown type is rejected") {
  for (int type : {2, 7, 255}) {
    message m = append();
    m.entries.front().type = static_cast<entry_type>(type);
    INFO("entry type " << type);
    check_rejected(m, errc::invalid_message);
    message p{.type = message_type::prop, .to = 1, .from = 2, .entries = m.entries};
    check_rejected(p, errc::invalid_message);
  }
}

// ---- step: hostile values that are well-formed ----------------------------------------------

TEST_CASE("a node at term 0 refusing a pre-vote answers with a valid message") {
  // A fresh node (no hard state yet) asked for a pre-vote by a candidate whose
  // log is behind must refuse; the refusal must carry a term (raft.hpp
  // handle_vote_request sends term_, which is 0 here, and send() asserts).
  const std::string outcome = run_isolated([](shared_page*) -> std::string {
    three_voters n(false);
    if (n.node->state().term() != 0) return "setup: expected term 0";
    const message m{.type = message_type::pre_vote, .to = 1, .from = 2, .term = 5, .index = 0};
    if (auto ec = n.node->step(m)) return "step failed: " + ec.message();
    for (const message& out : n.handle_readies()) {
      if (out.type == message_type::pre_vote_resp && (!out.reject || out.term == 0)) {
        return "bad answer " + describe(out);
      }
    }
    return "";
  });
  CHECK(outcome == "");
}

TEST_CASE("a term at the largest value never makes the node's term wrap around") {
  // After a heartbeat at term 2^64 - 1, an election timeout would campaign at
  // term_ + 1 == 0 (raft.hpp campaign).
  const std::string outcome = run_isolated([](shared_page*) -> std::string {
    three_voters n;
    message m = heartbeat();
    m.term = max_u64;
    (void)n.node->step(m);
    n.handle_readies();
    std::uint64_t term = n.node->state().term();
    for (int i = 0; i < 100; ++i) {
      n.node->tick();
      for (const message& out : n.handle_readies()) {
        if (out.term == 0 && out.type != message_type::prop &&
            out.type != message_type::read_index) {
          return "sent a message of term 0: " + describe(out);
        }
      }
      if (n.node->state().term() < term) return "term went backwards";
      term = n.node->state().term();
    }
    return "";
  });
  CHECK(outcome == "");
}

TEST_CASE("a snapshot at the largest index is rejected") {
  // Installing it makes the log's first index wrap to 0, and a node that then
  // leads appends its no-op at index 0: last index < commit, and has_ready
  // never goes false (raft_log::restore, unstable::restore offset_ = index + 1).
  three_voters n;
  message m = snapshot_message();
  m.snapshot->metadata.index = max_u64;
  const observed before = n.observe();
  CHECK(n.node->step(m) == errc::index_out_of_range);
  CHECK(n.observe() == before);
}

// ---- create ---------------------------------------------------------------------------------

TEST_CASE("create rejects node id 0") {
  memory_storage storage;
  CHECK(node_type::create(config{.id = 0}, storage).error() == errc::invalid_argument);
}

TEST_CASE("create rejects a heartbeat interval not shorter than the election timeout") {
  memory_storage storage;
  const std::vector<std::pair<int, int>> cases = {{10, 10}, {5, 10}, {1, 1}, {10, 0}, {10, -1}};
  for (auto [election, heartbeat_ticks] : cases) {
    INFO("election " << election << " heartbeat " << heartbeat_ticks);
    config c{.id = 1, .election_tick = election, .heartbeat_tick = heartbeat_ticks};
    CHECK(node_type::create(c, storage).error() == errc::invalid_argument);
  }
}

TEST_CASE("create rejects lease-based reads without check-quorum") {
  memory_storage storage;
  config c{.id = 1, .check_quorum = false, .read_only = read_only_option::lease_based};
  CHECK(node_type::create(c, storage).error() == errc::invalid_argument);
  c.check_quorum = true;
  CHECK(node_type::create(c, storage));
}

TEST_CASE("create rejects an empty inflight window") {
  memory_storage storage;
  CHECK(node_type::create(config{.id = 1, .max_inflight_msgs = 0}, storage).error() ==
        errc::invalid_argument);
}

TEST_CASE("create rejects a stored configuration whose learner is also a voter") {
  memory_storage storage;
  snapshot snap;
  snap.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}, .learners = {3}}};
  REQUIRE_FALSE(storage.apply_snapshot(snap));
  CHECK(node_type::create(config{.id = 1}, storage).error() == errc::invalid_conf_change);
}

TEST_CASE("create rejects a stored commit index beyond the last index") {
  memory_storage storage;
  snapshot snap;
  snap.metadata = {.index = 1, .term = 1, .conf = {.voters = {1, 2, 3}}};
  REQUIRE_FALSE(storage.apply_snapshot(snap));
  REQUIRE_FALSE(storage.append({{.term = 1, .index = 2}}));
  storage.set_hard_state({.term = 1, .vote = 0, .commit = 3});
  CHECK(node_type::create(config{.id = 1}, storage).error() == errc::index_out_of_range);
  storage.set_hard_state({.term = 1, .vote = 0, .commit = 2});
  CHECK(node_type::create(config{.id = 1}, storage));
}

// ---- fuzz --------------------------------------------------------------------------------------

namespace {

using keel::test::network;

/// Random messages near a node's state, with a share of malformed and extreme ones.
class message_fuzzer {
 public:
  explicit message_fuzzer(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool chance(unsigned percent) { return below(100) < percent; }

  std::uint64_t near(std::uint64_t x, std::uint64_t spread) {
    const std::uint64_t d = below(2 * spread + 1);
    return d >= spread ? x + (d - spread) : (x >= spread - d ? x - (spread - d) : 0);
  }

  /// Values at the edges of the integer range, and plain random ones.
  std::uint64_t wild() {
    switch (below(6)) {
      case 0:
        return 0;
      case 1:
        return max_u64;
      case 2:
        return max_u64 - below(4);
      case 3:
        return std::uint64_t{1} << 63;
      case 4:
        return rng_();
      default:
        return below(1000);
    }
  }

  conf_state random_conf() {
    conf_state cs;
    auto some = [this](std::vector<node_id>& out) {
      for (node_id id = 0; id <= 5; ++id) {
        if (chance(30)) out.push_back(id);
      }
    };
    some(cs.voters);
    if (chance(30)) some(cs.voters_outgoing);
    if (chance(30)) some(cs.learners);
    if (chance(20)) some(cs.learners_next);
    cs.auto_leave = chance(20);
    return cs;
  }

  std::string random_bytes(std::size_t max_len) {
    std::string s(below(max_len + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }

  std::string conf_change_data() {
    if (chance(50)) return random_bytes(30);
    conf_change cc;
    cc.transition = static_cast<conf_change_transition>(below(3));
    for (std::uint64_t k = below(4); k > 0; --k) {
      cc.changes.push_back({static_cast<conf_change_type>(below(3)), below(6)});
    }
    return encode(cc);
  }

  message next(const core<memory_storage>& c, node_id target) {
    const auto& log = c.log();
    message m;
    m.type = static_cast<message_type>(chance(90)
                                           ? below(message_type_count)
                                           : message_type_count + below(256 - message_type_count));
    m.to = chance(92) ? target : std::vector<node_id>{0, 1, 2, 3, 9, wild()}[below(6)];
    const unsigned from_roll = static_cast<unsigned>(below(100));
    m.from = from_roll < 85   ? 1 + below(3)
             : from_roll < 90 ? 0
             : from_roll < 95 ? 4 + below(6)
                              : wild();

    const unsigned term_roll = static_cast<unsigned>(below(100));
    const std::uint64_t t = c.term();
    m.term = term_roll < 40   ? t
             : term_roll < 60 ? t + 1
             : term_roll < 70 ? t + 2 + below(4)
             : term_roll < 80 ? (t > 0 ? t - 1 : 0)
             : term_roll < 85 ? 0
             : term_roll < 95 ? below(20)
                              : wild();

    const unsigned index_roll = static_cast<unsigned>(below(100));
    m.index = index_roll < 50   ? near(log.last_index(), 3)
              : index_roll < 70 ? near(log.committed(), 3)
              : index_roll < 90 ? below(log.last_index() + 10)
                                : wild();
    const unsigned log_term_roll = static_cast<unsigned>(below(100));
    m.log_term = log_term_roll < 50   ? log.term_or_zero(m.index)
                 : log_term_roll < 80 ? below(m.term + 1)
                 : log_term_roll < 90 ? m.term + 1
                                      : wild();

    const unsigned n_roll = static_cast<unsigned>(below(100));
    const std::uint64_t n = n_roll < 60 ? 0 : n_roll < 90 ? 1 + below(3) : 4 + below(5);
    std::uint64_t term = std::max<std::uint64_t>(m.log_term, 1);
    for (std::uint64_t k = 0; k < n; ++k) {
      entry e;
      if (chance(85)) {
        if (term < m.term && chance(30)) term += 1 + below(m.term - term);
        e.term = term;
        e.index = m.index + k + 1;
        e.type = chance(15) ? entry_type::conf_change : entry_type::normal;
      } else {
        e.term = chance(50) ? below(m.term + 2) : wild();
        e.index = chance(50) ? near(m.index + k + 1, 2) : wild();
        e.type = static_cast<entry_type>(chance(50) ? below(2) : below(256));
      }
      e.data = e.type == entry_type::conf_change ? conf_change_data() : random_bytes(8);
      m.entries.push_back(std::move(e));
    }

    const unsigned commit_roll = static_cast<unsigned>(below(100));
    m.commit = commit_roll < 40   ? near(log.committed(), 2)
               : commit_roll < 70 ? near(log.last_index(), 2)
               : commit_roll < 90 ? below(log.last_index() + 5)
                                  : wild();

    if (chance(m.type == message_type::snap ? 85 : 5)) {
      snapshot s;
      const unsigned i_roll = static_cast<unsigned>(below(100));
      s.metadata.index = i_roll < 40   ? near(log.last_index(), 5)
                         : i_roll < 70 ? near(log.committed(), 3)
                         : i_roll < 90 ? log.last_index() + 1 + below(20)
                                       : wild();
      s.metadata.term = chance(80) ? 1 + below(std::max<std::uint64_t>(m.term, 1)) : wild();
      s.metadata.conf = chance(70) ? conf_state{.voters = {1, 2, 3}} : random_conf();
      s.data = random_bytes(4);
      m.snapshot = std::move(s);
    }

    m.reject = chance(30);
    m.reject_hint = chance(70)   ? near(m.index, 3)
                    : chance(50) ? below(log.last_index() + 5)
                                 : wild();
    const unsigned ctx_roll = static_cast<unsigned>(below(100));
    m.context = ctx_roll < 70   ? std::string()
                : ctx_roll < 85 ? "ctx" + std::to_string(below(4))
                : ctx_roll < 95 ? std::string(campaign_transfer)
                                : random_bytes(6);
    return m;
  }

 private:
  std::mt19937_64 rng_;
};

enum class role { fresh_follower, follower, pre_candidate, candidate, leader };

const char* to_string(role r) {
  switch (r) {
    case role::fresh_follower:
      return "fresh follower";
    case role::follower:
      return "follower";
    case role::pre_candidate:
      return "pre-candidate";
    case role::candidate:
      return "candidate";
    case role::leader:
      return "leader";
  }
  return "?";
}

/// Plays the node layer for one member like network::process, but gives up
/// (returns false) if readies never run dry.
bool process_bounded(network& net, node_id id) {
  auto& m = net.at(id);
  for (int guard = 0; guard < 1000; ++guard) {
    if (!m.node->has_ready()) return true;
    ready rd = m.node->ready();
    if (rd.snapshot) (void)m.storage->apply_snapshot(*rd.snapshot);
    if (!rd.entries.empty()) (void)m.storage->append(rd.entries);
    if (rd.hard_state) m.storage->set_hard_state(*rd.hard_state);
    for (message& msg : rd.messages) net.in_flight().push_back(std::move(msg));
    for (const entry& e : rd.committed_entries) {
      if (e.type != entry_type::conf_change) continue;
      if (auto cc = decode_conf_change(e.data)) (void)m.node->apply_conf_change(*cc);
    }
    m.node->advance();
  }
  return false;
}

/// Builds a 3-voter network in which node `target()` plays role r.
struct scenario {
  role r;
  std::uint64_t seed;
  std::unique_ptr<network> net;

  node_id target() const { return r == role::follower ? 2 : 1; }

  void build(std::uint64_t generation) {
    config base = network::default_config();
    if (r == role::candidate) base.pre_vote = false;
    net = std::make_unique<network>(std::vector<node_id>{1, 2, 3}, seed + generation, base);
    switch (r) {
      case role::fresh_follower:
        break;
      case role::follower:
      case role::leader:
        net->campaign(1);
        break;
      case role::pre_candidate:
      case role::candidate:
        net->node(1).campaign();
        (void)process_bounded(*net, 1);
        net->in_flight().clear();  // Nobody hears the campaign.
        break;
    }
  }

  bool in_role() const {
    const auto& c = net->node(target()).state();
    switch (r) {
      case role::fresh_follower:
      case role::follower:
        return c.state() == state_type::follower;
      case role::pre_candidate:
        return c.state() == state_type::pre_candidate;
      case role::candidate:
        return c.state() == state_type::candidate;
      case role::leader:
        return c.state() == state_type::leader;
    }
    return false;
  }
};

/// What must hold of a node after each input (log.hpp, raft.hpp invariants).
struct invariant_checker {
  std::uint64_t term = 0;
  node_id vote = no_node;
  std::uint64_t commit = 0;
  std::uint64_t commit_term = 0;

  void reset() { *this = {}; }

  std::string check(const node_type& node) {
    const auto& c = node.state();
    const auto& log = c.log();
    std::ostringstream why;
    if (log.applied() > log.committed()) {
      why << "applied " << log.applied() << " > committed " << log.committed();
    } else if (log.committed() > log.last_index()) {
      why << "committed " << log.committed() << " > last index " << log.last_index();
    } else if (log.first_index() - 1 > log.applied()) {
      why << "first index " << log.first_index() << " - 1 > applied " << log.applied();
    } else if (c.term() < term) {
      why << "term went back from " << term << " to " << c.term();
    } else if (c.term() == term && vote != no_node && c.vote() != vote) {
      why << "vote changed from " << vote << " to " << c.vote() << " within term " << term;
    } else if (node.has_ready()) {
      why << "has_ready after every ready was handled";
    } else if (auto t = log.term(commit); t && commit_term != 0 && *t != commit_term) {
      why << "committed entry " << commit << " changed term from " << commit_term << " to " << *t;
    }
    term = c.term();
    vote = c.vote();
    if (log.committed() != commit || commit_term == 0) {
      commit = log.committed();
      commit_term = log.term_or_zero(commit);
    }
    return why.str();
  }
};

constexpr int fuzz_messages = 10'000;

/// Feeds fuzz_messages random messages (with a tick before one in ten) to the
/// target of role r, delivering whatever the network answers, and checks the
/// invariants after each. The role is rebuilt (a new generation) when the
/// target has left it for a while. Returns "" or what went wrong.
std::string fuzz(role r, std::uint64_t seed, shared_page* page) {
  scenario sc{r, seed, nullptr};
  std::uint64_t generation = 0;
  sc.build(generation);
  message_fuzzer gen(seed);
  invariant_checker inv;
  int since_build = 0;
  for (int i = 0; i < fuzz_messages; ++i, ++since_build) {
    if (!sc.in_role() && since_build >= 100) {
      write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                   "building generation " + std::to_string(generation + 1));
      sc.build(++generation);
      inv.reset();
      since_build = 0;
    }
    network& net = *sc.net;
    const node_id target = sc.target();
    node_type& node = net.node(target);
    // Now and then the clock moves first (elections, heartbeats, check-quorum).
    const bool ticked = gen.chance(10);
    if (ticked) node.tick();
    message m = gen.next(node.state(), target);
    const std::string step_desc = (ticked ? "tick, then " : "") + describe(m);
    write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                 "message " + std::to_string(i) + " (generation " + std::to_string(generation) +
                     "): " + step_desc);
    (void)node.step(std::move(m));
    if (!process_bounded(net, target)) return step_desc + ": readies never ran dry";
    // Deliver what the target sent, and the answers, a bounded number of hops.
    for (int hop = 0; hop < 200 && !net.in_flight().empty(); ++hop) {
      message out = std::move(net.in_flight().front());
      net.in_flight().pop_front();
      const node_id to = out.to;
      if (to != 1 && to != 2 && to != 3) continue;
      const std::string hop_desc = describe(out);
      write_shared(page->breadcrumb, sizeof(page->breadcrumb),
                   "message " + std::to_string(i) + " (generation " + std::to_string(generation) +
                       "): " + step_desc + "\nthen delivering " + hop_desc);
      (void)net.node(to).step(std::move(out));
      if (!process_bounded(net, to)) {
        return step_desc + "\nthen node " + std::to_string(to) +
               " never ran out of readies after " + hop_desc;
      }
    }
    net.in_flight().clear();
    if (auto broken = inv.check(net.node(target)); !broken.empty()) {
      return "message " + std::to_string(i) + " (generation " + std::to_string(generation) + ") " +
             step_desc + ": " + broken;
    }
  }
  return "";
}

void run_fuzz(role r, std::uint64_t seed) {
  INFO("role " << to_string(r) << ", seed " << seed << ", " << fuzz_messages << " messages");
  const std::string outcome = run_isolated([&](shared_page* page) { return fuzz(r, seed, page); });
  CHECK(outcome == "");
}

}  // namespace

TEST_CASE("a fresh follower survives random messages and keeps its invariants") {
  run_fuzz(role::fresh_follower, 0xF0110);
}

TEST_CASE("a follower survives random messages and keeps its invariants") {
  run_fuzz(role::follower, 0xF0111);
}

TEST_CASE("a pre-candidate survives random messages and keeps its invariants") {
  run_fuzz(role::pre_candidate, 0xCA0D1);
}

TEST_CASE("a candidate survives random messages and keeps its invariants") {
  run_fuzz(role::candidate, 0xCA0D2);
}

TEST_CASE("a leader survives random messages and keeps its invariants") {
  run_fuzz(role::leader, 0x1EAD);
}
