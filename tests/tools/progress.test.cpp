// keelctl's progress output and argument parsing.
#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "keelctl/args.hpp"
#include "keelctl/progress.hpp"
#include "keelctl/text.hpp"

TEST_CASE("a progress bar shows share, sizes, rate and ETA", "[keelctl][progress]") {
  const std::string bar = keelctl::render_bar("snap", 512, 1024, 256, 2, 10);
  CHECK(bar == "snap [#####.....]  50%  512 B/1.0 KiB  256 B/s  ETA 2s");
  CHECK(keelctl::render_bar("x", 0, 0, 0, 0, 4) == "x [####] 100%  0 B/0 B");
}

TEST_CASE("forced progress off a terminal prints a line per tenth", "[keelctl][progress]") {
  std::ostringstream err;
  {
    keelctl::progress p(err, keelctl::progress_mode::lines, "wal dump", 1000);
    for (std::uint64_t i = 0; i <= 1000; i += 50) p.update(i);
  }
  const std::string text = err.str();
  CHECK(text.find("wal dump: 0%\n") == 0);
  CHECK(text.find("wal dump: 50%\n") != std::string::npos);
  CHECK(text.find("wal dump: 100%\n") != std::string::npos);
  CHECK(text.find("55%") == std::string::npos);
}

TEST_CASE("progress that is off prints nothing", "[keelctl][progress]") {
  std::ostringstream err;
  {
    keelctl::progress p(err, keelctl::progress_mode::off, "x", 10);
    p.update(5);
  }
  CHECK(err.str().empty());
}

TEST_CASE("arguments split into positionals, repeated options and flags", "[keelctl][args]") {
  const auto a = keelctl::parse_args({"dir", "--table", "task", "--table=service", "--array"},
                                     {"table"}, {"array"});
  CHECK(a.error.empty());
  CHECK(a.positional == std::vector<std::string>{"dir"});
  CHECK(a.all("table") == std::vector<std::string>{"task", "service"});
  CHECK(a.has("array"));
  CHECK(keelctl::parse_args({"--table"}, {"table"}, {}).error == "option --table needs a value");
  CHECK(keelctl::parse_args({"--nope"}, {}, {}).error == "unknown option --nope");
}

TEST_CASE("base64 and JSON strings", "[keelctl][text]") {
  CHECK(keelctl::base64("") == "");
  CHECK(keelctl::base64("f") == "Zg==");
  CHECK(keelctl::base64("fo") == "Zm8=");
  CHECK(keelctl::base64("foobar") == "Zm9vYmFy");
  CHECK(keelctl::json_string("a\"b\\\n\x01") == "\"a\\\"b\\\\\\n\\u0001\"");
}

TEST_CASE("JSON strings escape bytes that are not UTF-8 and keep those that are",
          "[keelctl][text]") {
  using keelctl::json_string;
  CHECK(json_string("caf\xc3\xa9") == "\"caf\xc3\xa9\"");            // é, two bytes
  CHECK(json_string("\xe2\x82\xac") == "\"\xe2\x82\xac\"");          // €, three bytes
  CHECK(json_string("\xf0\x9f\x98\x80") == "\"\xf0\x9f\x98\x80\"");  // four bytes
  CHECK(json_string("a\xff"
                    "b") ==
        "\"a\\u00ff"
        "b\"");                                                       // never a UTF-8 byte
  CHECK(json_string("\xc3") == "\"\\u00c3\"");                        // cut short
  CHECK(json_string("\xc0\xaf") == "\"\\u00c0\\u00af\"");             // overlong
  CHECK(json_string("\xed\xa0\x80") == "\"\\u00ed\\u00a0\\u0080\"");  // a surrogate
  CHECK(json_string("\xf4\x90\x80\x80") == "\"\\u00f4\\u0090\\u0080\\u0080\"");  // > U+10FFFF
  CHECK(json_string(std::string("\0", 1)) == "\"\\u0000\"");
}

TEST_CASE("the progress mode follows the terminal bit it is given", "[keelctl][progress]") {
  using keelctl::choose_progress;
  using keelctl::progress_mode;
  STATIC_REQUIRE(choose_progress(false, true) == progress_mode::bar);
  STATIC_REQUIRE(choose_progress(true, true) == progress_mode::bar);
  STATIC_REQUIRE(choose_progress(true, false) == progress_mode::lines);
  STATIC_REQUIRE(choose_progress(false, false) == progress_mode::off);
}
