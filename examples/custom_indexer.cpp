// A user-written indexer: the indexer policy (keel::store::indexer,
// store/indexer.hpp).
//
// Images are tagged with semantic versions ("1.9.4", "1.10.0"). A string
// index sorts those tags as text, so "1.10.0" comes before "1.9.4" and a
// range query "from 1.9" is wrong. semver_indexer parses the tag and files
// the image under an order-preserving key: the three numbers, each as a
// fixed-width big-endian integer (keel::store::encode_integer), so byte order
// is version order. The example shows
//
//   - an exact query ("1.10.0") and a prefix query ("every 1.10.x"), through
//     the ordinary by_index selector;
//   - a range query [1.9, 1.11) with for_each_from (a lower bound in the
//     index), and the newest 1.x with for_each_reverse;
//   - an image whose tag is not a version ("latest") left out of the index
//     (allow_missing), and the same range over a plain string index going
//     wrong, for contrast.
//
// The keys keep the invariants indexer.hpp asks for: a function of the
// object alone, and prefix-free (every key is exactly 12 bytes).
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "example_cluster.hpp"
#include "keel/keel.hpp"

namespace demo {

/// Up to three version numbers, "1", "1.10" or "1.10.2"; each below a million.
struct semver_parts {
  std::uint32_t numbers[3] = {0, 0, 0};
  int count = 0;
};

/// Parses "MAJOR[.MINOR[.PATCH]]"; nothing for anything else ("latest", "1.x", "1..2").
inline std::optional<semver_parts> parse_semver(std::string_view s) {
  semver_parts out;
  while (out.count < 3) {
    std::uint32_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || end == s.data() || n >= 1'000'000) return std::nullopt;
    out.numbers[out.count++] = n;
    s.remove_prefix(static_cast<std::size_t>(end - s.data()));
    if (s.empty()) return out;
    if (s.front() != '.') return std::nullopt;
    s.remove_prefix(1);
  }
  return std::nullopt;  // A fourth part.
}

/// Indexes a string field holding a semantic version by its numeric value.
///  - key of an object: its three numbers, 4 bytes each, big-endian; an
///    object whose field is not a full MAJOR.MINOR.PATCH has no key.
///  - exact(v) and prefix(v) for a query value "1", "1.10" or "1.10.2": the
///    key of the numbers given, so a partial version names every version
///    under it. A query that is not a version gets a key no object has.
template <class Get>
class semver_indexer {
 public:
  constexpr explicit semver_indexer(Get get) : get_(std::move(get)) {}

  template <class T>
  void append_keys(const T& obj, std::vector<std::string>& keys) const {
    const auto parts = parse_semver(std::invoke(get_, obj));
    if (!parts || parts->count != 3) return;  // Missing: not a release version.
    keys.push_back(encode(*parts));
  }

  std::string exact(const std::string& value) const { return query(value); }
  std::string prefix(const std::string& value) const { return query(value); }

 private:
  static std::string encode(const semver_parts& parts) {
    std::string key;
    for (int i = 0; i < parts.count; ++i) key += keel::store::encode_integer(parts.numbers[i]);
    return key;
  }

  static std::string query(std::string_view value) {
    const auto parts = parse_semver(value);
    // Numbers stay below a million, so no key starts with 0xff.
    return parts ? encode(*parts) : std::string(13, '\xff');
  }

  [[no_unique_address]] Get get_;
};

struct image {
  std::string id;
  std::string tag;
  std::uint64_t version = 0;
};

struct image_indexes {
  static constexpr semver_indexer release{&image::tag};
  static constexpr keel::store::string_indexer tag{&image::tag};
};

static_assert(keel::store::indexer<semver_indexer<std::string image::*>, image>);

}  // namespace demo

template <>
struct keel::store::object_traits<demo::image> {
  static constexpr std::string_view table = "image";
  static std::string_view id(const demo::image& i) { return i.id; }
  static std::uint64_t version(const demo::image& i) { return i.version; }
  static void set_version(demo::image& i, std::uint64_t v) { i.version = v; }
  // This example never replicates images: a minimal codec, "tag\nid".
  static std::string encode(const demo::image& i) { return i.tag + "\n" + i.id; }
  static keel::result<demo::image> decode(std::string_view in) {
    const auto nl = in.find('\n');
    if (nl == std::string_view::npos || nl + 1 == in.size()) return keel::errc::invalid_object;
    return demo::image{.id = std::string(in.substr(nl + 1)), .tag = std::string(in.substr(0, nl))};
  }
  static constexpr auto indexes() {
    using ix = demo::image_indexes;
    return std::tuple{
        index_schema{.name = "release", .allow_missing = true, .indexer = ix::release},
        index_schema{.name = "tag", .indexer = ix::tag},
    };
  }
};

namespace {

using demo::image;
using keel::examples::check;
using keel::store::by_index;
using keel::store::query_mode;

using tags = std::vector<std::string>;

std::string joined(const tags& t) {
  std::string out;
  for (const auto& s : t) out += (out.empty() ? "" : " ") + s;
  return out;
}

template <class Tx, class Selector>
tags find_tags(const Tx& tx, const Selector& sel) {
  tags out;
  auto found = tx.template find<image>(sel);
  if (!found) throw keel::examples::check_failed("query: " + found.error().message());
  for (const auto& i : *found) out.push_back(i->tag);
  return out;
}

/// Tags from the lower bound `from` in `index` while below `to` (by semver).
template <class Tx>
tags range(const Tx& tx, std::string_view index, const std::string& from, const std::string& to) {
  tags out;
  const auto upper = demo::parse_semver(to);
  auto ec = tx.template for_each_from<image>(
      index,
      [&](const auto& i) {
        const auto v = demo::parse_semver(i->tag);
        const bool below =
            v && std::tie(v->numbers[0], v->numbers[1], v->numbers[2]) <
                     std::tie(upper->numbers[0], upper->numbers[1], upper->numbers[2]);
        if (!below) return false;
        out.push_back(i->tag);
        return true;
      },
      from);
  if (ec) throw keel::examples::check_failed("range: " + ec.message());
  return out;
}

}  // namespace

int main() {
  return keel::examples::run_example([] {
    keel::store::store<image> store;
    std::printf("Images tagged 1.2.0 1.9.4 1.9.12 1.10.0 1.10.3 1.11.1 2.0.0 latest.\n");
    auto ec = store.update([](auto& tx) -> std::error_code {
      int n = 0;
      for (const char* tag :
           {"1.10.3", "1.9.12", "2.0.0", "1.2.0", "latest", "1.10.0", "1.11.1", "1.9.4"}) {
        if (auto e = tx.create(image{.id = "img-" + std::to_string(++n), .tag = tag})) return e;
      }
      return {};
    });
    check(!ec, "eight images created");

    store.view([](const auto& tx) {
      const tags exact =
          find_tags(tx, by_index("release", query_mode::exact, std::string("1.10.0")));
      std::printf("  exact 1.10.0: %s\n", joined(exact).c_str());
      check(exact == tags{"1.10.0"}, "the exact query finds one image");

      const tags minor =
          find_tags(tx, by_index("release", query_mode::prefix, std::string("1.10")));
      std::printf("  prefix 1.10: %s\n", joined(minor).c_str());
      check(minor == tags{"1.10.0", "1.10.3"}, "the prefix query finds every 1.10.x, in order");

      const tags all = find_tags(tx, by_index("release", query_mode::all));
      std::printf("  whole index: %s\n", joined(all).c_str());
      check(all == tags{"1.2.0", "1.9.4", "1.9.12", "1.10.0", "1.10.3", "1.11.1", "2.0.0"},
            "the index is in version order and leaves \"latest\" out");

      const tags window = range(tx, "release", "1.9", "1.11.0");
      std::printf("  range [1.9, 1.11): %s\n", joined(window).c_str());
      check(window == tags{"1.9.4", "1.9.12", "1.10.0", "1.10.3"},
            "the range query returns 1.9.x and 1.10.x");

      std::string newest;
      (void)tx.template for_each_reverse<image>(
          "release",
          [&](const auto& i) {
            newest = i->tag;
            return false;
          },
          std::string("1"));
      std::printf("  newest 1.x: %s\n", newest.c_str());
      check(newest == "1.11.1", "the reverse scan from 1 finds the newest 1.x");

      const tags text = range(tx, "tag", "1.9", "1.11.0");
      std::printf("  the same range over the plain string index: %s\n", joined(text).c_str());
      check(text != window, "a string index sorts 1.10 before 1.9, so its range is wrong");
    });
  });
}
