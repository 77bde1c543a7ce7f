// A history of client operations on registers, as the cluster simulation
// records it and the linearizability checker reads it.
//
// Model: each key names a register holding an optional string (absent: not
// created). put(key, v) creates or overwrites; get(key) returns the value or
// absent; cas(key, expected, v) writes v only if the register holds
// `expected` (absent included) and says whether it did.
//
// Times are logical: a history hands out one increasing sequence number per
// event (an invocation or a response), so no two events share a time. An
// operation whose outcome the client never learned (a timeout, a lost
// leadership, a crashed node) has response == unknown_response: it may have
// taken effect at any time after its invocation, or never. An operation that
// surely had no effect is dropped from the history by its client.
//
// Thread safety: a plain value; one thread records a history.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::sim {

/// The response time of an operation whose outcome is unknown.
inline constexpr std::uint64_t unknown_response = std::numeric_limits<std::uint64_t>::max();

enum class op_kind : std::uint8_t { put, get, cas };

/// One client operation on one register.
struct operation {
  std::uint64_t client = 0;
  op_kind kind = op_kind::get;
  std::string key;
  /// put, cas: the value written. get: the value read (nullopt: absent).
  std::optional<std::string> value;
  /// cas: the value the register must hold for the write to happen.
  std::optional<std::string> expected;
  /// cas: whether it wrote (meaningless while the outcome is unknown).
  bool ok = false;
  std::uint64_t invoke = 0;
  std::uint64_t response = unknown_response;

  /// Whether the client never learned the outcome.
  bool outcome_unknown() const noexcept { return response == unknown_response; }
};

/// "put(k, \"v\")", "get(k) -> absent", "cas(k, \"a\" -> \"b\") failed" and
/// the like, with the operation's client and times.
inline std::string describe(const operation& op) {
  auto quote = [](const std::optional<std::string>& v) {
    return v ? "\"" + *v + "\"" : std::string("absent");
  };
  std::string out = "client " + std::to_string(op.client) + " [" + std::to_string(op.invoke) +
                    ", " + (op.outcome_unknown() ? "?" : std::to_string(op.response)) + "] ";
  switch (op.kind) {
    case op_kind::put:
      out += "put(" + op.key + ", " + quote(op.value) + ")";
      break;
    case op_kind::get:
      out += "get(" + op.key + ") -> " + quote(op.value);
      break;
    case op_kind::cas:
      out += "cas(" + op.key + ", " + quote(op.expected) + " -> " + quote(op.value) + ")";
      if (!op.outcome_unknown()) out += op.ok ? " ok" : " failed";
      break;
  }
  if (op.outcome_unknown()) out += " outcome unknown";
  return out;
}

/// Records operations as clients invoke them and learn their outcomes.
class history {
 public:
  using id = std::size_t;

  /// Starts a put and returns its id.
  id invoke_put(std::uint64_t client, std::string key, std::string value) {
    return invoke(operation{.client = client,
                            .kind = op_kind::put,
                            .key = std::move(key),
                            .value = std::move(value),
                            .expected = std::nullopt});
  }

  /// Starts a get and returns its id.
  id invoke_get(std::uint64_t client, std::string key) {
    return invoke(operation{.client = client,
                            .kind = op_kind::get,
                            .key = std::move(key),
                            .value = std::nullopt,
                            .expected = std::nullopt});
  }

  /// Starts a cas and returns its id.
  id invoke_cas(std::uint64_t client, std::string key, std::optional<std::string> expected,
                std::string value) {
    return invoke(operation{.client = client,
                            .kind = op_kind::cas,
                            .key = std::move(key),
                            .value = std::move(value),
                            .expected = std::move(expected)});
  }

  /// A get returned `value`. Requires: i is a pending get.
  void complete_get(id i, std::optional<std::string> value) {
    operation& op = pending(i);
    assert(op.kind == op_kind::get);
    op.value = std::move(value);
    op.response = ++clock_;
    open_[i] = false;
  }

  /// A put or cas definitely happened (ok) or, for a cas, definitely failed
  /// its value check. Requires: i is a pending put or cas; a put is ok.
  void complete_write(id i, bool ok) {
    operation& op = pending(i);
    assert(op.kind != op_kind::get && (ok || op.kind == op_kind::cas));
    op.ok = ok;
    op.response = ++clock_;
    open_[i] = false;
  }

  /// The client will never learn the outcome: the operation stays with an
  /// unknown response (a get, which changes nothing, is dropped).
  void abandon(id i) {
    operation& op = pending(i);
    if (op.kind == op_kind::get) {
      drop(i);
    } else {
      op.ok = true;  // If it took effect, it wrote.
      open_[i] = false;
    }
  }

  /// The operation surely had no effect: it leaves the history.
  void drop(id i) {
    (void)pending(i);
    open_[i] = false;
    dropped_[i] = true;
  }

  /// Whether operation i still waits for its outcome.
  bool is_pending(id i) const { return i < open_.size() && open_[i]; }

  /// The recorded operations, dropped ones left out; those still pending
  /// count as unknown.
  std::vector<operation> operations() const {
    std::vector<operation> out;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (dropped_[i]) continue;
      out.push_back(ops_[i]);
      if (out.back().outcome_unknown() && out.back().kind == op_kind::cas) out.back().ok = true;
      if (out.back().outcome_unknown() && out.back().kind == op_kind::get) out.pop_back();
    }
    return out;
  }

  /// The time of the latest event.
  std::uint64_t now() const noexcept { return clock_; }

 private:
  id invoke(operation op) {
    op.invoke = ++clock_;
    op.response = unknown_response;
    ops_.push_back(std::move(op));
    open_.push_back(true);
    dropped_.push_back(false);
    return ops_.size() - 1;
  }

  operation& pending(id i) {
    assert(is_pending(i) && "the operation already has its outcome");
    return ops_[i];
  }

  std::vector<operation> ops_;
  std::vector<bool> open_;
  std::vector<bool> dropped_;
  std::uint64_t clock_ = 0;
};

}  // namespace keel::sim
