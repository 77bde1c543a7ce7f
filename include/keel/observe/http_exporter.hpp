// http_exporter: a minimal HTTP endpoint for Prometheus scrapes. One thread
// accepts one connection at a time and answers GET /metrics with what the
// application's render function returns (prometheus_metrics::render; one
// exporter per replica, since two renders would repeat HELP and TYPE lines).
//
//   keel::observe::prometheus_metrics m({{"node", "1"}});
//   auto http = keel::observe::http_exporter::start([&] { return m.render(); }, "0.0.0.0", 9100);
//
// Protocol: HTTP/1.0 answers, then the connection closes. A request is read
// until its blank line, at most max_request_bytes (8 KiB); then:
//   - `GET /metrics` (a query string is ignored): 200 with Content-Type
//     `text/plain; version=0.0.4; charset=utf-8`;
//   - GET of any other path: 404;
//   - anything else (another method, a malformed or oversized request, a
//     client whose headers do not arrive before the deadline): 400;
//   - a render function that throws: 500.
// Each connection gets one deadline, connection_deadline (2 seconds) from
// its accept, for reading the request, sending the answer and draining what
// the client sent after it: every recv and send first waits in poll() for
// at most the time left, and for the stop signal too. A client that is too
// slow gets a 400 if it sent part of a request, or nothing, and is closed;
// it cannot hold the thread (or the destructor) longer than that.
// Plain HTTP only: put it behind a proxy, or bind it to loopback, for TLS or
// authentication.
//
// Thread safety: start() and the destructor on one thread; render runs on the
// exporter's thread, so it must be safe to call there (prometheus_metrics'
// render is). POSIX sockets with accept4 and pipe2 (Linux, the BSDs).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "keel/errc.hpp"
#include "keel/result.hpp"

namespace keel::observe {

class http_exporter {
 public:
  /// The longest request (request line and headers) read before a 400.
  static constexpr std::size_t max_request_bytes = 8192;
  /// How long one connection may take, from its accept to its close.
  static constexpr std::chrono::milliseconds connection_deadline{2000};

  /// Listens on address:port (port 0: any free port, see port()) and serves
  /// scrapes from a thread of its own until destroyed. Errors: the system's
  /// (address in use, ...), errc::invalid_argument for a bad IPv4 address.
  static result<std::unique_ptr<http_exporter>> start(std::function<std::string()> render,
                                                      const std::string& address = "127.0.0.1",
                                                      std::uint16_t port = 0) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return errc::invalid_argument;
    std::unique_ptr<http_exporter> self(new http_exporter(std::move(render)));
    // Close-on-exec: a child the application starts does not inherit them.
    self->listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (self->listen_ < 0) return last_error();
    const int yes = 1;
    (void)::setsockopt(self->listen_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(self->listen_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(self->listen_, 16) != 0) {
      return last_error();
    }
    socklen_t len = sizeof sa;
    if (::getsockname(self->listen_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      return last_error();
    }
    self->port_ = ntohs(sa.sin_port);
    if (::pipe2(self->wake_, O_CLOEXEC) != 0) return last_error();
    http_exporter* raw = self.get();
    self->thread_ = std::thread([raw] { raw->loop(); });
    return self;
  }

  http_exporter(const http_exporter&) = delete;
  http_exporter& operator=(const http_exporter&) = delete;

  /// Stops serving and closes the socket. A connection in progress is
  /// abandoned at its next wait (its answer may be cut short).
  ~http_exporter() {
    if (thread_.joinable()) {
      const char stop = 's';
      (void)!::write(wake_[1], &stop, 1);
      thread_.join();
    }
    for (const int fd : {listen_, wake_[0], wake_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }

  /// The port it listens on.
  std::uint16_t port() const noexcept { return port_; }

 private:
  explicit http_exporter(std::function<std::string()> render) : render_(std::move(render)) {}

  static std::error_code last_error() { return {errno, std::system_category()}; }

  using clock = std::chrono::steady_clock;

  /// Waits until `conn` is ready for `events` (POLLIN or POLLOUT): false if
  /// the deadline passes or the exporter is stopping first.
  bool wait_for(int conn, short events, clock::time_point deadline) const {
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) return false;
      pollfd fds[2] = {{.fd = conn, .events = events, .revents = 0},
                       {.fd = wake_[0], .events = POLLIN, .revents = 0}};
      const int n = ::poll(fds, 2, static_cast<int>(left));
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (fds[1].revents != 0) return false;
      // An error or hang-up also ends the wait: the recv or send reports it.
      if (fds[0].revents != 0) return true;
    }
  }

  /// recv() once the connection is readable; -1 on deadline or stop.
  ssize_t receive(int conn, char* buf, std::size_t size, clock::time_point deadline) const {
    if (!wait_for(conn, POLLIN, deadline)) {
      errno = ETIMEDOUT;
      return -1;
    }
    return ::recv(conn, buf, size, MSG_DONTWAIT);
  }

  void loop() {
    for (;;) {
      pollfd fds[2] = {{.fd = listen_, .events = POLLIN, .revents = 0},
                       {.fd = wake_[0], .events = POLLIN, .revents = 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int conn = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;  // The client went away; keep serving.
      const clock::time_point deadline = clock::now() + connection_deadline;
      serve(conn, deadline);
      // Closing with unread bytes would reset the connection and could
      // destroy the answer on its way: read what is left first (bounded in
      // bytes and by the deadline).
      ::shutdown(conn, SHUT_WR);
      char rest[4096];
      for (std::size_t drained = 0; drained < 16 * max_request_bytes;) {
        const ssize_t n = receive(conn, rest, sizeof rest, deadline);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        if (n <= 0) break;
        drained += static_cast<std::size_t>(n);
      }
      ::close(conn);
    }
  }

  void serve(int conn, clock::time_point deadline) {
    std::string request;
    char buf[1024];
    while (request.find("\r\n\r\n") == std::string::npos &&
           request.find("\n\n") == std::string::npos) {
      if (request.size() > max_request_bytes) {
        return reply(conn, 400, "request too large\n", deadline);
      }
      const ssize_t n = receive(conn, buf, sizeof buf, deadline);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) {
        if (request.empty()) return;  // Nothing asked: nothing to answer.
        return reply(conn, 400, "incomplete request\n", deadline);
      }
      request.append(buf, static_cast<std::size_t>(n));
    }
    if (request.size() > max_request_bytes)
      return reply(conn, 400, "request too large\n", deadline);
    // Request line: METHOD SP TARGET SP HTTP/x.y
    const std::string_view line =
        std::string_view(request).substr(0, request.find_first_of("\r\n"));
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/")) {
      return reply(conn, 400, "malformed request\n", deadline);
    }
    if (line.substr(0, sp1) != "GET") return reply(conn, 400, "only GET is served\n", deadline);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));
    if (target != "/metrics") return reply(conn, 404, "not found; try /metrics\n", deadline);
    std::string body;
    try {
      body = render_();
    } catch (...) {
      return reply(conn, 500, "rendering failed\n", deadline);
    }
    reply(conn, 200, body, deadline, "text/plain; version=0.0.4; charset=utf-8");
  }

  void reply(int conn, int status, std::string_view body, clock::time_point deadline,
             std::string_view type = "text/plain; charset=utf-8") const {
    const char* reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 500 ? "Internal Server Error"
                                         : "Bad Request";
    std::string out = "HTTP/1.0 " + std::to_string(status) + " " + reason +
                      "\r\nContent-Type: " + std::string(type) +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n\r\n";
    out += body;
    std::size_t at = 0;
    while (at < out.size()) {
      if (!wait_for(conn, POLLOUT, deadline)) return;
      const ssize_t n = ::send(conn, out.data() + at, out.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) return;
      at += static_cast<std::size_t>(n);
    }
  }

  std::function<std::string()> render_;
  int listen_ = -1;
  int wake_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace keel::observe
