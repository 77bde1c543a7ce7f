// The object the cluster simulation stores: a register, one per key, whose
// id is the key and whose value is a string. Its traits are the smallest
// that satisfy keel::store::object (no secondary indexes).
//
// Encoding: the tag 'r', then id and value as 8-byte little-endian lengths
// followed by their bytes, then the version as 8 bytes little-endian.
//
// Thread safety: a plain value; the traits are stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "keel/errc.hpp"
#include "keel/result.hpp"
#include "keel/store/object_traits.hpp"

namespace keel::sim {

struct register_object {
  std::string id;
  std::string value;
  std::uint64_t version = 0;

  bool operator==(const register_object&) const = default;
};

}  // namespace keel::sim

template <>
struct keel::store::object_traits<keel::sim::register_object> {
  using object = keel::sim::register_object;
  static constexpr std::string_view table = "register";
  static std::string_view id(const object& o) { return o.id; }
  static std::uint64_t version(const object& o) { return o.version; }
  static void set_version(object& o, std::uint64_t v) { o.version = v; }

  static std::string encode(const object& o) {
    std::string out = "r";
    put(out, o.id.size());
    out += o.id;
    put(out, o.value.size());
    out += o.value;
    put(out, o.version);
    return out;
  }

  static keel::result<object> decode(std::string_view in) {
    object o;
    std::uint64_t size = 0;
    if (in.empty() || in.front() != 'r') return keel::errc::invalid_object;
    in.remove_prefix(1);
    if (!get(in, size) || size > in.size()) return keel::errc::invalid_object;
    o.id = in.substr(0, size);
    in.remove_prefix(size);
    if (!get(in, size) || size > in.size()) return keel::errc::invalid_object;
    o.value = in.substr(0, size);
    in.remove_prefix(size);
    if (!get(in, o.version) || !in.empty()) return keel::errc::invalid_object;
    return o;
  }

  static constexpr auto indexes() { return std::tuple<>{}; }

 private:
  static void put(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  static bool get(std::string_view& in, std::uint64_t& v) {
    if (in.size() < 8) return false;
    v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    }
    in.remove_prefix(8);
    return true;
  }
};

static_assert(keel::store::object<keel::sim::register_object>);
