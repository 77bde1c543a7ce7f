// Members of a keel cluster as separate processes talking gRPC, for the
// demo and the cluster benchmark. The parent re-executes its own program
// with `--replica ID` for every other member; each child listens on an
// ephemeral loopback port, prints "port N", reads one line naming every
// member's address ("1=127.0.0.1:4100 2=..."), then runs its replica until
// its stdin closes (the parent stopped it or died) or it is killed.
// Whatever else a child prints reaches the parent's stdout, line by line,
// with the member's name in front.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "keel/grpc/transport.hpp"
#include "keel/raft/types.hpp"

namespace keel::examples {

using address_book = std::map<raft::node_id, std::string>;

/// "1=host:port 2=host:port".
inline std::string format_addresses(const address_book& book) {
  std::string line;
  for (const auto& [id, address] : book) {
    if (!line.empty()) line += ' ';
    line += std::to_string(id) + "=" + address;
  }
  return line;
}

inline address_book parse_addresses(const std::string& line) {
  address_book book;
  std::istringstream in(line);
  std::string item;
  while (in >> item) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) continue;
    book[std::strtoull(item.substr(0, eq).c_str(), nullptr, 10)] = item.substr(eq + 1);
  }
  return book;
}

/// A member running in a child process (the parent's side).
class replica_process {
 public:
  /// Starts this program again as `--replica id args...` and waits for the
  /// port it listens on; `name` prefixes what it prints.
  static std::unique_ptr<replica_process> spawn(raft::node_id id, std::vector<std::string> args,
                                                std::string name) {
    // A child that died must not kill this process when it writes to it.
    std::signal(SIGPIPE, SIG_IGN);
    int to_child[2];
    int from_child[2];
    // Close-on-exec, so that later children do not hold this one's pipes
    // open (its stdin would never see end-of-file).
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) return nullptr;
    const pid_t pid = ::fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(fd);
      std::vector<std::string> words{"keel-member", "--replica", std::to_string(id)};
      words.insert(words.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& w : words) argv.push_back(w.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::_Exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    std::unique_ptr<replica_process> p(
        new replica_process(id, pid, to_child[1], ::fdopen(from_child[0], "r"), std::move(name)));
    if (!p->read_port()) return nullptr;
    p->relay_ = std::thread([raw = p.get()] { raw->relay(); });
    return p;
  }

  replica_process(const replica_process&) = delete;
  replica_process& operator=(const replica_process&) = delete;

  ~replica_process() { stop(); }

  raft::node_id id() const noexcept { return id_; }
  int port() const noexcept { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Sends one line to the child's stdin.
  void send_line(const std::string& line) {
    if (stdin_ < 0) return;
    const std::string text = line + "\n";
    (void)!::write(stdin_, text.data(), text.size());
  }

  /// A crash: SIGKILL, no clean shutdown.
  void kill_hard() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
    stop();
  }

  /// Closes the child's stdin (it stops cleanly) and waits for it.
  void stop() {
    if (stdin_ >= 0) {
      ::close(stdin_);
      stdin_ = -1;
    }
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (relay_.joinable()) relay_.join();
    if (stdout_ != nullptr) {
      std::fclose(stdout_);
      stdout_ = nullptr;
    }
  }

 private:
  replica_process(raft::node_id id, pid_t pid, int in, std::FILE* out, std::string name)
      : id_(id), pid_(pid), stdin_(in), stdout_(out), name_(std::move(name)) {}

  bool read_port() {
    char line[256];
    if (std::fgets(line, sizeof line, stdout_) == nullptr) return false;
    return std::sscanf(line, "port %d", &port_) == 1 && port_ > 0;
  }

  void relay() {
    char line[4096];
    while (std::fgets(line, sizeof line, stdout_) != nullptr) {
      std::cout << name_ << line << std::flush;
    }
  }

  raft::node_id id_;
  pid_t pid_;
  int stdin_;
  std::FILE* stdout_;
  std::string name_;
  int port_ = 0;
  std::thread relay_{};
};

/// The child's side: listens with `options` (port 0: an ephemeral one),
/// announces the port, learns the members' addresses, and returns the
/// transport to connect the replica with, knowing every peer. Nothing on
/// failure.
inline std::optional<rpc::grpc_transport> listen_as_child(rpc::transport_options options) {
  auto t = rpc::grpc_transport::listen(std::move(options));
  if (!t) return std::nullopt;
  std::cout << "port " << t->port() << std::endl;
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  t->set_addresses(parse_addresses(line));
  return std::move(*t);
}

/// Blocks until the parent closes this child's stdin.
inline void wait_for_parent() {
  std::string ignored;
  while (std::getline(std::cin, ignored)) {
  }
}

}  // namespace keel::examples
