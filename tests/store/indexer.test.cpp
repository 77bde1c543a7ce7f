// keel::store indexers: key encodings, their order and prefix properties
// (randomized against the values themselves, seeded: a failure prints the
// seed; replay one with KEEL_SEED=<seed>), every indexer kind, missing values,
// and lookups over entry keys against a std::map model of the radix tree.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "keel/store/indexer.hpp"

using namespace std::literals;
namespace store = keel::store;

namespace {

/// The seed of a randomized test: KEEL_SEED if set, else `fallback`.
std::uint64_t test_seed(std::uint64_t fallback) {
  if (const char* env = std::getenv("KEEL_SEED")) return std::strtoull(env, nullptr, 10);
  return fallback;
}

/// A random string over an alphabet that exercises the escapes (0x00, 0x01),
/// their neighbours, letters and 0xff.
std::string random_string(std::mt19937_64& rng, std::size_t max_size = 5) {
  static constexpr char alphabet[] = {'\x00', '\x01', '\x02', 'a', 'b', 'A', '=', '\xff'};
  std::uniform_int_distribution<std::size_t> size(0, max_size);
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(alphabet) - 1);
  std::string s(size(rng), '\0');
  for (char& c : s) c = alphabet[pick(rng)];
  return s;
}

int sign(int v) { return (v > 0) - (v < 0); }

/// The entries of a std::map (a model of the radix tree) whose key starts
/// with `prefix`, as the tree's seek_prefix would visit them.
template <class Map>
std::vector<typename Map::mapped_type> seek_prefix(const Map& m, std::string_view prefix) {
  std::vector<typename Map::mapped_type> out;
  for (auto it = m.lower_bound(std::string(prefix));
       it != m.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    out.push_back(it->second);
  }
  return out;
}

enum class color : std::int16_t { red = -2, green = 0, blue = 7 };

struct item {
  std::string id;
  std::string name;
  std::optional<std::string> nick;
  std::uint64_t size = 0;
  std::int64_t offset = 0;
  std::optional<std::int32_t> rank;
  color hue = color::green;
  bool done = false;
  std::vector<std::string> tags;
  std::map<std::string, std::string> labels;
};

std::string_view item_name(const item& i) { return i.name; }

constexpr store::string_indexer by_name{&item::name};
constexpr store::string_indexer by_name_folded{
    [](const item& i) -> std::string_view { return i.name; }, store::case_fold::lower};
constexpr store::integer_indexer by_size{&item::size};
constexpr store::integer_indexer by_offset{&item::offset};
constexpr store::conditional_indexer by_done{&item::done};
constexpr store::string_set_indexer by_tag{&item::tags};
constexpr store::map_indexer by_label{&item::labels};

std::vector<std::string> keys_of(const auto& indexer, const item& obj) {
  std::vector<std::string> keys;
  indexer.append_keys(obj, keys);
  return keys;
}

}  // namespace

// --- the concepts ---------------------------------------------------------------------------

TEST_CASE("every built-in indexer satisfies the indexer concept") {
  STATIC_REQUIRE(store::single_indexer<decltype(by_name), item>);
  STATIC_REQUIRE(store::single_indexer<decltype(by_name_folded), item>);
  STATIC_REQUIRE(store::single_indexer<decltype(by_size), item>);
  STATIC_REQUIRE(store::single_indexer<decltype(by_offset), item>);
  STATIC_REQUIRE(store::single_indexer<decltype(by_done), item>);
  STATIC_REQUIRE(store::indexer<decltype(by_tag), item>);
  STATIC_REQUIRE_FALSE(store::single_indexer<decltype(by_tag), item>);
  STATIC_REQUIRE(store::indexer<decltype(by_label), item>);
  STATIC_REQUIRE(
      store::single_indexer<store::compound_indexer<decltype(by_name), decltype(by_size)>, item>);
  STATIC_REQUIRE(
      store::indexer<store::compound_indexer<decltype(by_name), decltype(by_tag)>, item>);
  STATIC_REQUIRE_FALSE(
      store::single_indexer<store::compound_indexer<decltype(by_name), decltype(by_tag)>, item>);
}

TEST_CASE("an indexer of one type is not an indexer of another") {
  struct other {
    int x = 0;
  };
  STATIC_REQUIRE_FALSE(store::indexer<decltype(by_name), other>);
  STATIC_REQUIRE_FALSE(store::indexer<decltype(by_size), other>);
  STATIC_REQUIRE_FALSE(store::indexer<decltype(by_label), other>);
  // A string getter on an integer field, and an integer getter of the wrong width.
  constexpr store::string_indexer wrong{[](const item& i) {
    return i.size;
  }};
  STATIC_REQUIRE_FALSE(store::indexer<decltype(wrong), item>);
  constexpr store::integer_indexer<std::uint32_t, decltype(&item::size)> narrow{&item::size};
  STATIC_REQUIRE_FALSE(store::indexer<decltype(narrow), item>);
}

TEST_CASE("indexers with stateless getters hold nothing but their options") {
  const auto name = [](const item& i) -> const std::string& {
    return i.name;
  };
  const auto offset = [](const item& i) {
    return i.offset;
  };
  const auto done = [](const item& i) {
    return i.done;
  };
  STATIC_REQUIRE(sizeof(store::string_indexer{name}) == sizeof(store::case_fold));
  STATIC_REQUIRE(sizeof(store::integer_indexer{offset}) == 1);
  STATIC_REQUIRE(sizeof(store::conditional_indexer{done}) == 1);
  // A pointer to member is state: the indexer stores it.
  STATIC_REQUIRE(sizeof(by_offset) == sizeof(&item::offset));
}

TEST_CASE("getters may be lambdas, function pointers or pointers to members") {
  struct with_method {
    std::string v = "m";
    const std::string& value() const { return v; }
  };
  const store::string_indexer by_function{&item_name};
  const store::string_indexer by_member{&item::name};
  const store::string_indexer by_method{&with_method::value};
  item obj;
  obj.name = "n";
  CHECK(keys_of(by_function, obj) == std::vector{"n\0"s});
  CHECK(keys_of(by_member, obj) == std::vector{"n\0"s});
  std::vector<std::string> keys;
  by_method.append_keys(with_method{}, keys);
  CHECK(keys == std::vector{"m\0"s});
}

// --- strings ----------------------------------------------------------------------------------

TEST_CASE("a string key is the string's bytes followed by a zero byte") {
  item obj;
  obj.name = "web";
  CHECK(keys_of(by_name, obj) == std::vector{"web\0"s});
  CHECK(by_name.exact("web") == "web\0"s);
  CHECK(by_name.prefix("we") == "we");
  CHECK(store::encode_string("") == "\0"s);
  CHECK(store::encode_string_prefix("") == "");
}

TEST_CASE("zero and escape bytes in strings are escaped so keys stay prefix-free") {
  CHECK(store::encode_string("a\0b"s) ==
        "a\x01\x01"
        "b\0"s);
  CHECK(store::encode_string("\x01"s) == "\x01\x02\0"s);
  CHECK(store::encode_string_prefix("a\0"s) == "a\x01\x01"s);
  // "a" must not be a prefix of "a\0"'s key, though "a" is a prefix of "a\0".
  CHECK_FALSE(store::encode_string("a\0"s).starts_with(store::encode_string("a")));
}

TEST_CASE("a string key decodes back to the string") {
  const std::uint64_t seed = test_seed(11);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    const std::string value = random_string(rng, 8);
    const std::string tail = random_string(rng, 3);
    CAPTURE(value, tail);
    std::string_view in;
    const std::string key = store::encode_string(value) + tail;
    in = key;
    std::string decoded;
    REQUIRE(keel::store::detail::read_string(in, decoded));
    CHECK(decoded == value);
    CHECK(in == tail);
  }
  std::string_view bad = "abc";  // no terminator
  std::string decoded;
  CHECK_FALSE(keel::store::detail::read_string(bad, decoded));
  bad = "a\x01\x03\0"sv;  // not an escape
  CHECK_FALSE(keel::store::detail::read_string(bad, decoded));
  CHECK(bad.size() == 4);
}

TEST_CASE("an empty or absent string is a missing value") {
  const store::string_indexer by_nick{&item::nick};
  item obj;
  CHECK(keys_of(by_name, obj).empty());
  CHECK(keys_of(by_nick, obj).empty());
  obj.nick = "";
  CHECK(keys_of(by_nick, obj).empty());
  obj.nick = "bob";
  CHECK(keys_of(by_nick, obj) == std::vector{"bob\0"s});
  std::string key = "kept";
  CHECK_FALSE(by_name.append_key(item{}, key));
  CHECK(key == "kept");
}

TEST_CASE("string keys sort like the strings") {
  const std::uint64_t seed = test_seed(12);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  std::vector<std::string> values(3000);
  for (auto& v : values) v = random_string(rng);
  for (std::size_t i = 0; i + 1 < values.size(); ++i) {
    const auto& a = values[i];
    const auto& b = values[i + 1];
    CAPTURE(a, b);
    REQUIRE(sign(store::encode_string(a).compare(store::encode_string(b))) == sign(a.compare(b)));
  }
  // Sorting by key sorts the values.
  std::vector<std::pair<std::string, std::string>> by_key;
  for (const auto& v : values) by_key.emplace_back(store::encode_string(v), v);
  std::sort(by_key.begin(), by_key.end());
  std::sort(values.begin(), values.end());
  for (std::size_t i = 0; i < values.size(); ++i) REQUIRE(by_key[i].second == values[i]);
}

TEST_CASE("a string prefix matches the keys of exactly the strings that start with it") {
  const std::uint64_t seed = test_seed(13);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  int matches = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string value = random_string(rng);
    const std::string prefix = random_string(rng, 3);
    CAPTURE(value, prefix);
    const bool expected = value.starts_with(prefix);
    REQUIRE(store::encode_string(value).starts_with(store::encode_string_prefix(prefix)) ==
            expected);
    matches += expected;
  }
  CHECK(matches > 1000);  // the check saw both outcomes often
}

TEST_CASE("a lower-cased string index folds ASCII letters of keys and queries") {
  item obj;
  obj.name = "Web-FRONT";
  CHECK(keys_of(by_name_folded, obj) == std::vector{"web-front\0"s});
  CHECK(by_name_folded.exact("WEB-front") == "web-front\0"s);
  CHECK(by_name_folded.prefix("WeB") == "web");
  CHECK(by_name_folded.fold() == store::case_fold::lower);
  // Only A-Z fold; other bytes, UTF-8 included, are kept.
  CHECK(by_name_folded.exact("\xC3\x89t\xC3\xA9") == "\xC3\x89t\xC3\xA9\0"s);
  CHECK(by_name.exact("Web") == "Web\0"s);
}

// --- integers, enums, conditions -----------------------------------------------------------

TEST_CASE("integer keys are big-endian with the sign bit flipped") {
  CHECK(store::encode_integer(std::uint64_t{1}) == "\0\0\0\0\0\0\0\x01"s);
  CHECK(store::encode_integer(std::uint16_t{0x0102}) == "\x01\x02"s);
  CHECK(store::encode_integer(std::int64_t{0}) == "\x80\0\0\0\0\0\0\0"s);
  CHECK(store::encode_integer(std::int64_t{-1}) == "\x7f\xff\xff\xff\xff\xff\xff\xff"s);
  CHECK(store::encode_integer(std::numeric_limits<std::int32_t>::min()) == "\0\0\0\0"s);
  CHECK(store::encode_integer(std::numeric_limits<std::int32_t>::max()) == "\xff\xff\xff\xff"s);
  CHECK(store::encode_integer(std::int8_t{-128}) == "\0"s);
  item obj;
  obj.size = 0x0102030405060708;
  CHECK(keys_of(by_size, obj) == std::vector{"\x01\x02\x03\x04\x05\x06\x07\x08"s});
  CHECK(by_size.exact(0x0102030405060708) == keys_of(by_size, obj)[0]);
  CHECK(by_size.prefix(7) == by_size.exact(7));
}

TEMPLATE_TEST_CASE("integer keys sort like the integers", "", std::int8_t, std::uint8_t,
                   std::int16_t, std::uint16_t, std::int32_t, std::uint32_t, std::int64_t,
                   std::uint64_t) {
  const std::uint64_t seed = test_seed(14);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  using limits = std::numeric_limits<TestType>;
  std::vector<TestType> values = {limits::min(), limits::max(), TestType{0}, TestType{1},
                                  static_cast<TestType>(limits::max() / 2)};
  if constexpr (std::is_signed_v<TestType>) values.push_back(TestType{-1});
  std::uniform_int_distribution<std::int64_t> narrow(-300, 300);
  for (int i = 0; i < 2000; ++i) {
    // Half spread over the whole range, half near zero where signs meet.
    values.push_back(i % 2 ? static_cast<TestType>(rng()) : static_cast<TestType>(narrow(rng)));
  }
  // An indexer with a generic getter names its value type.
  const store::integer_indexer<TestType, decltype([](const auto& v) { return v; })> ix{{}};
  for (std::size_t i = 0; i + 1 < values.size(); ++i) {
    const TestType a = values[i];
    const TestType b = values[i + 1];
    CAPTURE(+a, +b);
    REQUIRE(ix.exact(a).size() == sizeof(TestType));
    REQUIRE(sign(ix.exact(a).compare(ix.exact(b))) == ((a > b) - (a < b)));
    std::vector<std::string> keys;
    ix.append_keys(a, keys);
    REQUIRE(keys == std::vector{ix.exact(a)});
  }
}

TEST_CASE("an enum field is keyed by its underlying integer") {
  const store::integer_indexer by_hue{&item::hue};
  STATIC_REQUIRE(std::is_same_v<decltype(by_hue)::value_type, color>);
  CHECK(by_hue.exact(color::red) == store::encode_integer(std::int16_t{-2}));
  CHECK(by_hue.exact(color::red) < by_hue.exact(color::green));
  CHECK(by_hue.exact(color::green) < by_hue.exact(color::blue));
  item obj;
  obj.hue = color::blue;
  CHECK(keys_of(by_hue, obj) == std::vector{by_hue.exact(color::blue)});
}

TEST_CASE("an integer getter that returns an empty optional is a missing value") {
  const store::integer_indexer by_rank{&item::rank};
  STATIC_REQUIRE(std::is_same_v<decltype(by_rank)::value_type, std::int32_t>);
  item obj;
  CHECK(keys_of(by_rank, obj).empty());
  obj.rank = -5;
  CHECK(keys_of(by_rank, obj) == std::vector{store::encode_integer(std::int32_t{-5})});
}

TEST_CASE("a conditional index keys objects by whether the condition holds") {
  item obj;
  CHECK(keys_of(by_done, obj) == std::vector{"\0"s});
  obj.done = true;
  CHECK(keys_of(by_done, obj) == std::vector{"\x01"s});
  CHECK(by_done.exact(true) == "\x01"s);
  CHECK(by_done.exact(false) < by_done.exact(true));
  const store::conditional_indexer big{[](const item& i) {
    return i.size > 10;
  }};
  obj.size = 11;
  CHECK(keys_of(big, obj) == std::vector{big.exact(true)});
  const store::conditional_indexer maybe{[](const item& i) -> std::optional<bool> {
    if (i.name.empty()) return std::nullopt;
    return i.done;
  }};
  CHECK(keys_of(maybe, obj).empty());
}

// --- compound -----------------------------------------------------------------------------------

TEST_CASE("a compound key is the concatenation of its parts' keys") {
  const store::compound_indexer ix{by_name, by_size};
  item obj;
  obj.name = "svc";
  obj.size = 3;
  const std::string expected = "svc\0"s + store::encode_integer(std::uint64_t{3});
  CHECK(keys_of(ix, obj) == std::vector{expected});
  CHECK(ix.exact("svc", 3) == expected);
  CHECK(ix.leading("svc") == "svc\0"s);
  CHECK(ix.prefix("sv") == "sv");
  CHECK(ix.prefix("svc", 3) == expected);  // a fixed-width last part is its own prefix
  std::string key = "x";
  CHECK(ix.append_key(obj, key));
  CHECK(key == "x" + expected);
}

TEST_CASE("a compound key is missing when any part is missing") {
  const store::compound_indexer ix{by_size, by_name};
  item obj;
  obj.size = 3;
  CHECK(keys_of(ix, obj).empty());
  std::string key = "kept";
  CHECK_FALSE(ix.append_key(obj, key));
  CHECK(key == "kept");  // the size part was appended, then taken back
  const store::compound_indexer multi{by_name, by_tag};
  obj.name = "n";
  CHECK(keys_of(multi, obj).empty());
}

TEST_CASE("compound keys sort by the first part, then the next") {
  const std::uint64_t seed = test_seed(15);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  const store::compound_indexer ix{
      store::string_indexer{[](const auto& t) -> const std::string& {
        return std::get<0>(t);
      }},
      store::integer_indexer<std::int32_t, decltype([](const auto& t) { return std::get<1>(t); })>{
          {}}};
  std::uniform_int_distribution<std::int32_t> small(-3, 3);
  std::vector<std::tuple<std::string, std::int32_t>> values;
  for (int i = 0; i < 3000; ++i) {
    auto s = random_string(rng, 3);
    if (s.empty()) s = "x";  // an empty string is a missing value
    values.emplace_back(s, small(rng));
  }
  std::vector<std::pair<std::string, std::size_t>> by_key;
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::vector<std::string> keys;
    ix.append_keys(values[i], keys);
    REQUIRE(keys.size() == 1);
    REQUIRE(keys[0] == ix.exact(std::get<0>(values[i]), std::get<1>(values[i])));
    by_key.emplace_back(keys[0], i);
  }
  std::sort(by_key.begin(), by_key.end());
  for (std::size_t i = 0; i + 1 < by_key.size(); ++i) {
    const auto& a = values[by_key[i].second];
    const auto& b = values[by_key[i + 1].second];
    REQUIRE_FALSE(b < a);
  }
}

TEST_CASE("a compound prefix query is exact on all parts but the last, a prefix on the last") {
  const std::uint64_t seed = test_seed(16);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  const auto first = [](const auto& t) -> const std::string& {
    return t.first;
  };
  const auto second = [](const auto& t) -> const std::string& {
    return t.second;
  };
  const store::compound_indexer ix{store::string_indexer{first}, store::string_indexer{second}};
  CHECK(ix.prefix("svc", "we") == "svc\0we"s);
  CHECK(ix.leading("svc") == "svc\0"s);
  for (int i = 0; i < 20000; ++i) {
    std::pair<std::string, std::string> value{random_string(rng, 3), random_string(rng, 3)};
    if (value.first.empty() || value.second.empty()) continue;
    const std::string a = random_string(rng, 3);
    const std::string p = random_string(rng, 2);
    CAPTURE(value.first, value.second, a, p);
    std::vector<std::string> keys;
    ix.append_keys(value, keys);
    REQUIRE(keys.size() == 1);
    REQUIRE(keys[0].starts_with(ix.prefix(a, p)) ==
            (value.first == a && value.second.starts_with(p)));
    REQUIRE(keys[0].starts_with(ix.leading(a)) == (value.first == a));
    REQUIRE(keys[0].starts_with(ix.prefix(a)) == value.first.starts_with(a));
  }
}

TEST_CASE("a compound over a multi-valued part has one key per combination") {
  const store::compound_indexer ix{by_name, by_tag};
  item obj;
  obj.name = "n";
  obj.tags = {"x", "y"};
  CHECK(keys_of(ix, obj) == std::vector{"n\0x\0"s, "n\0y\0"s});
  CHECK(ix.exact("n", "y") == "n\0y\0"s);
  const store::compound_indexer pairs{by_tag, by_tag};
  CHECK(keys_of(pairs, obj) == std::vector{"x\0x\0"s, "x\0y\0"s, "y\0x\0"s, "y\0y\0"s});
}

// --- multi-valued -----------------------------------------------------------------------------

TEST_CASE("a string set index has one key per non-empty element") {
  item obj;
  CHECK(keys_of(by_tag, obj).empty());
  obj.tags = {"b", "", "a"};
  CHECK(keys_of(by_tag, obj) == std::vector{"b\0"s, "a\0"s});
  CHECK(by_tag.exact("a") == "a\0"s);
  CHECK(by_tag.prefix("a") == "a");
  const store::string_set_indexer folded{&item::tags, store::case_fold::lower};
  obj.tags = {"B"};
  CHECK(keys_of(folded, obj) == std::vector{"b\0"s});
}

TEST_CASE("a map index has one key per entry: the key, then the value") {
  item obj;
  CHECK(keys_of(by_label, obj).empty());
  obj.labels = {{"env", "prod"}, {"tier", ""}, {"", "ignored"}};
  CHECK(keys_of(by_label, obj) == std::vector{"env\0prod\0"s, "tier\0\0"s});
  CHECK(by_label.exact("env", "prod") == "env\0prod\0"s);
  CHECK(by_label.leading("env") == "env\0"s);
  CHECK(by_label.prefix("en") == "en");
  CHECK(by_label.prefix("env", "pr") == "env\0pr"s);
}

TEST_CASE("a map index keeps keys and values apart") {
  item a;
  a.labels = {{"a=b", "c"}};
  item b;
  b.labels = {{"a", "b=c"}};
  CHECK(keys_of(by_label, a) != keys_of(by_label, b));
  CHECK_FALSE(keys_of(by_label, b)[0].starts_with(by_label.leading("a=b")));
  CHECK(keys_of(by_label, b)[0].starts_with(by_label.leading("a")));
}

// --- schemas and entries ----------------------------------------------------------------------

TEST_CASE("an object without a value is left out of an index that allows missing values") {
  const store::index_schema schema{.name = "nick", .allow_missing = true, .indexer = by_name};
  std::vector<std::string> entries{"other"};
  CHECK_FALSE(store::append_entry_keys(schema, item{}, "id1", entries));
  CHECK(entries == std::vector{"other"s});
}

TEST_CASE("an object without a value cannot enter an index that does not allow it") {
  const store::index_schema schema{.name = "name", .indexer = by_name};
  std::vector<std::string> entries{"other"};
  const std::error_code error = store::append_entry_keys(schema, item{}, "id1", entries);
  CHECK(error == keel::errc::missing_index_value);
  CHECK_FALSE(error.message().empty());
  CHECK(entries == std::vector{"other"s});
  const store::index_schema labels{.name = "labels", .indexer = by_label};
  CHECK(store::append_entry_keys(labels, item{}, "id1", entries) ==
        keel::errc::missing_index_value);
}

TEST_CASE("entries of a non-unique index end with the object's id; a unique index's do not") {
  item obj;
  obj.name = "web";
  std::vector<std::string> entries;
  const store::index_schema plain{.name = "name", .indexer = by_name};
  REQUIRE_FALSE(store::append_entry_keys(plain, obj, "id1", entries));
  CHECK(entries == std::vector{"web\0id1\0"s});
  CHECK(store::index_entry_key("web\0"s, "id1") == "web\0id1\0"s);
  CHECK(store::index_entry_key("k", "a\0"s) == "ka\x01\x01\0"s);
  entries.clear();
  const store::index_schema unique{.name = "name", .unique = true, .indexer = by_name};
  REQUIRE_FALSE(store::append_entry_keys(unique, obj, "id1", entries));
  CHECK(entries == std::vector{"web\0"s});
}

TEST_CASE("entry keys of a multi-valued index are sorted and without duplicates") {
  item obj;
  obj.tags = {"b", "a", "b", "c", "a"};
  std::vector<std::string> entries;
  const store::index_schema schema{.name = "tags", .indexer = by_tag};
  REQUIRE_FALSE(store::append_entry_keys(schema, obj, "i", entries));
  CHECK(entries == std::vector{"a\0i\0"s, "b\0i\0"s, "c\0i\0"s});
}

TEST_CASE("exact, prefix and range lookups over entries find exactly the matching objects") {
  const std::uint64_t seed = test_seed(17);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  // The model of an index's radix tree: entry key -> id.
  std::map<std::string, std::string> tree;
  std::map<std::string, std::string> value_of;  // id -> value
  const store::index_schema schema{.name = "name", .indexer = by_name};
  for (int i = 0; i < 400; ++i) {
    item obj;
    obj.name = random_string(rng, 3);
    const std::string id = random_string(rng, 4) + std::to_string(i);  // ids are distinct
    std::vector<std::string> entries;
    const auto error = store::append_entry_keys(schema, obj, id, entries);
    if (obj.name.empty()) {
      REQUIRE(error == keel::errc::missing_index_value);
      continue;
    }
    REQUIRE_FALSE(error);
    REQUIRE(entries.size() == 1);
    REQUIRE(tree.emplace(entries[0], id).second);
    value_of[id] = obj.name;
  }
  for (int q = 0; q < 2000; ++q) {
    const std::string query = random_string(rng, 3);
    CAPTURE(query);
    std::multiset<std::string> expected_exact, expected_prefix, found_exact, found_prefix;
    for (const auto& [id, value] : value_of) {
      if (value == query) expected_exact.insert(id);
      if (value.starts_with(query)) expected_prefix.insert(id);
    }
    for (auto& id : seek_prefix(tree, by_name.exact(query))) found_exact.insert(id);
    for (auto& id : seek_prefix(tree, by_name.prefix(query))) found_prefix.insert(id);
    REQUIRE(found_exact == expected_exact);
    REQUIRE(found_prefix == expected_prefix);
    // A range from lower_bound(exact(query)) visits the values >= query, in order.
    std::string last;
    std::size_t visited = 0;
    for (auto it = tree.lower_bound(by_name.exact(query)); it != tree.end(); ++it, ++visited) {
      const std::string& value = value_of.at(it->second);
      REQUIRE(value >= query);
      REQUIRE(value >= last);
      last = value;
    }
    const auto at_least = std::count_if(value_of.begin(), value_of.end(),
                                        [&](const auto& e) { return e.second >= query; });
    REQUIRE(visited == static_cast<std::size_t>(at_least));
  }
}

TEST_CASE("compound lookups over entries find exactly the matching objects") {
  const std::uint64_t seed = test_seed(18);
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  const store::index_schema schema{.name = "name_size",
                                   .indexer = store::compound_indexer{by_name, by_size}};
  std::map<std::string, std::string> tree;
  std::map<std::string, std::pair<std::string, std::uint64_t>> value_of;
  std::uniform_int_distribution<std::uint64_t> small(0, 3);
  for (int i = 0; i < 400; ++i) {
    item obj;
    obj.name = random_string(rng, 2);
    obj.size = small(rng) << 56;  // high bytes, so a size differs in its first key byte
    if (obj.name.empty()) continue;
    const std::string id = std::to_string(i);
    std::vector<std::string> entries;
    REQUIRE_FALSE(store::append_entry_keys(schema, obj, id, entries));
    tree.emplace(entries.at(0), id);
    value_of[id] = {obj.name, obj.size};
  }
  for (int q = 0; q < 1000; ++q) {
    const std::string name = random_string(rng, 2);
    const std::uint64_t size = small(rng) << 56;
    CAPTURE(name, size);
    std::multiset<std::string> expected_exact, expected_leading, expected_prefix;
    for (const auto& [id, v] : value_of) {
      if (v.first == name && v.second == size) expected_exact.insert(id);
      if (v.first == name) expected_leading.insert(id);
      if (v.first.starts_with(name)) expected_prefix.insert(id);
    }
    const auto found = [&](const std::string& prefix) {
      auto ids = seek_prefix(tree, prefix);
      return std::multiset<std::string>(ids.begin(), ids.end());
    };
    REQUIRE(found(schema.indexer.exact(name, size)) == expected_exact);
    REQUIRE(found(schema.indexer.leading(name)) == expected_leading);
    REQUIRE(found(schema.indexer.prefix(name)) == expected_prefix);
  }
}

TEST_CASE("index names must be non-empty and distinct") {
  constexpr auto good = std::tuple{store::index_schema{.name = "a", .indexer = by_name},
                                   store::index_schema{.name = "b", .indexer = by_size}};
  STATIC_REQUIRE(store::index_names_valid(good));
  STATIC_REQUIRE(store::index_names_valid(std::tuple<>{}));
  constexpr auto twice = std::tuple{store::index_schema{.name = "a", .indexer = by_name},
                                    store::index_schema{.name = "a", .indexer = by_size}};
  STATIC_REQUIRE_FALSE(store::index_names_valid(twice));
  constexpr auto unnamed = std::tuple{store::index_schema{.indexer = by_name}};
  STATIC_REQUIRE_FALSE(store::index_names_valid(unnamed));
  STATIC_REQUIRE(store::index_schemas_for<decltype(good), item>);
  STATIC_REQUIRE_FALSE(store::index_schemas_for<std::tuple<int>, item>);
}

TEST_CASE("visit_index finds a schema by name") {
  const auto schemas = std::tuple{store::index_schema{.name = "name", .indexer = by_name},
                                  store::index_schema{.name = "size", .indexer = by_size}};
  std::string key;
  CHECK(store::visit_index(schemas, "size", [&](const auto& schema) {
    if constexpr (requires { schema.indexer.exact(std::uint64_t{5}); }) {
      key = schema.indexer.exact(std::uint64_t{5});
    }
  }));
  CHECK(key == store::encode_integer(std::uint64_t{5}));
  CHECK_FALSE(store::visit_index(schemas, "nope", [](const auto&) {}));
}
