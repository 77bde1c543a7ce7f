// The observation policies of a node, bundled: which metrics policy and
// which logging policy a replica (and the runner around it) reports to.
//
//   struct my_observe : keel::observe::defaults {
//     using metrics = keel::observe::prometheus_metrics;
//   };
//   keel::node::basic_runner<my_observe, Clock, FS, Transport, Task> ...
//
// A bundle names types; the objects are the application's, handed to the
// replica by pointer when it opens (observers<P>), because they outlive it
// and are read from other threads (a scrape). A silent policy (null_metrics,
// null_log) needs no object: the replica uses a static one of its own.
#pragma once

#include "keel/observe/log.hpp"
#include "keel/observe/metrics.hpp"

namespace keel::observe {

/// Record nothing, log nothing: what replica<> and runner<> use.
struct defaults {
  using metrics = null_metrics;
  using log = null_log;
};

/// A bundle: `P::metrics` satisfies observe::metrics, `P::log` observe::logger.
template <class P>
concept policy_bundle = metrics<typename P::metrics> && logger<typename P::log>;

/// The application's policy objects for one replica. A null pointer is
/// allowed only for a silent policy. Requires: the objects outlive the replica.
template <policy_bundle P>
struct observers {
  typename P::metrics* metrics = nullptr;
  typename P::log* log = nullptr;
};

static_assert(policy_bundle<defaults>);

}  // namespace keel::observe
