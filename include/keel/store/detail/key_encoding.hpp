// Order-preserving, prefix-free encodings of index key parts: the bytes the
// store's radix trees are keyed by. Comparing two encodings as unsigned byte
// strings (std::string's operator<, memcmp) gives the order of the values,
// and no encoding of a complete value is a proper prefix of another, so parts
// can be concatenated (compound keys, index key + id) and split unambiguously.
//
// Formats (all big-endian, no length prefixes):
//
//   string  each byte b of the value becomes
//             0x00 -> 0x01 0x01,  0x01 -> 0x01 0x02,  other b -> b
//           followed by the terminator 0x00. The escaped body never contains
//           0x00, so the terminator ends it unambiguously and sorts below any
//           byte that continues a longer string ("a" < "a\0" < "a\1" < "ab").
//           A string without bytes 0x00/0x01 (all text) encodes as its bytes
//           plus '\0', exactly as go-memdb's StringFieldIndex.
//   string prefix
//           the escaped body without the terminator: a byte-prefix of the
//           encoding of every string that starts with the prefix, and of no
//           other string (the escape is a prefix-free code).
//   unsigned integer of N bytes
//           its N bytes, most significant first.
//   signed integer of N bytes
//           the two's complement bits with the sign bit flipped, most
//           significant first, so INT_MIN encodes as 00.., -1 as 7f ff..,
//           0 as 80 00.. and INT_MAX as ff ff...
//   enum    as its underlying integer type.
//   bool    one byte: 0x00 false, 0x01 true.
//
// Thread safety: pure functions.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace keel::store::detail {

/// The escape byte; see the banner.
inline constexpr char string_escape = '\x01';
/// Ends an encoded string.
inline constexpr char string_terminator = '\0';

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Appends the escaped body of s (no terminator), ASCII-lower-cased if lower.
inline void append_string_body(std::string& out, std::string_view s, bool lower) {
  out.reserve(out.size() + s.size() + 1);
  for (char c : s) {
    if (lower) c = ascii_lower(c);
    if (c == '\0' || c == string_escape) {
      out.push_back(string_escape);
      out.push_back(static_cast<char>(c + 1));  // 0x00 -> 0x01, 0x01 -> 0x02
    } else {
      out.push_back(c);
    }
  }
}

/// Appends the complete encoding of s: escaped body and terminator.
inline void append_string(std::string& out, std::string_view s, bool lower) {
  append_string_body(out, s, lower);
  out.push_back(string_terminator);
}

/// Reads one complete string encoding from the front of in, advancing in past
/// it. Returns false (in unchanged) if in does not start with a well-formed
/// encoding. The inverse of append_string with lower == false.
inline bool read_string(std::string_view& in, std::string& value) {
  std::string decoded;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == string_terminator) {
      value = std::move(decoded);
      in.remove_prefix(i + 1);
      return true;
    }
    if (c == string_escape) {
      if (i + 1 == in.size()) return false;
      const char next = in[++i];
      if (next != '\x01' && next != '\x02') return false;
      decoded.push_back(static_cast<char>(next - 1));
    } else {
      decoded.push_back(c);
    }
  }
  return false;
}

/// Integer and enum types that have an integer key encoding (bool has its own).
template <class V>
concept key_integer =
    (std::integral<V> && !std::same_as<std::remove_cv_t<V>, bool>) || std::is_enum_v<V>;

template <class V>
struct key_integer_repr {
  using type = V;
};
template <class V>
  requires std::is_enum_v<V>
struct key_integer_repr<V> {
  using type = std::underlying_type_t<V>;
};

/// Appends the fixed-width, order-preserving encoding of an integer or enum.
template <key_integer V>
void append_integer(std::string& out, V value) {
  using repr = typename key_integer_repr<V>::type;
  using bits_t = std::make_unsigned_t<repr>;
  auto bits = static_cast<bits_t>(static_cast<repr>(value));
  if constexpr (std::is_signed_v<repr>) {
    bits = static_cast<bits_t>(bits ^ (bits_t{1} << (8 * sizeof(bits_t) - 1)));
  }
  for (std::size_t i = sizeof(bits_t); i-- > 0;) {
    out.push_back(static_cast<char>(static_cast<unsigned char>(bits >> (8 * i))));
  }
}

/// Appends the one-byte encoding of a bool.
inline void append_bool(std::string& out, bool value) { out.push_back(value ? '\x01' : '\x00'); }

}  // namespace keel::store::detail
