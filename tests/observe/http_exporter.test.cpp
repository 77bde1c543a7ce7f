// The HTTP exporter over a real loopback socket: GET /metrics returns the
// rendered text with the Prometheus content type; other paths are 404;
// other methods, malformed and oversized requests are 400.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "keel/observe/http_exporter.hpp"
#include "keel/observe/prometheus_metrics.hpp"

namespace {

/// Sends `request` to 127.0.0.1:port and reads the whole answer.
std::string fetch(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  std::size_t at = 0;
  while (at < request.size()) {
    const ssize_t n = ::send(fd, request.data() + at, request.size() - at, MSG_NOSIGNAL);
    if (n <= 0) break;  // The server may answer and close before reading it all.
    at += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("http exporter: GET /metrics serves the rendered text; anything else is refused",
          "[observe][http]") {
  keel::observe::prometheus_metrics m({{"node", "7"}});
  m.proposed();
  m.proposed();
  auto http = keel::observe::http_exporter::start([&] { return m.render(); });
  REQUIRE(http);
  const std::uint16_t port = (*http)->port();
  REQUIRE(port != 0);

  const std::string body = m.render();
  const std::string ok = fetch(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  CHECK(ok.starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK(ok.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") !=
        std::string::npos);
  CHECK(ok.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") !=
        std::string::npos);
  REQUIRE(ok.find("\r\n\r\n") != std::string::npos);
  CHECK(ok.substr(ok.find("\r\n\r\n") + 4) == body);
  CHECK(ok.find("keel_proposals_total{node=\"7\"} 2\n") != std::string::npos);

  CHECK(fetch(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK(fetch(port, "GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 Not Found\r\n"));
  CHECK(fetch(port, "POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 400 Bad Request\r\n"));
  CHECK(fetch(port, "hello\r\n\r\n").starts_with("HTTP/1.0 400 Bad Request\r\n"));
  CHECK(fetch(port, "GET /metrics HTTP/1.0\r\n").starts_with("HTTP/1.0 400 Bad Request\r\n"));
  const std::string huge = "GET /metrics HTTP/1.0\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
  CHECK(fetch(port, huge).starts_with("HTTP/1.0 400 Bad Request\r\n"));
  // Still serving after the refusals.
  CHECK(fetch(port, "GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 200 OK\r\n"));
}

TEST_CASE("http exporter: a bad address is refused", "[observe][http]") {
  auto http = keel::observe::http_exporter::start([] { return std::string(); }, "not-an-address");
  CHECK(http.error() == keel::errc::invalid_argument);
}

namespace {

/// Connects to 127.0.0.1:port and sends one byte of a request, then nothing.
int stall(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::send(fd, "G", 1, MSG_NOSIGNAL) == 1);
  return fd;
}

}  // namespace

// No timing assertion: the test's guard is that it ends (ctest's timeout).
TEST_CASE("http exporter: a stalled client neither blocks other scrapes for good nor its stop",
          "[observe][http]") {
  auto http = keel::observe::http_exporter::start([] { return std::string("up 1\n"); });
  REQUIRE(http);
  const std::uint16_t port = (*http)->port();
  const int first = stall(port);
  // Served once the stalled connection's deadline passes.
  CHECK(fetch(port, "GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 200 OK\r\n"));
  const int second = stall(port);
  http->reset();  // Returns while `second` is still connected, silent.
  ::close(first);
  ::close(second);
}
