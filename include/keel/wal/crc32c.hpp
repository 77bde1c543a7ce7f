// CRC32C (Castagnoli), the checksum of WAL records and snapshot files.
//
// The portable path is Boost.CRC (header-only, already a keel dependency);
// Debian's libcrc32c would need linking, which a header-only library cannot
// ask of its users. On x86-64 the SSE4.2 crc32 instruction is used when the
// CPU has it (checked once at run time), eight bytes per instruction.
//
// crc32c(data) is the standard value ("123456789" -> 0xE3069283);
// crc32c(crc32c(a), b) == crc32c(a + b).
//
// Thread safety: pure functions.
#pragma once

#include <boost/crc.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace keel::wal {

namespace detail {

/// The portable path; `state` is the register before the final inversion.
inline std::uint32_t crc32c_portable(std::uint32_t state, const unsigned char* p,
                                     std::size_t n) noexcept {
  // Reflected CRC-32C; initial and final XOR are applied by the caller.
  // Boost keeps a reflected CRC's register bit-reversed, so a state that
  // continues an earlier computation goes in reversed.
  std::uint32_t reversed = 0;
  for (int i = 0; i < 32; ++i) reversed |= ((state >> i) & 1u) << (31 - i);
  boost::crc_optimal<32, 0x1EDC6F41, 0, 0, true, true> crc(reversed);
  crc.process_bytes(p, n);
  return crc.checksum();
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KEEL_CRC32C_HARDWARE 1
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hardware(std::uint32_t state,
                                                                       const unsigned char* p,
                                                                       std::size_t n) noexcept {
  std::uint64_t c = state;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}

inline bool cpu_has_crc32_instruction() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

inline std::uint32_t crc32c_update(std::uint32_t state, const unsigned char* p,
                                   std::size_t n) noexcept {
#ifdef KEEL_CRC32C_HARDWARE
  if (cpu_has_crc32_instruction()) return crc32c_hardware(state, p, n);
#endif
  return crc32c_portable(state, p, n);
}

}  // namespace detail

/// The CRC32C of `data`, continuing from `previous` (the CRC32C of the bytes
/// before it, or 0 to start).
inline std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t previous = 0) noexcept {
  return ~detail::crc32c_update(~previous, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
}

inline std::uint32_t crc32c(std::string_view data, std::uint32_t previous = 0) noexcept {
  return crc32c(std::as_bytes(std::span(data.data(), data.size())), previous);
}

/// The portable path alone, for tests that compare both.
inline std::uint32_t crc32c_portable(std::span<const std::byte> data,
                                     std::uint32_t previous = 0) noexcept {
  return ~detail::crc32c_portable(~previous, reinterpret_cast<const unsigned char*>(data.data()),
                                  data.size());
}

}  // namespace keel::wal
