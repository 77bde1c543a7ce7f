// The radix tree's node layouts and the read-only navigation inside one node.
//
// A tree is made of leaves and inner nodes, linked by tagged child pointers:
//   leaf<Value>: refcount, suffix length, the value inline, then the key's
//     bytes below the leaf's position (its suffix): the path above a leaf
//     (prefixes and branch bytes) already spells the rest, so storing it
//     again would only cost memory. Iterators assemble keys as they walk.
//   inner nodes, adaptive as in ART (Leis et al., ICDE 2013): a 24-byte
//     header (refcount, kind, child count, prefix length, the leaf of the
//     key that ends here), the kind's child table, then the compressed
//     path's bytes (the prefix), as many as there are:
//       node4    up to 4 children, sorted key bytes + child pointers (64 B)
//       node8    up to 8, the same, one 8-byte word of keys (96 B)
//       node16   up to 16, searched 8 key bytes at a time (SWAR) (168 B)
//       node32   up to 32, likewise (312 B)
//       node256  up to 256: 16 pointers to child_blocks of 16 children
//                each, one per high nibble, absent when empty (152 B +
//                136 B per block)
//
// Why node256 is blocked (and there is no node48): copying a shared node
// takes a reference on each child, an atomic increment on a cache line of
// its own. A flat node256 or node48 costs up to 256 or 48 of those per copy,
// which path copying pays on every transaction that passes through it. A
// blocked node256 shares its blocks: a copy takes one reference per block,
// and a write copies only the one block it changes (16 more), so a copy
// costs at most 32 increments. Keys over small alphabets (ids in base 36)
// fill few blocks, which also makes the node smaller than a node48.
//
// Key layout: an inner node at depth d (bytes of the key consumed above it)
// covers the keys that continue with its prefix; its own `leaf` holds the key
// that ends right after the prefix (so one key may be a prefix of another,
// with any bytes, '\0' included) and stores an empty suffix; a child under
// byte b holds the keys that continue with b. A leaf hanging under byte b
// holds one key, whose remaining bytes may be many (lazy expansion): its
// suffix is the key from the depth right after b.
//
// Invariants of a canonical tree (mutation keeps them; readers do not rely
// on them): an inner node holds at least two entries (children plus its own
// leaf); children are non-null; sorted nodes' key bytes ascend strictly;
// count is the number of children; a node's own leaf stores an empty
// suffix; a node256 has no empty block, and each block counts its children.
//
// Refcounts: every leaf and inner node starts with a counted header; the count
// is the number of parents plus tree handles holding it. A node whose count
// is 1, reached through nodes whose counts are all 1 from a handle that a
// transaction owns, belongs to that transaction alone and may be changed in
// place; anything else is shared and immutable.
//
// Thread safety: nodes are immutable once shared; these functions only read.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

namespace keel::index::detail {

/// The intrusive reference count every node and leaf starts with.
struct counted {
  std::atomic<std::uint32_t> refs{1};
};

enum class node_kind : std::uint8_t { node4, node8, node16, node32, node256 };

struct inner_node;

/// A leaf: the bytes of one key below its parent (the suffix) and its value.
template <class Value>
struct leaf : counted {
  std::uint32_t suffix_size;
  Value value;

  template <class... Args>
  leaf(std::uint32_t size, Args&&... args)
      : suffix_size(size), value(std::forward<Args>(args)...) {}

  char* suffix_data() noexcept { return reinterpret_cast<char*>(this + 1); }
  const char* suffix_data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  std::string_view suffix() const noexcept { return {suffix_data(), suffix_size}; }
  /// Bytes of the block that holds a leaf with a suffix of `size` bytes.
  static constexpr std::size_t block_size(std::size_t size) noexcept { return sizeof(leaf) + size; }
};

/// A pointer to a leaf (low bit set), to an inner node, or to nothing.
class child_ptr {
 public:
  constexpr child_ptr() noexcept = default;
  explicit child_ptr(inner_node* n) noexcept;
  template <class Value>
  explicit child_ptr(leaf<Value>* l) noexcept
      : bits_(reinterpret_cast<std::uintptr_t>(static_cast<counted*>(l)) | 1) {}

  explicit operator bool() const noexcept { return bits_ != 0; }
  bool is_leaf() const noexcept { return (bits_ & 1) != 0; }
  /// Requires: a non-null inner node.
  inner_node* inner() const noexcept;
  /// Requires: a leaf of this Value.
  template <class Value>
  leaf<Value>* as_leaf() const noexcept {
    return static_cast<leaf<Value>*>(header());
  }
  counted* header() const noexcept {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a tagged pointer.
    return reinterpret_cast<counted*>(bits_ & ~std::uintptr_t{1});
  }

  friend bool operator==(child_ptr, child_ptr) = default;

 private:
  std::uintptr_t bits_ = 0;
};

struct inner_node : counted {
  node_kind kind;
  std::uint8_t reserved = 0;
  std::uint16_t count = 0;
  std::uint32_t prefix_size = 0;
  /// The leaf of the key that ends at this node, or null.
  child_ptr leaf{};

  inner_node(node_kind k, std::uint32_t prefix) noexcept : kind(k), prefix_size(prefix) {}
};

/// node4, node8, node16, node32: sorted key bytes and their children.
template <node_kind Kind, int Capacity>
struct sorted_node : inner_node {
  static constexpr node_kind kind_v = Kind;
  static constexpr int capacity = Capacity;
  std::uint8_t keys[Capacity] = {};
  child_ptr children[Capacity] = {};
  using inner_node::inner_node;
};

using node4 = sorted_node<node_kind::node4, 4>;
using node8 = sorted_node<node_kind::node8, 8>;
using node16 = sorted_node<node_kind::node16, 16>;
using node32 = sorted_node<node_kind::node32, 32>;

/// Sixteen children of a node256, those whose byte has one high nibble;
/// shared between versions like a node, with a count of its own.
struct child_block : counted {
  std::uint16_t count = 0;
  child_ptr children[16] = {};
};

struct node256 : inner_node {
  static constexpr node_kind kind_v = node_kind::node256;
  static constexpr int capacity = 256;
  /// blocks[b >> 4] holds the child of byte b at children[b & 15].
  child_block* blocks[16] = {};
  using inner_node::inner_node;

  child_ptr child(std::uint8_t b) const noexcept {
    const child_block* block = blocks[b >> 4];
    return block == nullptr ? child_ptr{} : block->children[b & 15];
  }
};

inline child_ptr::child_ptr(inner_node* n) noexcept
    : bits_(reinterpret_cast<std::uintptr_t>(static_cast<counted*>(n))) {}
inline inner_node* child_ptr::inner() const noexcept { return static_cast<inner_node*>(header()); }

static_assert(sizeof(inner_node) == 24 && sizeof(node4) == 64 && sizeof(node8) == 96 &&
                  sizeof(node16) == 168 && sizeof(node32) == 312 && sizeof(node256) == 152 &&
                  sizeof(child_block) == 136,
              "compact node layouts");
static_assert(alignof(inner_node) == alignof(void*));

/// sizeof the node struct of a kind: where its prefix bytes start.
inline constexpr std::size_t node_struct_size(node_kind kind) noexcept {
  switch (kind) {
    case node_kind::node4:
      return sizeof(node4);
    case node_kind::node8:
      return sizeof(node8);
    case node_kind::node16:
      return sizeof(node16);
    case node_kind::node32:
      return sizeof(node32);
    case node_kind::node256:
      break;
  }
  return sizeof(node256);
}

/// Bytes of the block that holds an inner node of a kind with a prefix.
inline constexpr std::size_t node_block_size(node_kind kind, std::size_t prefix) noexcept {
  return node_struct_size(kind) + prefix;
}

inline constexpr int node_capacity(node_kind kind) noexcept {
  switch (kind) {
    case node_kind::node4:
      return 4;
    case node_kind::node8:
      return 8;
    case node_kind::node16:
      return 16;
    case node_kind::node32:
      return 32;
    case node_kind::node256:
      break;
  }
  return 256;
}

inline constexpr bool is_sorted_kind(node_kind kind) noexcept { return kind <= node_kind::node32; }

/// The key and child arrays of a sorted node (node4 to node32).
struct sorted_arrays {
  std::uint8_t* keys;
  child_ptr* children;
};

/// Requires: is_sorted_kind(n->kind).
inline sorted_arrays sorted_of(const inner_node* cn) noexcept {
  auto* n = const_cast<inner_node*>(cn);  // Callers keep constness themselves.
  switch (n->kind) {
    case node_kind::node4:
      return {static_cast<node4*>(n)->keys, static_cast<node4*>(n)->children};
    case node_kind::node8:
      return {static_cast<node8*>(n)->keys, static_cast<node8*>(n)->children};
    case node_kind::node16:
      return {static_cast<node16*>(n)->keys, static_cast<node16*>(n)->children};
    case node_kind::node32:
    case node_kind::node256:
      break;
  }
  return {static_cast<node32*>(n)->keys, static_cast<node32*>(n)->children};
}

inline char* prefix_data(inner_node* n) noexcept {
  return reinterpret_cast<char*>(n) + node_struct_size(n->kind);
}
inline std::string_view prefix_of(const inner_node* n) noexcept {
  return {reinterpret_cast<const char*>(n) + node_struct_size(n->kind), n->prefix_size};
}

/// Length of the longest common prefix of a and b.
inline std::size_t common_prefix(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  // Eight bytes at a time, then the tail.
  while (i + 8 <= n) {
    std::uint64_t x;
    std::uint64_t y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) {
      if constexpr (std::endian::native == std::endian::little) {
        return i + static_cast<std::size_t>(std::countr_zero(x ^ y) / 8);
      } else {
        break;
      }
    }
    i += 8;
  }
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

inline std::uint8_t byte_at(std::string_view s, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(s[i]);
}

/// Position of b among the first `count` keys of a sorted node with room
/// for `capacity`, or -1. Eight keys per 64-bit word (SWAR zero-byte
/// search), so a node16 costs two word compares and no SIMD.
inline int search_sorted(const std::uint8_t* keys, int count, int capacity,
                         std::uint8_t b) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    if (capacity >= 8) {
      constexpr std::uint64_t ones = 0x0101010101010101ULL;
      constexpr std::uint64_t highs = 0x8080808080808080ULL;
      const std::uint64_t pattern = ones * b;
      for (int base = 0; base < count; base += 8) {
        std::uint64_t word;
        std::memcpy(&word, keys + base, 8);
        word ^= pattern;
        // The lowest set bit marks the first zero byte exactly; bits above
        // it may be false positives, which unique keys make harmless.
        const std::uint64_t hit = (word - ones) & ~word & highs;
        if (hit != 0) {
          const int i = base + std::countr_zero(hit) / 8;
          return i < count ? i : -1;
        }
      }
      return -1;
    }
  }
  for (int i = 0; i < count; ++i) {
    if (keys[i] == b) return i;
  }
  return -1;
}

/// The child under byte b, or null.
inline child_ptr find_child(const inner_node* n, std::uint8_t b) noexcept {
  if (n->kind == node_kind::node256) return static_cast<const node256*>(n)->child(b);
  const sorted_arrays a = sorted_of(n);
  const int i = search_sorted(a.keys, n->count, node_capacity(n->kind), b);
  return i < 0 ? child_ptr{} : a.children[i];
}

/// Where a sorted node stores the child under byte b, or nullptr.
/// Requires: is_sorted_kind(n->kind) (a node256's slots live in blocks that
/// may be shared: node_memory::writable_child_slot).
inline child_ptr* sorted_child_slot(inner_node* n, std::uint8_t b) noexcept {
  const sorted_arrays a = sorted_of(n);
  const int i = search_sorted(a.keys, n->count, node_capacity(n->kind), b);
  return i < 0 ? nullptr : &a.children[i];
}

// --- slots: positions of children inside one node, for ordered walks ---------
//
// A slot is an index into the sorted arrays of node4 to node32 and a byte value
// for node256; slots ascend with the children's bytes. leaf_slot
// stands for the node's own leaf, which sorts before every child.

inline constexpr int leaf_slot = -1;
inline constexpr int no_slot = -2;

/// The first slot after s (s may be leaf_slot), or no_slot.
inline int next_slot(const inner_node* n, int s) noexcept {
  if (n->kind != node_kind::node256) return s + 1 < n->count ? s + 1 : no_slot;
  const auto* m = static_cast<const node256*>(n);
  for (int b = s + 1; b < 256;) {
    const child_block* block = m->blocks[b >> 4];
    if (block == nullptr) {
      b = (b | 15) + 1;
      continue;
    }
    if (block->children[b & 15]) return b;
    ++b;
  }
  return no_slot;
}

/// The last slot before s (s may be 256, past every slot), or no_slot.
inline int prev_slot(const inner_node* n, int s) noexcept {
  if (n->kind != node_kind::node256) {
    const int t = std::min<int>(s, n->count) - 1;
    return t >= 0 ? t : no_slot;
  }
  const auto* m = static_cast<const node256*>(n);
  for (int b = std::min(s, 256) - 1; b >= 0;) {
    const child_block* block = m->blocks[b >> 4];
    if (block == nullptr) {
      b = (b & ~15) - 1;
      continue;
    }
    if (block->children[b & 15]) return b;
    --b;
  }
  return no_slot;
}

inline int first_slot(const inner_node* n) noexcept { return next_slot(n, leaf_slot); }
inline int last_slot(const inner_node* n) noexcept { return prev_slot(n, 256); }

/// The first slot whose byte is >= b, or no_slot.
inline int lower_slot(const inner_node* n, std::uint8_t b) noexcept {
  if (!is_sorted_kind(n->kind)) return next_slot(n, static_cast<int>(b) - 1);
  const std::uint8_t* keys = sorted_of(n).keys;
  for (int i = 0; i < n->count; ++i) {
    if (keys[i] >= b) return i;
  }
  return no_slot;
}

/// The last slot whose byte is <= b, or no_slot.
inline int upper_slot(const inner_node* n, std::uint8_t b) noexcept {
  if (!is_sorted_kind(n->kind)) return prev_slot(n, static_cast<int>(b) + 1);
  const std::uint8_t* keys = sorted_of(n).keys;
  for (int i = n->count - 1; i >= 0; --i) {
    if (keys[i] <= b) return i;
  }
  return no_slot;
}

/// The byte of the child at slot s. Requires: s is a child slot of n.
inline std::uint8_t slot_byte(const inner_node* n, int s) noexcept {
  if (!is_sorted_kind(n->kind)) return static_cast<std::uint8_t>(s);
  return sorted_of(n).keys[s];
}

/// The child at slot s. Requires: s is a child slot of n.
inline child_ptr slot_child(const inner_node* n, int s) noexcept {
  if (n->kind == node_kind::node256) {
    return static_cast<const node256*>(n)->child(static_cast<std::uint8_t>(s));
  }
  return sorted_of(n).children[s];
}

/// Calls f(byte, child) for every child of n in ascending byte order.
template <class F>
void for_each_child(const inner_node* n, F&& f) {
  switch (n->kind) {
    case node_kind::node4:
    case node_kind::node8:
    case node_kind::node16:
    case node_kind::node32: {
      const sorted_arrays a = sorted_of(n);
      for (int i = 0; i < n->count; ++i) f(a.keys[i], a.children[i]);
      return;
    }
    case node_kind::node256:
      break;
  }
  const auto* m = static_cast<const node256*>(n);
  for (int high = 0; high < 16; ++high) {
    const child_block* block = m->blocks[high];
    if (block == nullptr) continue;
    for (int low = 0; low < 16; ++low) {
      if (block->children[low]) f(static_cast<std::uint8_t>(high << 4 | low), block->children[low]);
    }
  }
}

}  // namespace keel::index::detail
