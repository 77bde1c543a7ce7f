// The gRPC transport's settings, with the defaults a production cluster
// wants. Sizes are bytes, durations wall-clock time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "keel/raft/types.hpp"
#include "keel/transport/chunker.hpp"

namespace keel::rpc {

/// gRPC's default limit on one message, kept on both sides: large payloads
/// are streamed in chunks instead of raising it.
inline constexpr std::size_t grpc_message_limit = 4 * 1024 * 1024;

/// Keepalive pings on every connection, both ways: a peer silent for this
/// long is pinged, and dropped if it does not answer within the timeout.
inline constexpr int keepalive_time_ms = 10'000;
inline constexpr int keepalive_timeout_ms = 5'000;

/// Where a certificate or key comes from: a file, or PEM text in memory.
struct pem_source {
  std::string file{};
  std::string pem{};

  bool empty() const noexcept { return file.empty() && pem.empty(); }
};

/// Mutual TLS. Every node presents a certificate signed by `ca` whose common
/// name or one of whose subject alternative names is the node's identity
/// (identity_of(id)); a message whose sender is not the certificate's
/// identity is refused with PERMISSION_DENIED.
struct tls_options {
  /// Off only when explicitly asked for: plaintext is for tests and
  /// trusted networks.
  bool plaintext = false;
  pem_source ca{};
  pem_source certificate{};
  pem_source private_key{};
};

/// A node's identity in certificates: "node-<id>" unless told otherwise.
inline std::string default_identity(raft::node_id id) { return "node-" + std::to_string(id); }

struct transport_options {
  raft::node_id id = raft::no_node;
  /// Where this node listens, "host:port" (port 0: an ephemeral port, see
  /// grpc_transport::port()).
  std::string listen_address = "127.0.0.1:0";
  /// The known peers' addresses; add_peer(id, "") looks a peer up here.
  std::map<raft::node_id, std::string> addresses{};
  tls_options tls{};
  std::function<std::string(raft::node_id)> identity_of = default_identity;

  /// Messages and snapshot content are streamed in chunks of this size
  /// (64 KiB to 4 MiB less a margin for the header).
  std::size_t chunk_bytes = transport::default_chunk_bytes;
  /// A stream whose current write makes no progress for this long is
  /// cancelled; a stream that progresses never times out.
  std::chrono::milliseconds chunk_timeout{10'000};
  /// The largest snapshot this node accepts.
  std::uint64_t max_snapshot_bytes = std::uint64_t{64} * 1024 * 1024 * 1024;
  /// The largest message (other than a snapshot's content) it accepts.
  std::uint64_t max_message_bytes = 64 * 1024 * 1024;
  /// A receiver makes the snapshot bytes it holds durable this often, so a
  /// transfer resumes from there even after a crash.
  std::uint64_t checkpoint_bytes = 64 * 1024 * 1024;
  /// A partly received snapshot is kept this long after its stream broke.
  std::chrono::milliseconds partial_expiry{10 * 60 * 1000};
  /// Messages waiting for one peer; more are dropped and reported unreachable.
  std::size_t queue_capacity = 4096;
  /// Reconnection backoff after a failed connection or stream.
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2'000};
  /// A snapshot transfer gives up after this many attempts in a row without
  /// progress.
  int snapshot_attempts = 5;
  /// Where the transport tells what it does (connections, snapshot
  /// progress); optional.
  std::function<void(const std::string&)> log{};
};

}  // namespace keel::rpc
