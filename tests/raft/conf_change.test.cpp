// The conf_change codec (conf_change.hpp): what encode() writes round-trips
// through decode_conf_change(), and every malformed byte string is rejected
// with errc::invalid_conf_change, since the bytes come from the log and the
// network. Also the meaning of transitions (enters_joint, auto_leave).
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "keel/errc.hpp"
#include "keel/raft/conf_change.hpp"

namespace {

using namespace keel::raft;
using keel::errc;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

/// A set of changes covering every field: each transition, each type, node
/// ids with high bytes set, contexts empty and not.
std::vector<conf_change> samples() {
  return {
      {},
      {.changes = {{conf_change_type::add_node, 1}}},
      {.transition = conf_change_transition::joint_implicit,
       .changes = {{conf_change_type::add_node, 4}, {conf_change_type::remove_node, 1}}},
      {.transition = conf_change_transition::joint_explicit,
       .changes = {{conf_change_type::add_learner, 0x0102030405060708ULL},
                   {conf_change_type::remove_node, max_u64},
                   {conf_change_type::add_node, 0}},
       .context = "ctx"},
      {.context = std::string("\0\xff\x01 binary", 10)},
      {.changes = {{conf_change_type::add_learner, 7}}, .context = std::string(300, 'x')},
  };
}

/// Writes v as n little-endian bytes at out[at].
void put_le(std::string& out, std::size_t at, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i)
    out[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
}

void require_rejected(const std::string& bytes) {
  auto r = decode_conf_change(bytes);
  INFO("input of " << bytes.size() << " bytes");
  REQUIRE_FALSE(r);
  REQUIRE(r.error() == errc::invalid_conf_change);
}

}  // namespace

TEST_CASE("every conf_change survives an encode-decode round trip") {
  for (const conf_change& cc : samples()) {
    INFO("changes " << cc.changes.size() << " context " << cc.context.size());
    auto decoded = decode_conf_change(encode(cc));
    REQUIRE(decoded);
    CHECK(*decoded == cc);
  }
}

TEST_CASE("the encoding is the documented little-endian layout") {
  const conf_change cc{.transition = conf_change_transition::joint_explicit,
                       .changes = {{conf_change_type::add_learner, 0x0102030405060708ULL}},
                       .context = "ab"};
  const std::string want = std::string("\x01\x02", 2) +                // version, transition
                           std::string("\x01\x00\x00\x00", 4) +        // count
                           std::string("\x02", 1) +                    // type
                           "\x08\x07\x06\x05\x04\x03\x02\x01" +        // node
                           std::string("\x02\x00\x00\x00", 4) + "ab";  // context
  CHECK(encode(cc) == want);
}

TEST_CASE("an empty conf_change encodes to ten bytes") {
  CHECK(encode(conf_change{}) == std::string("\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10));
}

TEST_CASE("an empty byte string is rejected") { require_rejected(""); }

TEST_CASE("every truncation of a valid encoding is rejected") {
  for (const conf_change& cc : samples()) {
    const std::string full = encode(cc);
    for (std::size_t len = 0; len < full.size(); ++len) {
      INFO("sample with " << cc.changes.size() << " changes truncated to " << len);
      require_rejected(full.substr(0, len));
    }
  }
}

TEST_CASE("an unknown format version is rejected") {
  for (int version : {0, 2, 127, 255}) {
    INFO("version " << version);
    std::string bytes = encode(samples()[1]);
    bytes[0] = static_cast<char>(version);
    require_rejected(bytes);
  }
}

TEST_CASE("an unknown transition is rejected") {
  for (int transition : {3, 4, 128, 255}) {
    INFO("transition " << transition);
    std::string bytes = encode(samples()[1]);
    bytes[1] = static_cast<char>(transition);
    require_rejected(bytes);
  }
}

TEST_CASE("an unknown change type is rejected at any position") {
  const conf_change cc = samples()[3];  // Three changes.
  for (std::size_t k = 0; k < cc.changes.size(); ++k) {
    for (int type : {3, 4, 255}) {
      INFO("change " << k << " type " << type);
      std::string bytes = encode(cc);
      bytes[6 + 9 * k] = static_cast<char>(type);
      require_rejected(bytes);
    }
  }
}

TEST_CASE("trailing bytes after the context are rejected") {
  for (const conf_change& cc : samples()) {
    for (const std::string& tail : {std::string(1, '\0'), std::string("x"), std::string(64, 'z')}) {
      INFO("changes " << cc.changes.size() << " tail " << tail.size());
      require_rejected(encode(cc) + tail);
    }
  }
}

TEST_CASE("a change count larger than the bytes hold is rejected") {
  for (std::uint64_t count : {2ULL, 3ULL, 1000ULL, 0x7fffffffULL, 0xffffffffULL}) {
    INFO("count " << count);
    std::string bytes = encode(samples()[1]);  // One change.
    put_le(bytes, 2, count, 4);
    require_rejected(bytes);
  }
}

TEST_CASE("a change count smaller than the changes present is rejected") {
  std::string bytes = encode(samples()[2]);  // Two changes.
  put_le(bytes, 2, 1, 4);
  require_rejected(bytes);
  put_le(bytes, 2, 0, 4);
  require_rejected(bytes);
}

TEST_CASE("a context length that disagrees with the bytes is rejected") {
  const conf_change cc = samples()[3];  // Context "ctx".
  const std::size_t at = 6 + 9 * cc.changes.size();
  for (std::uint64_t length : {0ULL, 2ULL, 4ULL, 1000ULL, 0xffffffffULL}) {
    INFO("context length " << length);
    std::string bytes = encode(cc);
    put_le(bytes, at, length, 4);
    require_rejected(bytes);
  }
}

TEST_CASE("a header claiming billions of changes is rejected before anything is allocated") {
  // Ten bytes of header claiming four billion changes must fail at once.
  std::string bytes(10, '\0');
  bytes[0] = 1;
  put_le(bytes, 2, 0xffffffffULL, 4);
  require_rejected(bytes);
}

TEST_CASE("corrupted encodings either are rejected or decode to what they encode") {
  // Decoding is exact: anything accepted re-encodes to the very same bytes.
  const std::uint64_t seed = 1234;
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const auto all = samples();
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes = encode(all[rng() % all.size()]);
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      switch (rng() % 3) {
        case 0:
          bytes[rng() % bytes.size()] = static_cast<char>(rng());
          break;
        case 1:
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(rng() % (bytes.size() + 1)),
                       static_cast<char>(rng()));
          break;
        default:
          if (bytes.size() > 1) bytes.erase(rng() % bytes.size(), 1);
          break;
      }
    }
    INFO("trial " << trial);
    auto r = decode_conf_change(bytes);
    if (r) {
      REQUIRE(encode(*r) == bytes);
    } else {
      REQUIRE(r.error() == errc::invalid_conf_change);
    }
  }
}

TEST_CASE("a single change with the auto transition is applied in one step") {
  const conf_change cc{.changes = {{conf_change_type::add_node, 2}}};
  CHECK_FALSE(cc.enters_joint());
  CHECK_FALSE(cc.auto_leave());
  CHECK_FALSE(cc.leaves_joint());
}

TEST_CASE("several changes with the auto transition enter a joint config left automatically") {
  const conf_change cc{
      .changes = {{conf_change_type::add_node, 2}, {conf_change_type::add_node, 3}}};
  CHECK(cc.enters_joint());
  CHECK(cc.auto_leave());
}

TEST_CASE("an implicit joint transition is left automatically even for one change") {
  const conf_change cc{.transition = conf_change_transition::joint_implicit,
                       .changes = {{conf_change_type::add_node, 2}}};
  CHECK(cc.enters_joint());
  CHECK(cc.auto_leave());
}

TEST_CASE("an explicit joint transition waits for an empty change to leave") {
  const conf_change cc{
      .transition = conf_change_transition::joint_explicit,
      .changes = {{conf_change_type::add_node, 2}, {conf_change_type::add_node, 3}}};
  CHECK(cc.enters_joint());
  CHECK_FALSE(cc.auto_leave());
  CHECK(conf_change{}.leaves_joint());
}
