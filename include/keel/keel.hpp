// keel: an embeddable, Raft-replicated, transactional object store.
// This umbrella header includes every layer of the core (header-only, no
// dependencies beyond the standard library and Boost headers).
#pragma once

#include "keel/bytes.hpp"
#include "keel/errc.hpp"
#include "keel/index/tree.hpp"
#include "keel/node/clock.hpp"
#include "keel/node/replica.hpp"
#include "keel/node/runner.hpp"
#include "keel/node/status.hpp"
#include "keel/node/store_actions.hpp"
#include "keel/node/store_snapshot.hpp"
#include "keel/observe/log.hpp"
#include "keel/observe/metrics.hpp"
#include "keel/observe/policies.hpp"
#include "keel/observe/prometheus_metrics.hpp"
#include "keel/observe/prometheus_text.hpp"
#include "keel/raft/memory_storage.hpp"
#include "keel/raft/raw_node.hpp"
#include "keel/result.hpp"
#include "keel/store/protobuf_traits.hpp"
#include "keel/store/store.hpp"
#include "keel/transport/delivery_pump.hpp"
#include "keel/transport/in_process.hpp"
#include "keel/wal/snapshot_store.hpp"
#include "keel/wal/wal.hpp"
