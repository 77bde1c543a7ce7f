// A downstream program that uses keel::spdlog: keel's spdlog logging policy
// writes one event to an spdlog logger over a string stream. Exits 0 when the
// line carries the event's message and context, 1 otherwise.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <keel/log/spdlog.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

int main() {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = std::make_shared<spdlog::logger>("keel", sink);
  logger->set_pattern("%v");
  keel::observe::spdlog_logger log(logger);
  log.write(
      {.level = keel::observe::log_level::info, .message = "became leader", .node = 1, .term = 2});
  logger->flush();
  const std::string line = out.str();
  if (line.find("became leader node=1 term=2") == std::string::npos) {
    std::cerr << "spdlog consumer: FAILED: unexpected line: " << line << '\n';
    return EXIT_FAILURE;
  }
  std::cout << "spdlog consumer: keel's events reach spdlog\n";
  return EXIT_SUCCESS;
}
