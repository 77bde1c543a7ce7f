// keel::bytes: shared immutable payloads.
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "keel/bytes.hpp"

using keel::bytes;

TEST_CASE("bytes holds a copy of what it was built from") {
  std::string source = "payload";
  bytes b(source);
  source[0] = 'X';
  CHECK(b == "payload");
  CHECK(b.size() == 7);
  CHECK_FALSE(b.empty());
  CHECK(b.str() == "payload");
}

TEST_CASE("empty bytes hold no block and read as an empty string") {
  bytes b;
  CHECK(b.empty());
  CHECK(b.size() == 0);
  CHECK(b.view().empty());
  CHECK(b == "");
  CHECK(bytes(std::string()) == b);
  CHECK(std::string(b.data()).empty());
}

TEST_CASE("copies of bytes share one buffer") {
  bytes a("shared payload");
  bytes b = a;
  CHECK(b.data() == a.data());
  bytes c;
  c = b;
  CHECK(c.data() == a.data());
}

TEST_CASE("a moved-from bytes is empty and the target owns the buffer") {
  bytes a("moving");
  const char* p = a.data();
  bytes b(std::move(a));
  CHECK(b.data() == p);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the state after a move is specified.
  bytes c;
  c = std::move(b);
  CHECK(c.data() == p);
  CHECK(c == "moving");
}

TEST_CASE("bytes compare by content with bytes, strings and literals") {
  CHECK(bytes("abc") == bytes("abc"));
  CHECK(bytes("abc") != bytes("abd"));
  CHECK(bytes("abc") == std::string("abc"));
  CHECK(bytes("abc") == std::string_view("abc"));
  CHECK(bytes("abc") < bytes("abd"));
  CHECK(bytes("ab") < bytes("abc"));
}

TEST_CASE("bytes keep embedded zero bytes") {
  const std::string with_zero("a\0b", 3);
  bytes b(with_zero);
  CHECK(b.size() == 3);
  CHECK(b == with_zero);
  CHECK(b != "a");
}

TEST_CASE("bytes survive copies released on other threads") {
  bytes original(std::string(1000, 'x'));
  std::atomic<int> wrong{0};  // Catch2's assertions are not thread-safe.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([copy = original, &wrong] {
      for (int i = 0; i < 10000; ++i) {
        bytes local = copy;
        if (local.size() != 1000 || local.data()[999] != 'x') ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(original == std::string(1000, 'x'));
}
