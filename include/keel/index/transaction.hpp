// index::transaction: a writer on top of a tree snapshot. It holds its own
// root; insert, erase and erase_prefix change only nodes it owns alone and
// copy, once, each shared node they go through (detail/mutation.hpp). Reads
// (find, iteration, lower_bound, seek_prefix...) see the uncommitted state.
//
// commit() is O(1): it returns a tree sharing the transaction's root. The
// transaction may go on afterwards; its next writes copy again whatever they
// touch, so the committed tree never changes. Abort by dropping the
// transaction: nothing it did is visible anywhere else.
//
// Writable nodes: go-immutable-radix keeps a bounded cache of the nodes a
// transaction created, to know which it may change in place. Here the
// reference count says it: a node with a count of one, reached through nodes
// with counts of one from the transaction's root, belongs to the transaction
// alone. That costs no memory and has no bound, so every node a transaction
// creates stays writable for it, however large the transaction.
//
// Changed keys: with track_changes(true), every key inserted, replaced or
// erased from then on is recorded; changed_keys() lists each once, sorted
// ascending in byte order. They are kept across commit() and lost with the
// transaction. Memory: at most about twice the distinct keys (duplicates are
// merged as they accumulate).
//
// Iterators, entries and pointers from find() are valid until the next
// write through the transaction.
//
// Thread safety: a transaction is used by one thread at a time (it is not
// copyable, but movable); the trees it starts from and commits may be used
// anywhere, concurrently with it.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/index/detail/mutation.hpp"
#include "keel/index/detail/node.hpp"
#include "keel/index/detail/node_memory.hpp"
#include "keel/index/detail/read_api.hpp"
#include "keel/index/fwd.hpp"
#include "keel/index/iterator.hpp"
#include "keel/index/node_policy.hpp"
#include "keel/index/tree.hpp"

namespace keel::index {

template <class Value, node_policy NodePolicy>
  requires std::copy_constructible<Value>
class transaction {
 public:
  using value_type = Value;
  using policy_type = NodePolicy;
  using tree_type = tree<Value, NodePolicy>;
  using iterator = index::iterator<Value>;
  using reverse_iterator = index::reverse_iterator<Value>;
  using range = index::range<Value>;

  /// A writer starting from base's contents (as base.begin_transaction()).
  explicit transaction(const tree_type& base) noexcept : root_(base.root_), size_(base.size_) {
    detail::retain(root_);
  }
  /// A writer starting from the empty tree.
  transaction() noexcept = default;

  transaction(transaction&& other) noexcept
      : root_(std::exchange(other.root_, detail::child_ptr{})),
        size_(std::exchange(other.size_, 0)),
        tracking_(other.tracking_),
        changed_(std::move(other.changed_)),
        sorted_(std::exchange(other.sorted_, 0)) {}
  transaction& operator=(transaction&& other) noexcept {
    if (this != &other) {
      memory::release(std::exchange(root_, std::exchange(other.root_, detail::child_ptr{})));
      size_ = std::exchange(other.size_, 0);
      tracking_ = other.tracking_;
      changed_ = std::move(other.changed_);
      sorted_ = std::exchange(other.sorted_, 0);
    }
    return *this;
  }
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction() { memory::release(root_); }

  /// Stores value under key. Returns true if the key is new, false if it
  /// replaced a value.
  bool insert(std::string_view key, Value value) {
    const bool added = mutation::insert(root_, key, std::move(value));
    size_ += added ? 1 : 0;
    record(key);
    return added;
  }

  /// Removes key. Returns whether it was there; a miss copies nothing.
  bool erase(std::string_view key) {
    if (!mutation::erase(root_, key)) return false;
    --size_;
    record(key);
    return true;
  }

  /// Removes every key that starts with prefix (every key for ""). Returns
  /// how many there were.
  std::size_t erase_prefix(std::string_view prefix) {
    const std::size_t erased =
        mutation::erase_prefix(root_, prefix, [this](std::string_view key) { record(key); });
    size_ -= erased;
    return erased;
  }

  /// The number of keys now, O(1).
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// The value stored under key now, or nullptr.
  const Value* find(std::string_view key) const noexcept { return reads::find(root_, key); }
  iterator begin() const { return reads::begin(root_); }
  iterator end() const { return reads::end(root_); }
  reverse_iterator rbegin() const { return reads::rbegin(root_); }
  reverse_iterator rend() const { return reads::rend(root_); }
  /// The first key >= key.
  iterator lower_bound(std::string_view key) const { return reads::lower_bound(root_, key); }
  /// The last key <= key, descending from there.
  reverse_iterator reverse_lower_bound(std::string_view key) const {
    return reads::reverse_lower_bound(root_, key);
  }
  /// The keys that start with prefix, ascending.
  range seek_prefix(std::string_view prefix) const { return reads::seek_prefix(root_, prefix); }
  /// The longest stored key that is a prefix of key, and its value.
  std::optional<std::pair<std::string, const Value*>> longest_prefix(std::string_view key) const {
    return reads::longest_prefix(root_, key);
  }

  /// Starts (true) or stops (false) recording changed keys; what was
  /// recorded stays.
  void track_changes(bool on) noexcept { tracking_ = on; }
  /// The keys inserted, replaced or erased while tracking, each once,
  /// ascending. Valid until the next write or call of changed_keys().
  const std::vector<std::string>& changed_keys() const {
    merge_changes();
    return changed_;
  }

  /// The current state as a tree, O(1). The transaction stays usable; its
  /// later writes do not show in the returned tree.
  tree_type commit() const noexcept {
    detail::retain(root_);
    return tree_type(root_, size_);
  }

 private:
  friend struct detail::tree_access;
  using memory = detail::node_memory<Value, NodePolicy>;
  using mutation = detail::mutation<Value, NodePolicy>;
  using reads = detail::read_api<Value>;

  void record(std::string_view key) {
    if (!tracking_) return;
    changed_.emplace_back(key);
    // Merging once the unsorted tail outgrows the sorted head keeps the
    // cost amortized O(log n) per key and the memory under twice the keys.
    if (changed_.size() - sorted_ > sorted_ + 64) merge_changes();
  }

  void merge_changes() const {
    if (sorted_ == changed_.size()) return;
    const auto middle = changed_.begin() + static_cast<std::ptrdiff_t>(sorted_);
    std::sort(middle, changed_.end());
    std::inplace_merge(changed_.begin(), middle, changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    sorted_ = changed_.size();
  }

  detail::child_ptr root_{};
  std::size_t size_ = 0;
  bool tracking_ = false;
  mutable std::vector<std::string> changed_{};
  mutable std::size_t sorted_ = 0;
};

}  // namespace keel::index
