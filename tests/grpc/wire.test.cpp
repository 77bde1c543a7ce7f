// The wire conversions (keel/grpc/wire.hpp): every network message type
// survives to_wire, protobuf serialization and from_wire unchanged; from_wire
// refuses each kind of malformed message with the right error; and bytes from
// the network, garbage or corrupted encodings, never crash it.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "keel/errc.hpp"
#include "keel/grpc/wire.hpp"
#include "keel/raft/types.hpp"

namespace {

using keel::errc;
using keel::raft::conf_state;
using keel::raft::entry;
using keel::raft::entry_type;
using keel::raft::message;
using keel::raft::message_type;
using keel::raft::snapshot;
using keel::rpc::from_wire;
using keel::rpc::to_wire;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

std::string describe(const message& m) {
  std::ostringstream s;
  s << "{" << to_string(m.type) << ", to " << m.to << ", from " << m.from << ", term " << m.term
    << ", log_term " << m.log_term << ", index " << m.index << ", commit " << m.commit
    << ", reject " << m.reject << ", hint " << m.reject_hint << ", context \"" << m.context
    << "\", entries [";
  for (const entry& e : m.entries) {
    s << " (" << e.index << "," << e.term << ",type " << static_cast<int>(e.type) << ",\"" << e.data
      << "\")";
  }
  s << " ]";
  if (m.snapshot) {
    s << ", snapshot (" << m.snapshot->metadata.index << "," << m.snapshot->metadata.term << ")";
  }
  return s.str() + "}";
}

/// A snapshot in a joint configuration, so every conf_state field is set.
snapshot joint_snapshot() {
  return {.metadata = {.index = 10,
                       .term = 3,
                       .conf = {.voters = {1, 2, 3},
                                .voters_outgoing = {1, 2, 4},
                                .learners = {5},
                                .learners_next = {4},
                                .auto_leave = true}},
          .data = std::string("snapshot-10\0handle", 18)};
}

/// A message of type `t` shaped the way keel's raft sends it, with every field
/// that type uses set to something other than its default.
message sample(message_type t) {
  message m{.type = t, .to = 1, .from = 2, .term = 3};
  switch (t) {
    case message_type::app:
      m.log_term = 2;
      m.index = 5;
      m.entries = {{.term = 2, .index = 6, .data = "a"},
                   {.term = 3, .index = 7, .type = entry_type::conf_change, .data = "cc"},
                   {.term = 3, .index = 8}};  // The leader's empty no-op.
      m.commit = 5;
      break;
    case message_type::app_resp:
      m.index = 7;
      m.log_term = 2;
      m.reject = true;
      m.reject_hint = 5;
      break;
    case message_type::vote:
    case message_type::pre_vote:
      m.term = 4;
      m.log_term = 3;
      m.index = 8;
      m.context = "CampaignTransfer";
      break;
    case message_type::vote_resp:
    case message_type::pre_vote_resp:
      m.term = 4;
      m.reject = true;
      break;
    case message_type::snap:
      m.snapshot = joint_snapshot();
      break;
    case message_type::heartbeat:
      m.commit = 7;
      m.context = std::string("read\0ctx", 8);
      break;
    case message_type::heartbeat_resp:
      m.context = std::string("read\0ctx", 8);
      break;
    case message_type::read_index_resp:
      m.index = 9;
      m.entries = {{.data = "read-ctx"}};
      break;
    case message_type::prop:
      // Forwarded to the leader: no term, entries not yet in any log.
      m.term = 0;
      m.entries = {{.data = "x"}, {.type = entry_type::conf_change, .data = "y"}};
      break;
    case message_type::read_index:
      m.term = 0;
      m.entries = {{.data = "read-ctx"}};
      break;
    default:  // timeout_now, transfer_leader: the header is the message.
      break;
  }
  return m;
}

std::vector<message_type> network_types() {
  std::vector<message_type> types;
  for (int i = 0; i < keel::raft::message_type_count; ++i) {
    auto t = static_cast<message_type>(i);
    if (keel::raft::is_network_message(t)) types.push_back(t);
  }
  return types;
}

keel::wire::Message encode(const message& m) {
  keel::wire::Message w;
  to_wire(m, w);
  return w;
}

/// The error from_wire answers `w` with (a value fails the calling REQUIRE).
std::error_code rejection(const keel::wire::Message& w) {
  auto r = from_wire(w);
  if (r) INFO("accepted: " << describe(*r));
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

// ---- round trips ----------------------------------------------------------------------

TEST_CASE("every network message type survives a round trip through its encoding") {
  const auto types = network_types();
  REQUIRE(types.size() == 14);
  for (message_type t : types) {
    const message m = sample(t);
    INFO(describe(m));
    std::string encoded;
    REQUIRE(encode(m).SerializeToString(&encoded));
    keel::wire::Message parsed;
    REQUIRE(parsed.ParseFromString(encoded));
    auto back = from_wire(parsed);
    REQUIRE(back.has_value());
    CHECK(describe(*back) == describe(m));
    CHECK(*back == m);
  }
}

TEST_CASE("to_wire copies every field, including the snapshot's metadata and data") {
  const message m = sample(message_type::snap);
  const keel::wire::Message w = encode(m);
  CHECK(w.type() == keel::wire::MSG_SNAP);
  CHECK(w.to() == 1);
  CHECK(w.from() == 2);
  CHECK(w.term() == 3);
  REQUIRE(w.has_snapshot());
  CHECK(w.snapshot().data() == std::string("snapshot-10\0handle", 18));
  const auto& meta = w.snapshot().metadata();
  CHECK(meta.index() == 10);
  CHECK(meta.term() == 3);
  CHECK(std::vector<std::uint64_t>(meta.conf().voters().begin(), meta.conf().voters().end()) ==
        std::vector<std::uint64_t>{1, 2, 3});
  CHECK(std::vector<std::uint64_t>(meta.conf().voters_outgoing().begin(),
                                   meta.conf().voters_outgoing().end()) ==
        std::vector<std::uint64_t>{1, 2, 4});
  CHECK(meta.conf().learners_size() == 1);
  CHECK(meta.conf().learners_next_size() == 1);
  CHECK(meta.conf().auto_leave());

  const keel::wire::Message a = encode(sample(message_type::app));
  REQUIRE(a.entries_size() == 3);
  CHECK(a.entries(1).type() == keel::wire::ENTRY_CONF_CHANGE);
  CHECK(a.entries(1).data() == "cc");
  CHECK(a.entries(1).index() == 7);
  CHECK_FALSE(a.has_snapshot());
}

TEST_CASE("the local after_persist flag is not sent") {
  message m = sample(message_type::app_resp);
  m.after_persist = true;
  auto back = from_wire(encode(m));
  REQUIRE(back.has_value());
  CHECK_FALSE(back->after_persist);
  m.after_persist = false;
  CHECK(*back == m);
}

TEST_CASE("to_wire replaces whatever the wire message held before") {
  keel::wire::Message w;
  to_wire(sample(message_type::snap), w);
  to_wire(sample(message_type::heartbeat), w);
  CHECK_FALSE(w.has_snapshot());
  auto back = from_wire(w);
  REQUIRE(back.has_value());
  CHECK(*back == sample(message_type::heartbeat));
}

TEST_CASE("entries without log positions are accepted where raft sends them") {
  // Proposals and read contexts carry entries of index 0 and term 0.
  for (message_type t :
       {message_type::prop, message_type::read_index, message_type::read_index_resp}) {
    INFO(to_string(t));
    message m = sample(t);
    m.entries.push_back({.data = "more"});
    auto back = from_wire(encode(m));
    REQUIRE(back.has_value());
    CHECK(*back == m);
  }
}

TEST_CASE("an append with no entries, or entries from older terms, is accepted") {
  message probe = sample(message_type::app);
  probe.entries.clear();
  CHECK(from_wire(encode(probe)).has_value());

  message old_terms = sample(message_type::app);
  old_terms.term = 9;
  CHECK(from_wire(encode(old_terms)).has_value());
}

// ---- rejections ------------------------------------------------------------------------

TEST_CASE("a message type this build does not know is rejected") {
  for (int type : {19, 99, 1000, -1}) {
    INFO("type " << type);
    keel::wire::Message w = encode(sample(message_type::heartbeat));
    w.set_type(static_cast<keel::wire::MessageType>(type));
    CHECK(rejection(w) == errc::unknown_message_type);
  }
}

TEST_CASE("a local-only message type from the network is rejected") {
  for (message_type t : {message_type::hup, message_type::beat, message_type::unreachable,
                         message_type::snap_status, message_type::check_quorum}) {
    INFO(to_string(t));
    CHECK(rejection(encode(sample(t))) == errc::local_message);
  }
}

TEST_CASE("a message without a sender or a receiver is rejected") {
  for (message_type t : network_types()) {
    INFO(to_string(t));
    message m = sample(t);
    m.from = 0;
    CHECK(rejection(encode(m)) == errc::invalid_message);
    m = sample(t);
    m.to = 0;
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
}

TEST_CASE("a message from a node to itself is rejected") {
  message m = sample(message_type::vote);
  m.to = m.from = 2;
  CHECK(rejection(encode(m)) == errc::invalid_message);
}

TEST_CASE("an entry of an unknown type is rejected") {
  for (message_type t : {message_type::app, message_type::prop}) {
    INFO(to_string(t));
    keel::wire::Message w = encode(sample(t));
    w.mutable_entries(1)->set_type(static_cast<keel::wire::EntryType>(7));
    CHECK(rejection(w) == errc::invalid_message);
    w.mutable_entries(1)->set_type(static_cast<keel::wire::EntryType>(-3));
    CHECK(rejection(w) == errc::invalid_message);
  }
}

TEST_CASE("an append whose entries do not follow its index one by one is rejected") {
  SECTION("a gap") {
    message m = sample(message_type::app);
    m.entries[2].index = 9;
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
  SECTION("a repeated index") {
    message m = sample(message_type::app);
    m.entries[1].index = 6;
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
  SECTION("indexes going down") {
    message m = sample(message_type::app);
    m.entries[0].index = 8;
    m.entries[2].index = 6;
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
  SECTION("a first entry not right after the index") {
    message m = sample(message_type::app);
    m.index = 4;
    CHECK(rejection(encode(m)) == errc::invalid_message);
    m.index = 6;
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
  SECTION("indexes that would wrap around") {
    message m = sample(message_type::app);
    m.index = max_u64 - 1;
    m.entries = {{.term = 3, .index = max_u64}, {.term = 3, .index = 0}};
    CHECK(rejection(encode(m)) == errc::invalid_message);
    m.index = max_u64;
    m.entries = {{.term = 3, .index = 0}};
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
}

TEST_CASE("an entry from a term after the message's term is rejected") {
  message m = sample(message_type::app);
  m.entries[2].term = 4;
  CHECK(rejection(encode(m)) == errc::invalid_message);

  message resp = sample(message_type::read_index_resp);
  resp.entries[0].term = 4;
  CHECK(rejection(encode(resp)) == errc::invalid_message);
}

TEST_CASE("a snapshot message without a usable snapshot is rejected") {
  SECTION("no snapshot") {
    message m = sample(message_type::snap);
    m.snapshot.reset();
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
  SECTION("a snapshot without metadata") {
    keel::wire::Message w = encode(sample(message_type::snap));
    w.mutable_snapshot()->clear_metadata();
    CHECK(rejection(w) == errc::invalid_message);
  }
  SECTION("a snapshot at index 0") {
    message m = sample(message_type::snap);
    m.snapshot->metadata.index = 0;
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
}

TEST_CASE("a snapshot whose configuration names node 0 is rejected") {
  for (int field = 0; field < 4; ++field) {
    INFO("conf_state field " << field);
    message m = sample(message_type::snap);
    conf_state& c = m.snapshot->metadata.conf;
    std::vector<keel::raft::node_id>* ids[] = {&c.voters, &c.voters_outgoing, &c.learners,
                                               &c.learners_next};
    ids[field]->push_back(0);
    CHECK(rejection(encode(m)) == errc::invalid_message);
  }
}

TEST_CASE("a snapshot on any message but a snapshot message is rejected") {
  for (message_type t : network_types()) {
    if (t == message_type::snap) continue;
    INFO(to_string(t));
    message m = sample(t);
    m.snapshot = joint_snapshot();
    CHECK(rejection(encode(m)) == errc::invalid_message);
    // Present but empty is still present on the wire.
    keel::wire::Message w = encode(sample(t));
    w.mutable_snapshot();
    CHECK(rejection(w) == errc::invalid_message);
  }
}

// ---- hostile bytes ---------------------------------------------------------------------

namespace {

/// Parses `bytes` and converts whatever parses; every accepted message must
/// satisfy from_wire's guarantees and encode back to itself.
void feed(const std::string& bytes, std::uint64_t& parsed, std::uint64_t& accepted) {
  keel::wire::Message w;
  if (!w.ParseFromString(bytes)) return;
  ++parsed;
  auto r = from_wire(w);
  if (!r) {
    const std::error_code e = r.error();
    REQUIRE((e == errc::invalid_message || e == errc::unknown_message_type ||
             e == errc::local_message));
    return;
  }
  ++accepted;
  const message& m = *r;
  INFO(describe(m));
  REQUIRE(keel::raft::is_network_message(m.type));
  REQUIRE(m.to != 0);
  REQUIRE(m.from != 0);
  REQUIRE(m.to != m.from);
  REQUIRE(m.snapshot.has_value() == (m.type == message_type::snap));
  auto again = from_wire(encode(m));
  REQUIRE(again.has_value());
  REQUIRE(*again == m);
}

}  // namespace

TEST_CASE("random bytes either fail to parse or convert to a message or an error") {
  std::uint64_t parsed = 0;
  std::uint64_t accepted = 0;
  for (std::uint64_t seed = 1; seed <= 4000; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    std::string junk(rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    feed(junk, parsed, accepted);
  }
  // Most random strings are not protobuf, but some are (the empty one, for a start).
  CHECK(parsed > 0);
}

TEST_CASE("corrupted encodings of valid messages never crash the conversion") {
  std::vector<std::string> valid;
  for (message_type t : network_types()) {
    std::string s;
    REQUIRE(encode(sample(t)).SerializeToString(&s));
    valid.push_back(s);
  }
  std::uint64_t parsed = 0;
  std::uint64_t accepted = 0;
  for (std::uint64_t seed = 1; seed <= 6000; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    std::string s = valid[rng() % valid.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0:  // Flip some bits.
          s[at] = static_cast<char>(s[at] ^ static_cast<char>(1 + rng() % 255));
          break;
        case 1:  // Overwrite a byte.
          s[at] = static_cast<char>(rng());
          break;
        case 2:  // Cut the tail.
          s.resize(at);
          break;
        default:  // Insert a byte.
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng()));
          break;
      }
    }
    feed(s, parsed, accepted);
  }
  // Both outcomes must have been exercised for the test to mean anything.
  CHECK(parsed > 0);
  CHECK(accepted > 0);
  CHECK(accepted < parsed);
}
