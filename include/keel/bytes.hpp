// bytes: an immutable, reference-counted byte string. A log entry's payload
// travels from a proposal into the unstable log, each follower's append
// message, the ready handed to the node layer, the storage and the committed
// entries; with bytes every one of those is a pointer copy, not an
// allocation and a memcpy (etcd-io/raft shares Go slices for the same
// reason).
//
// Layout: one heap block holding the reference count, the size and the
// bytes, so a payload costs a single allocation; the empty string holds no
// block at all.
//
// Thread safety: like std::shared_ptr<const char[]>. The contents never
// change; copies may be made and destroyed on different threads.
#pragma once

#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

class bytes {
 public:
  bytes() noexcept = default;
  bytes(std::string_view s) : block_(make(s)) {}               // NOLINT: implicit by design
  bytes(const char* s) : bytes(std::string_view(s)) {}         // NOLINT
  bytes(const std::string& s) : bytes(std::string_view(s)) {}  // NOLINT

  bytes(const bytes& other) noexcept : block_(other.block_) {
    if (block_ != nullptr) block_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  bytes(bytes&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  bytes& operator=(const bytes& other) noexcept {
    bytes copy(other);
    swap(copy);
    return *this;
  }
  bytes& operator=(bytes&& other) noexcept {
    bytes moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~bytes() { release(); }

  void swap(bytes& other) noexcept { std::swap(block_, other.block_); }

  const char* data() const noexcept { return block_ == nullptr ? "" : block_->data(); }
  std::size_t size() const noexcept { return block_ == nullptr ? 0 : block_->size; }
  bool empty() const noexcept { return size() == 0; }
  const char* begin() const noexcept { return data(); }
  const char* end() const noexcept { return data() + size(); }

  std::string_view view() const noexcept { return {data(), size()}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit by design
  /// A copy as a std::string.
  std::string str() const { return std::string(view()); }

  friend bool operator==(const bytes& a, const bytes& b) noexcept {
    return a.block_ == b.block_ || a.view() == b.view();
  }
  friend bool operator==(const bytes& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const bytes& a, const char* b) noexcept { return a.view() == b; }
  friend bool operator==(const bytes& a, const std::string& b) noexcept { return a.view() == b; }
  friend std::strong_ordering operator<=>(const bytes& a, const bytes& b) noexcept {
    return a.view() <=> b.view();
  }
  friend std::ostream& operator<<(std::ostream& os, const bytes& b) { return os << b.view(); }

 private:
  struct block {
    std::atomic<std::uint32_t> refs;
    std::uint32_t size;
    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
  };

  static block* make(std::string_view s) {
    if (s.empty()) return nullptr;
    // Payloads are bounded far below 4 GiB by every message and proposal
    // limit; anything larger is a caller bug, not input.
    if (s.size() > UINT32_MAX) throw std::length_error("keel::bytes: payload over 4 GiB");
    void* raw = ::operator new(sizeof(block) + s.size());
    auto* b = new (raw) block{{1}, static_cast<std::uint32_t>(s.size())};
    std::memcpy(b->data(), s.data(), s.size());
    return b;
  }

  void release() noexcept {
    if (block_ == nullptr) return;
    if (block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      block_->~block();
      ::operator delete(block_);
    }
    block_ = nullptr;
  }

  block* block_ = nullptr;
};

}  // namespace keel
