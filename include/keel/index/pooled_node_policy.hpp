// pooled_node_policy: a node_policy that carves small blocks (up to 256
// bytes, in 8-byte size classes) out of 64 KiB slabs and recycles them
// through per-thread free lists backed by one shared list per size class.
// Leaves and small inner nodes are most of a tree, and a slab block has no
// malloc header and no rounding to 16 bytes: a leaf with a 16-byte key and a
// pointer-sized value takes 32 bytes instead of glibc's 48. Larger or
// over-aligned blocks go to operator new.
//
// Switching it off (STYLE.md: sanitizers must see real allocations): define
// KEEL_DISABLE_FREE_LIST, or build with AddressSanitizer (detected), and
// every call goes to operator new/delete; `enabled` tells which.
//
// Memory: slabs are never returned to the system; they are reused for blocks
// of the same size class. Each thread keeps at most about 32 KiB per class;
// beyond that half of its list goes back to the shared list, so a thread that
// only frees (a reader releasing snapshots) does not hoard memory.
//
// Thread safety: allocate and deallocate may be called from any thread, and a
// block may be freed on another thread than the one that allocated it. The
// shared lists are guarded by one mutex per size class, taken only when a
// thread's own list runs empty or full. Trees may be destroyed during static
// destruction: a thread whose cache is gone uses the shared lists directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "keel/index/node_policy.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define KEEL_INDEX_POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEL_INDEX_POOL_OFF 1
#endif
#endif
#if defined(KEEL_DISABLE_FREE_LIST)
#undef KEEL_INDEX_POOL_OFF
#define KEEL_INDEX_POOL_OFF 1
#endif

namespace keel::index {

namespace detail {

/// The shared half of the pool: one free list and one slab cursor per size
/// class. Immortal (never destroyed), so late frees always have a home.
class block_pool {
 public:
  static constexpr std::size_t granule = 8;
  static constexpr std::size_t max_block = 256;
  static constexpr std::size_t classes = max_block / granule;
  static constexpr std::size_t slab_bytes = std::size_t{64} * 1024;

  struct free_block {
    free_block* next;
  };

  static constexpr std::size_t class_of(std::size_t size) noexcept {
    return (size + granule - 1) / granule - 1;
  }
  static constexpr std::size_t block_size(std::size_t cls) noexcept { return (cls + 1) * granule; }
  /// How many blocks a thread keeps in one class before giving half back.
  static constexpr std::uint32_t thread_cap(std::size_t cls) noexcept {
    const std::size_t by_bytes = std::size_t{32} * 1024 / block_size(cls);
    return static_cast<std::uint32_t>(by_bytes < 32 ? 32 : by_bytes);
  }

  static block_pool& shared() {
    static auto* pool = new block_pool();  // Immortal on purpose.
    return *pool;
  }

  /// Pops up to `want` blocks of class cls into a list; returns its head and
  /// sets `got`. Takes new blocks from a slab when the list runs dry.
  free_block* take(std::size_t cls, std::uint32_t want, std::uint32_t& got) {
    sized_class& c = classes_[cls];
    std::lock_guard<std::mutex> lock(c.mutex);
    free_block* head = nullptr;
    got = 0;
    while (got < want && c.head != nullptr) {
      free_block* b = c.head;
      c.head = b->next;
      b->next = head;
      head = b;
      ++got;
    }
    const std::size_t size = block_size(cls);
    while (got < want) {
      if (c.bump == c.bump_end) {
        // Slabs stay linked from the pool, so leak checkers see them reachable.
        auto* slab = static_cast<char*>(::operator new(slab_bytes));
        *reinterpret_cast<char**>(slab) = c.slabs;
        c.slabs = slab;
        c.bump = slab + alignof(std::max_align_t);
        c.bump_end = c.bump + (slab_bytes - alignof(std::max_align_t)) / size * size;
      }
      auto* b = reinterpret_cast<free_block*>(c.bump);
      c.bump += size;
      b->next = head;
      head = b;
      ++got;
    }
    return head;
  }

  /// Pushes a list of `count` blocks of class cls, from head to tail.
  void give(std::size_t cls, free_block* head, free_block* tail) noexcept {
    sized_class& c = classes_[cls];
    std::lock_guard<std::mutex> lock(c.mutex);
    tail->next = c.head;
    c.head = head;
  }

 private:
  struct sized_class {
    std::mutex mutex;
    free_block* head = nullptr;
    char* bump = nullptr;
    char* bump_end = nullptr;
    char* slabs = nullptr;
  };
  sized_class classes_[classes];
};

/// A thread's own free lists: trivially destructible, so they can be read
/// even after the thread's cache_flusher ran (then `closed` is set).
struct thread_blocks {
  block_pool::free_block* head[block_pool::classes];
  std::uint32_t count[block_pool::classes];
  bool registered;
  bool closed;
};

inline constinit thread_local thread_blocks this_thread_blocks{};

/// Gives a thread's blocks back to the shared lists when the thread ends.
struct cache_flusher {
  cache_flusher() noexcept = default;
  cache_flusher(const cache_flusher&) = delete;
  cache_flusher& operator=(const cache_flusher&) = delete;
  ~cache_flusher() {
    thread_blocks& t = this_thread_blocks;
    for (std::size_t cls = 0; cls < block_pool::classes; ++cls) {
      block_pool::free_block* head = t.head[cls];
      if (head == nullptr) continue;
      block_pool::free_block* tail = head;
      while (tail->next != nullptr) tail = tail->next;
      block_pool::shared().give(cls, head, tail);
      t.head[cls] = nullptr;
      t.count[cls] = 0;
    }
    t.closed = true;
  }
};

inline thread_local cache_flusher this_thread_flusher;

}  // namespace detail

/// Size-class pools with per-thread free lists; see the file comment.
struct pooled_node_policy {
#if defined(KEEL_INDEX_POOL_OFF)
  static constexpr bool enabled = false;
#else
  static constexpr bool enabled = true;
#endif

  static void* allocate(std::size_t size, std::size_t align) {
    if (!enabled || size > detail::block_pool::max_block || align > detail::block_pool::granule) {
      return default_node_policy::allocate(size, align);
    }
    const std::size_t cls = detail::block_pool::class_of(size);
    detail::thread_blocks& t = detail::this_thread_blocks;
    if (t.head[cls] == nullptr) {
      if (t.closed) {
        std::uint32_t got = 0;
        return detail::block_pool::shared().take(cls, 1, got);
      }
      if (!t.registered) {
        t.registered = true;
        (void)&detail::this_thread_flusher;  // Constructs it, so it runs at thread exit.
      }
      std::uint32_t got = 0;
      t.head[cls] =
          detail::block_pool::shared().take(cls, detail::block_pool::thread_cap(cls) / 2, got);
      t.count[cls] = got;
    }
    detail::block_pool::free_block* b = t.head[cls];
    t.head[cls] = b->next;
    --t.count[cls];
    return b;
  }

  static void deallocate(void* block, std::size_t size, std::size_t align) noexcept {
    if (!enabled || size > detail::block_pool::max_block || align > detail::block_pool::granule) {
      default_node_policy::deallocate(block, size, align);
      return;
    }
    const std::size_t cls = detail::block_pool::class_of(size);
    auto* b = static_cast<detail::block_pool::free_block*>(block);
    detail::thread_blocks& t = detail::this_thread_blocks;
    if (t.closed) {
      b->next = nullptr;
      detail::block_pool::shared().give(cls, b, b);
      return;
    }
    b->next = t.head[cls];
    t.head[cls] = b;
    if (++t.count[cls] >= detail::block_pool::thread_cap(cls)) {
      // Keep half, give the other half (the older blocks) back.
      const std::uint32_t keep = t.count[cls] / 2;
      detail::block_pool::free_block* last_kept = t.head[cls];
      for (std::uint32_t i = 1; i < keep; ++i) last_kept = last_kept->next;
      detail::block_pool::free_block* head = last_kept->next;
      detail::block_pool::free_block* tail = head;
      while (tail->next != nullptr) tail = tail->next;
      last_kept->next = nullptr;
      t.count[cls] = keep;
      detail::block_pool::shared().give(cls, head, tail);
    }
  }
};

static_assert(node_policy<pooled_node_policy>);

}  // namespace keel::index
