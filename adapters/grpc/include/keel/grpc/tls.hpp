// Mutual TLS for the gRPC transport: credentials from tls_options, and the
// identities a caller's certificate proves. gRPC does the TLS itself (it
// links a well-kept TLS library); keel only loads the PEM material and
// checks that a message's sender is the certificate's node.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "keel/errc.hpp"
#include "keel/grpc/options.hpp"
#include "keel/result.hpp"

namespace keel::rpc {

/// The PEM text of `source`: its file's content or its in-memory text.
/// errc::invalid_argument when it is empty or the file cannot be read.
inline result<std::string> load_pem(const pem_source& source) {
  if (!source.pem.empty()) return source.pem;
  if (source.file.empty()) return errc::invalid_argument;
  std::ifstream in(source.file, std::ios::binary);
  if (!in) return errc::invalid_argument;
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) return errc::invalid_argument;
  return text.str();
}

struct pem_material {
  std::string ca;
  std::string certificate;
  std::string private_key;
};

inline result<pem_material> load_material(const tls_options& tls) {
  auto ca = load_pem(tls.ca);
  if (!ca) return ca.error();
  auto certificate = load_pem(tls.certificate);
  if (!certificate) return certificate.error();
  auto key = load_pem(tls.private_key);
  if (!key) return key.error();
  return pem_material{std::move(*ca), std::move(*certificate), std::move(*key)};
}

/// The server's credentials: it presents its certificate and requires and
/// verifies the client's against the CA.
inline result<std::shared_ptr<::grpc::ServerCredentials>> server_credentials(
    const tls_options& tls) {
  if (tls.plaintext) return ::grpc::InsecureServerCredentials();
  auto material = load_material(tls);
  if (!material) return material.error();
  ::grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material->ca;
  options.pem_key_cert_pairs.push_back({material->private_key, material->certificate});
  return ::grpc::SslServerCredentials(options);
}

/// The client's credentials: it presents its certificate and verifies the
/// server's against the CA (the channel names the identity it expects).
inline result<std::shared_ptr<::grpc::ChannelCredentials>> channel_credentials(
    const tls_options& tls) {
  if (tls.plaintext) return ::grpc::InsecureChannelCredentials();
  auto material = load_material(tls);
  if (!material) return material.error();
  ::grpc::SslCredentialsOptions options;
  options.pem_root_certs = material->ca;
  options.pem_private_key = material->private_key;
  options.pem_cert_chain = material->certificate;
  return ::grpc::SslCredentials(options);
}

/// The identities the caller's certificate proves: its common name and its
/// subject alternative names. Empty on a plaintext connection.
inline std::vector<std::string> peer_identities(const ::grpc::ServerContext& context) {
  std::vector<std::string> identities;
  const auto auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return identities;
  for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const auto& value : auth->FindPropertyValues(property)) {
      identities.emplace_back(value.data(), value.size());
    }
  }
  return identities;
}

}  // namespace keel::rpc
