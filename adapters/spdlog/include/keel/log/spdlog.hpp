// A logging policy (keel/observe/log.hpp) that writes a replica's events to
// an spdlog logger, one line per event with its context as key=value pairs:
//
//   election won: became leader node=1 term=2 index=7
//   snapshot sent node=1 term=2 index=10000 peer=4
//
//   auto sink = spdlog::stdout_color_mt("keel");
//   keel::observe::spdlog_logger log(sink);
//   ... open the replica or runner with observers{.log = &log} ...
//
// The message and the detail are escaped (escape()): quotes and
// backslashes get a backslash, control bytes become \n, \r, \t or \xHH, so
// text from outside (a peer's error, a path) cannot forge a line.
//
// Levels map one to one (debug, info, warn, error); enabled() asks the
// spdlog logger, so events below its level are never built.
//
// Thread safety: as the spdlog logger's (the _mt loggers may be shared by
// several replicas and threads).
#pragma once

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "keel/observe/log.hpp"

namespace keel::observe {

class spdlog_logger {
 public:
  /// Writes to `logger`. Requires: not null.
  explicit spdlog_logger(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}

  /// spdlog's level for a keel level.
  static spdlog::level::level_enum level_of(log_level l) noexcept {
    switch (l) {
      case log_level::debug:
        return spdlog::level::debug;
      case log_level::info:
        return spdlog::level::info;
      case log_level::warn:
        return spdlog::level::warn;
      case log_level::error:
        return spdlog::level::err;
    }
    return spdlog::level::err;
  }

  bool enabled(log_level l) const { return logger_->should_log(level_of(l)); }

  void write(const log_event& e) {
    std::string line;
    escape(line, e.message);
    field(line, "node", e.node);
    if (e.term != 0) field(line, "term", e.term);
    if (e.index != 0) field(line, "index", e.index);
    if (e.peer != raft::no_node) field(line, "peer", e.peer);
    if (!e.detail.empty()) {
      line += " detail=\"";
      escape(line, e.detail);
      line += '"';
    }
    logger_->log(level_of(e.level), spdlog::string_view_t(line.data(), line.size()));
  }

  /// The spdlog logger written to.
  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }

  /// Appends `text` so that one event stays one line a terminal shows as
  /// written: `"` and `\` get a backslash; \n, \r, \t become those escapes;
  /// other bytes below 0x20 and 0x7f become \xHH.
  static void escape(std::string& line, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    for (const char c : text) {
      const auto b = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        line += '\\';
        line += c;
      } else if (c == '\n') {
        line += "\\n";
      } else if (c == '\r') {
        line += "\\r";
      } else if (c == '\t') {
        line += "\\t";
      } else if (b < 0x20 || b == 0x7f) {
        line += "\\x";
        line += hex[b >> 4];
        line += hex[b & 0xf];
      } else {
        line += c;
      }
    }
  }

 private:
  static void field(std::string& line, const char* name, std::uint64_t v) {
    line += ' ';
    line += name;
    line += '=';
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    line.append(buf, r.ptr);
  }

  std::shared_ptr<spdlog::logger> logger_;
};

static_assert(logger<spdlog_logger>);

}  // namespace keel::observe
