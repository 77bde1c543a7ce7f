// The spdlog adapter: a replica's events reach an spdlog sink as one line
// each, with their context as key=value pairs, and nothing below the spdlog
// logger's level is built.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../store/plain_objects.hpp"
#include "keel/log/spdlog.hpp"
#include "keel/node/replica.hpp"
#include "keel/sim/disk.hpp"
#include "keel/transport/in_process.hpp"

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct spdlog_observe : keel::observe::defaults {
  using log = keel::observe::spdlog_logger;
};

}  // namespace

TEST_CASE("spdlog adapter: events become lines with their context", "[spdlog]") {
  STATIC_REQUIRE(keel::observe::logger<keel::observe::spdlog_logger>);
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  auto logger = std::make_shared<spdlog::logger>("keel-test", sink);
  logger->set_pattern("%l %v");
  logger->set_level(spdlog::level::info);
  keel::observe::spdlog_logger log(logger);
  CHECK_FALSE(log.enabled(keel::observe::log_level::debug));
  CHECK(log.enabled(keel::observe::log_level::info));
  log.write({.level = keel::observe::log_level::info,
             .message = "election won: became leader",
             .node = 1,
             .term = 2,
             .index = 7,
             .peer = keel::raft::no_node,
             .detail = {}});
  log.write({.level = keel::observe::log_level::error,
             .message = "stopped: storage failure (fail-stop)",
             .node = 3,
             .term = 4,
             .index = 0,
             .peer = 2,
             .detail = "disk \"full\""});
  logger->flush();
  const auto lines = lines_of(text.str());
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "info election won: became leader node=1 term=2 index=7");
  CHECK(lines[1] ==
        "error stopped: storage failure (fail-stop) node=3 term=4 peer=2 detail=\"disk "
        "\\\"full\\\"\"");
}

TEST_CASE("spdlog adapter: control bytes in the message and the detail are escaped", "[spdlog]") {
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  auto logger = std::make_shared<spdlog::logger>("keel-test", sink);
  logger->set_pattern("%v");
  keel::observe::spdlog_logger log(logger);
  log.write({.level = keel::observe::log_level::warn,
             .message = "bad\npeer\x1b[31m",
             .node = 1,
             .term = 0,
             .index = 0,
             .peer = keel::raft::no_node,
             .detail = "a\r\nfake line\tx\x7f\\"});
  logger->flush();
  const auto lines = lines_of(text.str());
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "bad\\npeer\\x1b[31m node=1 detail=\"a\\r\\nfake line\\tx\\x7f\\\\\"");
  std::string out;
  keel::observe::spdlog_logger::escape(out, std::string_view("\x01\x1f \"", 4));
  CHECK(out == "\\x01\\x1f \\\"");
}

TEST_CASE("spdlog adapter: a replica logs its recovery and its election through spdlog",
          "[spdlog]") {
  using replica_type =
      keel::node::basic_replica<spdlog_observe, keel::sim::disk_file_system,
                                keel::transport::endpoint, keel::test::plain::task>;
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  auto logger = std::make_shared<spdlog::logger>("keel-replica", sink);
  logger->set_pattern("%v");
  keel::observe::spdlog_logger log(logger);
  keel::sim::disk disk;
  keel::transport::in_process_network network(5);
  {
    auto r = replica_type::open(
        disk.file_system(), {.id = 1, .members = {1}, .data_dir = "/data", .election_tick = 2},
        {.metrics = nullptr, .log = &log},
        [&](keel::transport::handler h) { return network.connect(1, std::move(h)); });
    REQUIRE(r);
    for (int i = 0; i < 50 && !(*r)->is_leader(); ++i) {
      (*r)->tick();
      while ((*r)->run_once()) {
      }
    }
    REQUIRE((*r)->is_leader());
    network.disconnect(1);
  }
  logger->flush();
  const auto lines = lines_of(text.str());
  auto has = [&](const std::string& prefix) {
    for (const auto& l : lines) {
      if (l.starts_with(prefix)) return true;
    }
    return false;
  };
  CHECK(has("WAL recovered node=1"));
  CHECK(has("election won: became leader node=1 term="));
}
