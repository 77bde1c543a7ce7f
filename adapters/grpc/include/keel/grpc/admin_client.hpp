// The admin service's client (proto/keel/admin.proto), as keelctl uses it:
// one channel to one node, a deadline per call, and the server's status
// (its code and message) handed back as it came.
//
// Thread safety: gRPC stubs may be used from several threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "keel/admin.grpc.pb.h"
#include "keel/grpc/options.hpp"
#include "keel/grpc/tls.hpp"
#include "keel/result.hpp"

namespace keel::rpc {

class admin_client {
 public:
  /// A client of the admin server at `endpoint` ("host:port"). With TLS,
  /// `server_name` is the identity its certificate must prove (e.g.
  /// "node-1"); empty means the endpoint's host. errc::invalid_argument
  /// when the TLS material does not load.
  static result<admin_client> connect(const std::string& endpoint, const tls_options& tls,
                                      const std::string& server_name = {}) {
    auto creds = channel_credentials(tls);
    if (!creds) return creds.error();
    ::grpc::ChannelArguments args;
    if (!tls.plaintext && !server_name.empty()) args.SetSslTargetNameOverride(server_name);
    auto channel = ::grpc::CreateCustomChannel(endpoint, *creds, args);
    return admin_client(admin::Admin::NewStub(channel));
  }

  ::grpc::Status status(admin::StatusReply& out, std::chrono::milliseconds timeout) {
    auto context = context_for(timeout);
    return stub_->Status(context.get(), admin::StatusRequest{}, &out);
  }

  ::grpc::Status add_member(std::uint64_t id, const std::string& address, admin::MemberReply& out,
                            std::chrono::milliseconds timeout) {
    admin::AddMemberRequest request;
    request.set_id(id);
    request.set_address(address);
    auto context = context_for(timeout);
    return stub_->AddMember(context.get(), request, &out);
  }

  ::grpc::Status remove_member(std::uint64_t id, admin::MemberReply& out,
                               std::chrono::milliseconds timeout) {
    admin::RemoveMemberRequest request;
    request.set_id(id);
    auto context = context_for(timeout);
    return stub_->RemoveMember(context.get(), request, &out);
  }

  ::grpc::Status metrics(std::string& text, std::chrono::milliseconds timeout) {
    admin::MetricsReply reply;
    auto context = context_for(timeout);
    auto s = stub_->Metrics(context.get(), admin::MetricsRequest{}, &reply);
    if (s.ok()) text = reply.text();
    return s;
  }

 private:
  explicit admin_client(std::unique_ptr<admin::Admin::Stub> stub) : stub_(std::move(stub)) {}

  static std::unique_ptr<::grpc::ClientContext> context_for(std::chrono::milliseconds timeout) {
    auto context = std::make_unique<::grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + timeout);
    return context;
  }

  std::unique_ptr<admin::Admin::Stub> stub_;
};

}  // namespace keel::rpc
