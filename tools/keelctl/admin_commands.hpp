// keelctl's online commands, against a running node's admin service
// (keel/grpc/admin.hpp): status, member add, member remove, metrics.
//
// Connection flags, common to all:
//   --endpoint HOST:PORT   the node's admin address (required)
//   --cacert/--cert/--key FILE   mutual TLS material (PEM)
//   --server-name NAME     the identity the node's certificate proves
//                          (default: the endpoint's host)
//   --insecure             plaintext, for tests and trusted networks
//   --timeout SECONDS      per call (default 10)
//
// Exit status: 0 on success, 1 when the call fails (the server's message is
// printed with its gRPC code).
//
// Thread safety: each call uses only its arguments.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <set>
#include <string>

#include "keel/grpc/admin_client.hpp"
#include "keelctl/args.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/text.hpp"

namespace keelctl {

/// The options that take a value for the online commands.
inline const std::set<std::string>& connection_options() {
  static const std::set<std::string> names = {"endpoint", "cacert",      "cert",
                                              "key",      "server-name", "timeout"};
  return names;
}

/// The gRPC status code's name.
inline const char* code_name(::grpc::StatusCode c) {
  switch (c) {
    case ::grpc::StatusCode::OK:
      return "OK";
    case ::grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case ::grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case ::grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case ::grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case ::grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case ::grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case ::grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case ::grpc::StatusCode::ABORTED:
      return "ABORTED";
    case ::grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case ::grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case ::grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case ::grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "ERROR";
  }
}

/// The longest --timeout keelctl takes, in seconds: a day.
inline constexpr double max_timeout_seconds = 86400;

/// A client from the connection flags; nothing (with a message on err) if
/// they are incomplete.
inline std::optional<keel::rpc::admin_client> connect_from(const args& a, std::ostream& err,
                                                           std::chrono::milliseconds& timeout) {
  const std::string endpoint = a.value("endpoint");
  if (endpoint.empty()) {
    err << "keelctl: --endpoint HOST:PORT is required\n";
    return std::nullopt;
  }
  keel::rpc::tls_options tls;
  tls.plaintext = a.has("insecure");
  if (!tls.plaintext) {
    tls.ca.file = a.value("cacert");
    tls.certificate.file = a.value("cert");
    tls.private_key.file = a.value("key");
    if (tls.ca.empty() || tls.certificate.empty() || tls.private_key.empty()) {
      err << "keelctl: TLS needs --cacert, --cert and --key (or --insecure for plaintext)\n";
      return std::nullopt;
    }
  }
  const std::string seconds = a.value("timeout", "10");
  char* end = nullptr;
  errno = 0;
  const double s = std::strtod(seconds.c_str(), &end);
  // !(s > 0) also refuses nan; the upper bound keeps the conversion to
  // milliseconds defined (a day is longer than any call should wait).
  if (end == seconds.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(s) || !(s > 0) ||
      s > max_timeout_seconds) {
    err << "keelctl: --timeout wants a number of seconds above 0 and at most "
        << max_timeout_seconds << ", not " << seconds << "\n";
    return std::nullopt;
  }
  timeout = std::max(std::chrono::milliseconds(1),
                     std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000)));
  auto client = keel::rpc::admin_client::connect(endpoint, tls, a.value("server-name"));
  if (!client) {
    err << "keelctl: cannot load the TLS material: " << client.error().message() << "\n";
    return std::nullopt;
  }
  return std::move(*client);
}

inline int report_failure(const ::grpc::Status& s, const std::string& endpoint, std::ostream& err) {
  err << "keelctl: " << endpoint << ": " << code_name(s.error_code()) << ": " << s.error_message()
      << "\n";
  return 1;
}

/// A node's status as keelctl status prints it.
inline std::string format_status(const keel::admin::StatusReply& s) {
  auto ids = [](const auto& list) {
    std::string out;
    for (const auto id : list) out += (out.empty() ? "" : " ") + std::to_string(id);
    return out.empty() ? std::string("none") : out;
  };
  std::string out =
      strf("node %" PRIu64 ": %s, term %" PRIu64 ", leader %s\n", s.id(), s.role().c_str(),
           s.term(), s.leader() == 0 ? "unknown" : std::to_string(s.leader()).c_str());
  out += strf("commit %" PRIu64 ", applied %" PRIu64 ", snapshot %" PRIu64
              ", pending writes %" PRIu64 " reads %" PRIu64 "\n",
              s.commit(), s.applied(), s.snapshot_index(), s.pending_writes(), s.pending_reads());
  out += "members: voters " + ids(s.voters()) + "; learners " + ids(s.learners()) + "\n";
  if (!s.failure().empty()) out += "STOPPED: " + s.failure() + "\n";
  if (s.peers_size() == 0) return out;
  out += strf("%-6s %-8s %10s %10s %-10s %-7s %-10s %10s %8s  %s\n", "peer", "kind", "match",
              "next", "progress", "active", "reachable", "sent", "dropped", "last error");
  for (const auto& p : s.peers()) {
    out += strf("%-6" PRIu64 " %-8s %10" PRIu64 " %10" PRIu64 " %-10s %-7s %-10s %10" PRIu64
                " %8" PRIu64 "  %s\n",
                p.id(), p.learner() ? "learner" : "voter", p.match(), p.next(),
                p.progress().empty() ? "-" : p.progress().c_str(), p.recent_active() ? "yes" : "no",
                p.reachable() ? "yes" : "no", p.sent(), p.dropped(),
                p.last_error().empty() ? "-" : p.last_error().c_str());
    if (p.has_snapshot()) {
      const auto& t = p.snapshot();
      out += strf("       snapshot %" PRIu64 "/%" PRIu64 " %s: ", t.index(), t.term(),
                  t.active()      ? "sending"
                  : t.succeeded() ? "sent"
                                  : "failed");
      out += render_bar("", t.bytes_sent(), t.total_bytes(), t.active() ? t.bytes_per_second() : 0,
                        t.active() ? t.eta_seconds() : 0, 24) +
             "\n";
    }
  }
  return out;
}

/// keelctl status.
inline int admin_status(const args& a, std::ostream& out, std::ostream& err) {
  std::chrono::milliseconds timeout{};
  auto client = connect_from(a, err, timeout);
  if (!client) return 1;
  keel::admin::StatusReply reply;
  if (auto s = client->status(reply, timeout); !s.ok()) {
    return report_failure(s, a.value("endpoint"), err);
  }
  out << format_status(reply);
  return 0;
}

/// Parses a member id; 0 with a message on err if it is not one.
inline std::uint64_t parse_member_id(const std::string& word, std::ostream& err) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long id = std::strtoull(word.c_str(), &end, 10);
  // Digits only: strtoull would take leading blanks and signs, and says
  // ERANGE (with ULLONG_MAX) for a number that does not fit.
  const bool digits = !word.empty() && word.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || end == word.c_str() || *end != '\0' || errno == ERANGE || id == 0) {
    err << "keelctl: " << word << " is not a member id (a positive integer)\n";
    return 0;
  }
  static_assert(sizeof(unsigned long long) == sizeof(std::uint64_t));
  return id;
}

/// keelctl member add ID ADDRESS.
inline int admin_member_add(const args& a, std::ostream& out, std::ostream& err) {
  if (a.positional.size() != 2) {
    err << "usage: keelctl member add ID ADDRESS --endpoint HOST:PORT ...\n";
    return 2;
  }
  const std::uint64_t id = parse_member_id(a.positional[0], err);
  if (id == 0) return 1;
  std::chrono::milliseconds timeout{};
  auto client = connect_from(a, err, timeout);
  if (!client) return 1;
  keel::admin::MemberReply reply;
  if (auto s = client->add_member(id, a.positional[1], reply, timeout); !s.ok()) {
    return report_failure(s, a.value("endpoint"), err);
  }
  out << strf("added node %" PRIu64 " at %s as a learner (log index %" PRIu64
              "); the leader promotes it once it caught up\n",
              id, a.positional[1].c_str(), reply.index());
  return 0;
}

/// keelctl member remove ID.
inline int admin_member_remove(const args& a, std::ostream& out, std::ostream& err) {
  if (a.positional.size() != 1) {
    err << "usage: keelctl member remove ID --endpoint HOST:PORT ...\n";
    return 2;
  }
  const std::uint64_t id = parse_member_id(a.positional[0], err);
  if (id == 0) return 1;
  std::chrono::milliseconds timeout{};
  auto client = connect_from(a, err, timeout);
  if (!client) return 1;
  keel::admin::MemberReply reply;
  if (auto s = client->remove_member(id, reply, timeout); !s.ok()) {
    return report_failure(s, a.value("endpoint"), err);
  }
  out << strf("removed node %" PRIu64 " (log index %" PRIu64 ")\n", id, reply.index());
  return 0;
}

/// keelctl metrics.
inline int admin_metrics(const args& a, std::ostream& out, std::ostream& err) {
  std::chrono::milliseconds timeout{};
  auto client = connect_from(a, err, timeout);
  if (!client) return 1;
  std::string text;
  if (auto s = client->metrics(text, timeout); !s.ok()) {
    return report_failure(s, a.value("endpoint"), err);
  }
  out << text;
  if (!text.empty() && text.back() != '\n') out << "\n";
  return 0;
}

}  // namespace keelctl
