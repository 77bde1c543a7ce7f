// Node allocation policies of the radix tree (index::tree): where its nodes
// and leaves get their memory.
//
// A policy is a type with two static functions (abseil's stateless policy
// structs); the tree calls them for every inner node and every leaf:
//   P::allocate(size, align) -> void*     a block of at least `size` bytes
//       aligned to `align` (a power of two, at most alignof(max_align_t)),
//       or throws (std::bad_alloc); never returns nullptr;
//   P::deallocate(p, size, align) noexcept  gives back a block that
//       allocate(size, align) returned, with the same size and alignment.
// deallocate may run on any thread, not only the one that allocated the
// block: a snapshot released on a reader thread frees the nodes that no other
// version uses right there. Both functions must therefore be thread-safe.
//
// Shipped policies: default_node_policy (operator new/delete, below) and
// pooled_node_policy (keel/index/pooled_node_policy.hpp, size-class free
// lists that can be switched off).
//
// Thread safety: default_node_policy is stateless and thread-safe.
#pragma once

#include <concepts>
#include <cstddef>
#include <new>

namespace keel::index {

// clang-format off
/// Where a tree's nodes come from; see the file comment for the contract.
template <class P>
concept node_policy = requires(std::size_t size, std::size_t align, void* block) {
  { P::allocate(size, align) } -> std::same_as<void*>;
  { P::deallocate(block, size, align) } noexcept;
};
// clang-format on

/// Plain operator new and delete, sized: what sanitizers and heap profilers
/// see best, and the default.
struct default_node_policy {
  static void* allocate(std::size_t size, std::size_t align) {
    if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) return ::operator new(size);
    return ::operator new (size, std::align_val_t{align});
  }
  static void deallocate(void* block, [[maybe_unused]] std::size_t size,
                         std::size_t align) noexcept {
    // Clang before 19 declares sized deallocation only with -fsized-deallocation.
#if defined(__cpp_sized_deallocation)
    if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(block, size);
    } else {
      ::operator delete (block, size, std::align_val_t{align});
    }
#else
    if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(block);
    } else {
      ::operator delete (block, std::align_val_t{align});
    }
#endif
  }
};

static_assert(node_policy<default_node_policy>);

}  // namespace keel::index
