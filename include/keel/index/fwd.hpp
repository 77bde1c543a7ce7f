// Forward declarations of the index layer's public templates, with their
// default arguments, so a header that only names a tree stays cheap.
#pragma once

#include <concepts>

#include "keel/index/node_policy.hpp"

namespace keel::index {

template <class Value>
struct entry;
template <class Value>
class range;

template <class Value, node_policy NodePolicy = default_node_policy>
  requires std::copy_constructible<Value>
class tree;

template <class Value, node_policy NodePolicy = default_node_policy>
  requires std::copy_constructible<Value>
class transaction;

struct pooled_node_policy;

}  // namespace keel::index
