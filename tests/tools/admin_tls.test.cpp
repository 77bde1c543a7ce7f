// keelctl against an admin server with mutual TLS: an operator certificate
// signed by the cluster's CA gets the status; a plaintext client does not.
#include <catch2/catch.hpp>
#include <string>

#include "../grpc/grpc_test_support.hpp"
#include "keelctl_test_support.hpp"

using namespace keel::test::tools;

TEST_CASE("status over mutual TLS needs a certificate the node's CA signed", "[keelctl][admin]") {
  keel::test::temp_dir root;
  keel::test::test_ca ca;
  const keel::rpc::tls_options node_tls = ca.issue("node-1");
  const keel::rpc::tls_options operator_tls = ca.issue("operator");
  example_cluster c(root.path(), {1}, false);
  keel::rpc::admin_options o;
  o.tls = node_tls;
  auto server = keel::rpc::admin_server<example_runner>::listen(o, c.at(1));
  REQUIRE(server);
  const std::string endpoint = server->address();

  const auto r = run_keelctl({"status", "--endpoint", endpoint, "--cacert", operator_tls.ca.file,
                              "--cert", operator_tls.certificate.file, "--key",
                              operator_tls.private_key.file, "--server-name", "node-1"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(r.out.find("node 1: ") == 0);

  const auto plain =
      run_keelctl({"status", "--endpoint", endpoint, "--insecure", "--timeout", "2"});
  CHECK(plain.rc == 1);
  CHECK(plain.err.find("UNAVAILABLE") != std::string::npos);
}
