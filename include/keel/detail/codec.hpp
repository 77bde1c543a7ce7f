// Little-endian fixed-width fields and length-prefixed strings: the byte
// layout of WAL records, snapshot markers and replicated store actions.
// Readers never read past the end of their input and report it instead.
//
// Thread safety: plain values over caller-owned bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace keel::detail {

inline void put_u32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u64(std::byte* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline std::uint32_t get_u32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}
inline std::uint64_t get_u64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

/// Appends little-endian fields to a body under construction.
class body_writer {
 public:
  explicit body_writer(std::byte* at) noexcept : at_(at) {}
  void u8(std::uint8_t v) noexcept { *at_++ = static_cast<std::byte>(v); }
  void u32(std::uint32_t v) noexcept { put_u32(at_, v), at_ += 4; }
  void u64(std::uint64_t v) noexcept { put_u64(at_, v), at_ += 8; }
  void raw(std::string_view s) noexcept {
    if (!s.empty()) std::memcpy(at_, s.data(), s.size());
    at_ += s.size();
  }
  void string(std::string_view s) noexcept {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }

 private:
  std::byte* at_;
};

/// Reads little-endian fields of a body, refusing to read past its end.
class body_reader {
 public:
  explicit body_reader(std::span<const std::byte> body) noexcept : body_(body) {}
  bool u8(std::uint8_t& v) noexcept {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(body_[at_++]);
    return true;
  }
  bool u32(std::uint32_t& v) noexcept {
    if (left() < 4) return false;
    v = get_u32(body_.data() + at_), at_ += 4;
    return true;
  }
  bool u64(std::uint64_t& v) noexcept {
    if (left() < 8) return false;
    v = get_u64(body_.data() + at_), at_ += 8;
    return true;
  }
  bool string(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || left() < n) return false;
    s.assign(reinterpret_cast<const char*>(body_.data() + at_), n);
    at_ += n;
    return true;
  }
  /// A length-prefixed string, viewed in place (valid as long as the input).
  bool view(std::string_view& s) noexcept {
    std::uint32_t n = 0;
    if (!u32(n) || left() < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(body_.data() + at_), n);
    at_ += n;
    return true;
  }
  std::span<const std::byte> rest() noexcept {
    auto r = body_.subspan(at_);
    at_ = body_.size();
    return r;
  }
  std::size_t left() const noexcept { return body_.size() - at_; }

 private:
  std::span<const std::byte> body_;
  std::size_t at_ = 0;
};

}  // namespace keel::detail
