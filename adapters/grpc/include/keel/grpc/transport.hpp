// keel's default network transport: Raft messages over gRPC, snapshots of
// any size streamed in bounded chunks (receiver.hpp receives, peer_link.hpp
// sends), mutual TLS with node identities (tls.hpp). It satisfies
// keel::transport::streaming_transport.
//
//   auto t = keel::rpc::grpc_transport::listen(options);   // the server runs
//   ... t->port() ...                                       // ephemeral ports
//   auto r = replica::open(fs, opts, [&](keel::transport::handler h) {
//     t->attach(std::move(h));
//     return std::move(*t);
//   });
//
// Until attach(), calls that arrive are answered UNAVAILABLE. Destroying
// the transport stops its peers' lanes, then its server (cancelling calls
// in progress); after that no handler is called.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "keel/errc.hpp"
#include "keel/grpc/options.hpp"
#include "keel/grpc/peer_link.hpp"
#include "keel/grpc/receiver.hpp"
#include "keel/grpc/tls.hpp"
#include "keel/grpc/watchdog.hpp"
#include "keel/result.hpp"
#include "keel/transport/transport.hpp"

namespace keel::rpc {

class grpc_transport {
 public:
  static constexpr bool streams_snapshots = true;

  /// Starts the server on options.listen_address. errc::invalid_argument for
  /// bad options or TLS material, errc::unavailable if it cannot listen.
  static result<grpc_transport> listen(transport_options options) {
    if (options.id == raft::no_node) return errc::invalid_argument;
    if (options.chunk_bytes < transport::min_chunk_bytes ||
        options.chunk_bytes > transport::max_chunk_bytes) {
      return errc::invalid_argument;
    }
    auto server_creds = server_credentials(options.tls);
    if (!server_creds) return server_creds.error();
    auto channel_creds = channel_credentials(options.tls);
    if (!channel_creds) return channel_creds.error();
    auto s = std::unique_ptr<state>(new state(std::move(options), std::move(*channel_creds)));
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort(s->options.listen_address, *server_creds, &s->port);
    builder.RegisterService(&s->service);
    // Read from sockets in pieces the allocator recycles: with larger read
    // buffers, page faults on fresh memory dominated the receiver's profile
    // of a streamed snapshot. A fixed 8 MiB window per stream instead of
    // one that BDP probing grows: a receiver busy with an fsync buffered
    // 65 to 130 MiB before (bench.sh snapshot, 1 GiB), about 15 MiB after,
    // at the same throughput (16 MiB measured no faster).
    builder.AddChannelArgument(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 64 * 1024);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 * 1024 * 1024);
    // Keepalive pings find a peer that vanished without closing (a cut
    // cable, a frozen host), so its streams, and a snapshot it was sending,
    // do not hold on for gRPC's default two hours.
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_time_ms);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_timeout_ms);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               keepalive_time_ms / 2);
    s->server = builder.BuildAndStart();
    if (!s->server || s->port == 0) return errc::unavailable;
    return grpc_transport(std::move(s));
  }

  grpc_transport(grpc_transport&&) noexcept = default;
  grpc_transport& operator=(grpc_transport&&) noexcept = default;
  ~grpc_transport() = default;

  /// The port the server listens on (the chosen one, for port 0).
  int port() const noexcept { return state_->port; }
  /// "host:port" with the chosen port.
  std::string address() const {
    const std::string& a = state_->options.listen_address;
    return a.substr(0, a.rfind(':') + 1) + std::to_string(state_->port);
  }

  /// Where the peers are (merged into the options' addresses): what
  /// add_peer(id, "") uses; peers already added move there.
  void set_addresses(const std::map<raft::node_id, std::string>& addresses) {
    std::lock_guard lock(state_->mutex);
    for (const auto& [id, address] : addresses) {
      state_->options.addresses[id] = address;
      if (auto it = state_->peers.find(id); it != state_->peers.end()) {
        it->second->set_address(address);
      }
    }
  }

  /// Hands what arrives to h from now on. Call once, before peers are added.
  void attach(transport::handler h) {
    state_->handler = std::move(h);
    state_->service.attach(state_->handler);
  }

  // --- the transport policy -------------------------------------------------

  void send(raft::message m) {
    std::lock_guard lock(state_->mutex);
    auto it = state_->peers.find(m.to);
    if (it == state_->peers.end()) {
      ++state_->dropped_not_peer;
      return;
    }
    (void)it->second->enqueue(std::move(m));
  }

  /// Makes id a peer at `address`, or at its address in the options when
  /// `address` is empty; a known peer moves to a new non-empty address.
  void add_peer(raft::node_id id, const std::string& address) {
    if (id == state_->options.id) return;
    std::lock_guard lock(state_->mutex);
    std::string where = address;
    if (where.empty()) {
      auto known = state_->options.addresses.find(id);
      if (known != state_->options.addresses.end()) where = known->second;
    } else {
      state_->options.addresses[id] = address;
    }
    auto it = state_->peers.find(id);
    if (it != state_->peers.end()) {
      it->second->set_address(where);
      return;
    }
    state_->removed.erase(id);
    state_->peers.emplace(id, std::make_unique<peer_link>(state_->options, state_->handler,
                                                          state_->channel_credentials, state_->dog,
                                                          id, std::move(where)));
  }

  /// id is no longer a peer: its lanes stop and its messages are refused.
  void remove_peer(raft::node_id id) {
    std::unique_ptr<peer_link> gone;
    {
      std::lock_guard lock(state_->mutex);
      auto it = state_->peers.find(id);
      if (it != state_->peers.end()) {
        state_->last_status[id] = it->second->status();
        gone = std::move(it->second);
        state_->peers.erase(it);
      }
      state_->removed.insert(id);
    }
    state_->service.refuse(id);
  }

  transport::peer_status status(raft::node_id id) const {
    std::lock_guard lock(state_->mutex);
    auto it = state_->peers.find(id);
    if (it != state_->peers.end()) return it->second->status();
    auto last = state_->last_status.find(id);
    return last != state_->last_status.end() ? last->second : transport::peer_status{};
  }

  /// Calls and streams this node's server refused (bad input, identity).
  std::uint64_t refused() const { return state_->service.refused(); }
  /// Writes the watchdog cancelled because they made no progress.
  std::uint64_t stalls_cancelled() const { return state_->dog.cancelled(); }

 private:
  struct state {
    state(transport_options o, std::shared_ptr<::grpc::ChannelCredentials> creds)
        : options(std::move(o)), channel_credentials(std::move(creds)), service(options) {}

    ~state() {
      // Peers first: their lanes may still report to the handler.
      std::map<raft::node_id, std::unique_ptr<peer_link>> stopping;
      {
        std::lock_guard lock(mutex);
        stopping.swap(peers);
      }
      stopping.clear();
      service.detach();
      if (server) {
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
        server->Wait();
      }
    }

    transport_options options;
    std::shared_ptr<::grpc::ChannelCredentials> channel_credentials;
    transport::handler handler{};
    watchdog dog{};
    raft_service service;
    std::unique_ptr<::grpc::Server> server{};
    int port = 0;
    mutable std::mutex mutex{};
    std::map<raft::node_id, std::unique_ptr<peer_link>> peers{};
    std::map<raft::node_id, transport::peer_status> last_status{};
    std::set<raft::node_id> removed{};
    std::uint64_t dropped_not_peer = 0;
  };

  explicit grpc_transport(std::unique_ptr<state> s) : state_(std::move(s)) {}

  std::unique_ptr<state> state_;
};

static_assert(transport::streaming_transport<grpc_transport>);

}  // namespace keel::rpc
