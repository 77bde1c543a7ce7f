// The admin service (proto/keel/admin.proto): what an operator's tool
// (keelctl) asks a running node. admin_server<Runner> serves a runner's
// status and membership calls on its own gRPC server:
//
//   auto admin = keel::rpc::admin_server<runner_type>::listen(
//       {.listen_address = "0.0.0.0:7001", .tls = tls}, *runner);
//
// The node stays the one place that decides: each call goes through the
// runner's public API with the options' timeout, or less when the client's
// deadline comes sooner (a call whose deadline passed is answered
// DEADLINE_EXCEEDED without asking the runner), and the runner's errors
// come back as gRPC statuses whose message says what happened and what to
// do. TLS is mutual, with the transport's options and credentials
// (keel/grpc/tls.hpp); plaintext only when the options ask for it. Metrics
// are served when the options carry a function that renders them.
//
// Thread safety: gRPC calls the service from its own threads; the runner's
// members may be called from any thread. The runner must outlive the
// server; destroying the server stops accepting calls, cancels those still
// in progress after a bounded grace (shutdown_grace, at most the options'
// timeout) and waits for their handlers, which the timeout bounds.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "keel/admin.grpc.pb.h"
#include "keel/errc.hpp"
#include "keel/grpc/options.hpp"
#include "keel/grpc/tls.hpp"
#include "keel/node/status.hpp"
#include "keel/result.hpp"

namespace keel::rpc {

struct admin_options {
  /// Where the admin server listens, "host:port" (port 0: an ephemeral
  /// port, see admin_server::port()).
  std::string listen_address = "127.0.0.1:0";
  /// Mutual TLS as for the transport; plaintext only when asked for.
  tls_options tls{};
  /// How long a call waits for the runner (status, a membership change to apply).
  std::chrono::milliseconds timeout{10'000};
  /// The node's metrics in their text format; Metrics is UNIMPLEMENTED without it.
  std::function<std::string()> metrics{};
};

// clang-format off
/// What the admin server needs of a runner (keel::node::runner has it).
template <class R>
concept admin_runner = requires(R& r, raft::node_id id, std::string address,
                                std::chrono::nanoseconds timeout) {
  { r.status(timeout) } -> std::same_as<result<node::node_status>>;
  { r.add_learner(id, address, timeout) } -> std::same_as<result<std::uint64_t>>;
  { r.remove_member(id, timeout) } -> std::same_as<result<std::uint64_t>>;
};
// clang-format on

/// A runner's error as a gRPC status, with what to do about it.
inline ::grpc::Status admin_status(std::error_code ec, const std::string& context = {}) {
  using ::grpc::StatusCode;
  const std::string what = ec.message() + (context.empty() ? "" : " (" + context + ")");
  if (ec == errc::not_leader || ec == errc::leader_not_ready) {
    return {StatusCode::FAILED_PRECONDITION, what};  // The message says to ask the leader.
  }
  if (ec == errc::timeout) {
    return {StatusCode::DEADLINE_EXCEEDED,
            what + ": the node did not answer in time; the change may still take effect"};
  }
  if (ec == errc::pending_conf_change || ec == errc::transfer_in_progress) {
    return {StatusCode::ABORTED, what + ": another change is in progress; retry once it applied"};
  }
  if (ec == errc::invalid_argument || ec == errc::invalid_conf_change) {
    return {StatusCode::INVALID_ARGUMENT, what};
  }
  if (ec == errc::node_stopped || ec == errc::removed_member || ec == errc::lost_leadership ||
      ec == errc::unavailable) {
    return {StatusCode::UNAVAILABLE, what};
  }
  return {StatusCode::INTERNAL, what};
}

/// The node's status in the admin service's terms.
inline void to_wire(const node::node_status& s, admin::StatusReply& out) {
  out.set_id(s.id);
  out.set_term(s.term);
  out.set_role(s.role);
  out.set_leader(s.leader);
  out.set_commit(s.commit);
  out.set_applied(s.applied);
  out.set_snapshot_index(s.snapshot_index);
  for (const auto id : s.voters) out.add_voters(id);
  for (const auto id : s.learners) out.add_learners(id);
  for (const node::peer_report& p : s.peers) {
    admin::Peer* w = out.add_peers();
    w->set_id(p.id);
    w->set_learner(p.learner);
    w->set_match(p.match);
    w->set_next(p.next);
    w->set_progress(p.progress);
    w->set_recent_active(p.recent_active);
    w->set_reachable(p.transport.reachable);
    w->set_last_error(p.transport.last_error);
    w->set_sent(p.transport.sent);
    w->set_dropped(p.transport.dropped);
    if (p.transport.snapshot) {
      const transport::snapshot_progress& t = *p.transport.snapshot;
      admin::SnapshotTransfer* x = w->mutable_snapshot();
      x->set_index(t.index);
      x->set_term(t.term);
      x->set_bytes_sent(t.bytes_sent);
      x->set_total_bytes(t.total_bytes);
      x->set_bytes_per_second(t.bytes_per_second);
      x->set_eta_seconds(t.eta_seconds);
      x->set_active(t.active);
      x->set_succeeded(t.succeeded);
    }
  }
  out.set_pending_writes(s.pending_writes);
  out.set_pending_reads(s.pending_reads);
  if (s.failure) out.set_failure(s.failure.message());
}

/// How long a call may wait for the runner: `limit`, or what is left until
/// the client's `deadline` when that is sooner; zero once it passed.
inline std::chrono::milliseconds call_budget(std::chrono::system_clock::time_point deadline,
                                             std::chrono::milliseconds limit) {
  const auto now = std::chrono::system_clock::now();
  if (deadline <= now) return std::chrono::milliseconds::zero();
  const auto left = deadline - now;  // No overflow: deadline > now >= epoch.
  if (left >= limit) return limit;
  return std::chrono::duration_cast<std::chrono::milliseconds>(left);
}

template <admin_runner Runner>
class admin_server {
 public:
  /// Starts serving `runner`; errc::invalid_argument when the TLS material
  /// does not load, errc::unavailable when the address cannot be bound.
  static result<admin_server> listen(admin_options options, Runner& runner) {
    auto creds = server_credentials(options.tls);
    if (!creds) return creds.error();
    auto s = std::make_unique<state>(std::move(options), runner);
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort(s->options.listen_address, *creds, &s->port);
    builder.RegisterService(&s->service);
    s->server = builder.BuildAndStart();
    if (!s->server || s->port == 0) return errc::unavailable;
    return admin_server(std::move(s));
  }

  admin_server(admin_server&&) noexcept = default;
  admin_server& operator=(admin_server&&) noexcept = default;
  ~admin_server() = default;

  /// How long destroying the server lets calls in progress finish before
  /// cancelling them (at most the options' timeout).
  static constexpr std::chrono::milliseconds shutdown_grace{2'000};

  /// The port it listens on (the chosen one, for port 0); 0 for a moved-from server.
  int port() const noexcept { return state_ ? state_->port : 0; }
  /// "host:port" with the chosen port; empty for a moved-from server.
  std::string address() const {
    if (!state_) return {};
    const std::string& a = state_->options.listen_address;
    return a.substr(0, a.rfind(':') + 1) + std::to_string(state_->port);
  }

 private:
  class admin_service final : public admin::Admin::Service {
   public:
    admin_service(const admin_options& options, Runner& runner)
        : options_(options), runner_(runner) {}

    ::grpc::Status Status(::grpc::ServerContext* ctx, const admin::StatusRequest*,
                          admin::StatusReply* reply) override {
      const auto budget = call_budget(ctx->deadline(), options_.timeout);
      if (budget <= std::chrono::milliseconds::zero()) return expired();
      auto s = runner_.status(budget);
      if (!s) return admin_status(s.error(), "status");
      to_wire(*s, *reply);
      return ::grpc::Status::OK;
    }

    ::grpc::Status AddMember(::grpc::ServerContext* ctx, const admin::AddMemberRequest* request,
                             admin::MemberReply* reply) override {
      if (request->id() == raft::no_node || request->address().empty()) {
        return {::grpc::StatusCode::INVALID_ARGUMENT, "a member needs an id and an address"};
      }
      const auto budget = call_budget(ctx->deadline(), options_.timeout);
      if (budget <= std::chrono::milliseconds::zero()) return expired();
      auto index = runner_.add_learner(request->id(), request->address(), budget);
      if (!index) return admin_status(index.error(), leader_hint(ctx));
      reply->set_index(*index);
      return ::grpc::Status::OK;
    }

    ::grpc::Status RemoveMember(::grpc::ServerContext* ctx,
                                const admin::RemoveMemberRequest* request,
                                admin::MemberReply* reply) override {
      if (request->id() == raft::no_node) {
        return {::grpc::StatusCode::INVALID_ARGUMENT, "which member? (id 0 is no node)"};
      }
      const auto budget = call_budget(ctx->deadline(), options_.timeout);
      if (budget <= std::chrono::milliseconds::zero()) return expired();
      auto index = runner_.remove_member(request->id(), budget);
      if (!index) return admin_status(index.error(), leader_hint(ctx));
      reply->set_index(*index);
      return ::grpc::Status::OK;
    }

    ::grpc::Status Metrics(::grpc::ServerContext*, const admin::MetricsRequest*,
                           admin::MetricsReply* reply) override {
      if (!options_.metrics) {
        return {::grpc::StatusCode::UNIMPLEMENTED, "this node serves no metrics"};
      }
      reply->set_text(options_.metrics());
      return ::grpc::Status::OK;
    }

   private:
    static ::grpc::Status expired() {
      return {::grpc::StatusCode::DEADLINE_EXCEEDED,
              "the call's deadline passed before the node was asked; retry with a longer timeout"};
    }

    /// "the leader is node N", when this node knows one other than itself.
    /// A courtesy on an error: asks briefly (at most hint_timeout), and not
    /// at all when little of the client's deadline is left.
    std::string leader_hint(const ::grpc::ServerContext* ctx) {
      static constexpr std::chrono::milliseconds hint_timeout{500};
      static constexpr std::chrono::milliseconds too_little{20};
      const auto budget = call_budget(ctx->deadline(), std::min(options_.timeout, hint_timeout));
      if (budget < too_little) return {};
      auto s = runner_.status(budget);
      if (!s || s->leader == raft::no_node || s->leader == s->id) return {};
      return "the leader is node " + std::to_string(s->leader);
    }

    const admin_options& options_;
    Runner& runner_;
  };

  struct state {
    state(admin_options o, Runner& r) : options(std::move(o)), service(options, r) {}
    ~state() {
      if (server) {
        server->Shutdown(std::chrono::system_clock::now() +
                         std::min(shutdown_grace, options.timeout));
      }
    }
    admin_options options;
    admin_service service;
    std::unique_ptr<::grpc::Server> server{};
    int port = 0;
  };

  explicit admin_server(std::unique_ptr<state> s) : state_(std::move(s)) {}

  std::unique_ptr<state> state_;
};

}  // namespace keel::rpc
