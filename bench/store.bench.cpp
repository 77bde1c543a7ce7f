// The store benchmark: keel's object store on a SwarmKit-like task table,
// the same work as bench/peers/go-memdb (see docs/benchmarks.md, "store",
// for the contract both programs follow: ids, data set, cases, output).
//
//   keel_store_bench [--objects=N] [--benchtime=S] [--print-ids=K]
//
// One line per case on stdout:
//   case=<name> objects=<N> ops=<count> ns=<wall ns> ops_per_s=<ops/s>
//   case=mem_per_object objects=<N> bytes=<growth> bytes_per_object=<bytes>
#include <malloc.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "keel/store/store.hpp"

namespace {

struct task {
  std::string id;
  std::string service_id;
  std::string node_id;
  std::uint64_t slot = 0;
  int desired_state = 0;
  std::uint64_t version = 0;
  std::string name;
  std::string payload;
};

}  // namespace

template <>
struct keel::store::object_traits<task> {
  static constexpr std::string_view table = "task";
  static std::string_view id(const task& t) { return t.id; }
  static std::uint64_t version(const task& t) { return t.version; }
  static void set_version(task& t, std::uint64_t v) { t.version = v; }
  static std::string encode(const task& t) { return t.id; }  // Not exercised here.
  static keel::result<task> decode(std::string_view) { return keel::errc::invalid_object; }
  static auto indexes() {
    return std::tuple{
        index_schema{.name = "service_id", .indexer = string_indexer{&task::service_id}},
        index_schema{.name = "node_id", .indexer = string_indexer{&task::node_id}},
    };
  }
};

namespace {

using task_store = keel::store::store<task>;
using clock_type = std::chrono::steady_clock;

/// The reference generator both sides share (splitmix64).
struct splitmix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

std::vector<task> make_tasks(std::size_t n) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  splitmix ids{42};
  std::vector<task> tasks(n);
  for (std::size_t i = 0; i < n; ++i) {
    task& t = tasks[i];
    t.id.resize(25);
    for (char& c : t.id) c = alphabet[ids.next() % 36];
    t.service_id = "svc-" + std::to_string(i % 1000);
    t.node_id = "node-" + std::to_string(i % 100);
    t.slot = i / 1000 + 1;
    t.desired_state = 0;
    t.version = 1;
    t.name = t.service_id + "." + std::to_string(t.slot);
    t.payload.assign(64, 'x');
  }
  return tasks;
}

std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void report(const char* name, std::size_t objects, std::uint64_t ops, clock_type::duration d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  std::printf("case=%s objects=%zu ops=%llu ns=%lld ops_per_s=%.1f\n", name, objects,
              static_cast<unsigned long long>(ops), static_cast<long long>(ns),
              ns > 0 ? static_cast<double>(ops) * 1e9 / static_cast<double>(ns) : 0.0);
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "keel_store_bench: %s\n", why.c_str());
  std::exit(1);
}

void insert(task_store& s, std::vector<task> tasks, std::size_t per_txn) {
  for (std::size_t i = 0; i < tasks.size(); i += per_txn) {
    auto ec = s.update([&](auto& tx) -> std::error_code {
      for (std::size_t j = i; j < i + per_txn && j < tasks.size(); ++j) {
        // The contract's tasks carry version 1; create stamps the commit's version.
        if (auto e = tx.create(std::move(tasks[j]))) return e;
      }
      return {};
    });
    if (ec) fail("insert: " + ec.message());
  }
}

void bench_insert(const char* name, std::size_t n, std::size_t per_txn) {
  std::vector<task> tasks = make_tasks(n);
  task_store s;
  const auto start = clock_type::now();
  insert(s, std::move(tasks), per_txn);
  const auto elapsed = clock_type::now() - start;
  if (s.begin_read().count<task>() != n) fail(std::string(name) + ": wrong count");
  report(name, n, n, elapsed);
}

/// Runs rounds of `round(rng)` (each returning its op count) until benchtime passed.
template <class Round>
void bench_rounds(const char* name, std::size_t n, double benchtime, std::uint64_t seed,
                  Round round) {
  splitmix rng{seed};
  std::uint64_t ops = 0;
  const auto start = clock_type::now();
  const auto until = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(benchtime));
  clock_type::time_point now;
  do {
    ops += round(rng);
    now = clock_type::now();
  } while (now < until);
  report(name, n, ops, now - start);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t objects = 200000;
  double benchtime = 1.0;
  long print_ids = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--objects=")) {
      objects = std::strtoull(argv[i] + 10, nullptr, 10);
    } else if (arg.starts_with("--benchtime=")) {
      benchtime = std::strtod(argv[i] + 12, nullptr);
    } else if (arg.starts_with("--print-ids=")) {
      print_ids = std::strtol(argv[i] + 12, nullptr, 10);
    } else {
      std::fprintf(stderr, "keel_store_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (objects == 0 || objects % 1000 != 0 || benchtime <= 0) {
    std::fprintf(stderr, "keel_store_bench: --objects must be a positive multiple of 1000\n");
    return 2;
  }
  if (print_ids >= 0) {
    for (const task& t : make_tasks(static_cast<std::size_t>(print_ids))) {
      std::printf("%s\n", t.id.c_str());
    }
    return 0;
  }

  // Memory first, in a fresh heap: index nodes freed by later cases stay in
  // their pools and would hide the growth.
  const std::size_t heap_before = heap_in_use();
  auto s = std::make_unique<task_store>();
  insert(*s, make_tasks(objects), 1000);
  malloc_trim(0);
  const std::size_t heap_after = heap_in_use();
  const std::size_t growth = heap_after > heap_before ? heap_after - heap_before : 0;
  std::printf("case=mem_per_object objects=%zu bytes=%zu bytes_per_object=%.1f\n", objects, growth,
              static_cast<double>(growth) / static_cast<double>(objects));

  bench_insert("insert_1_per_txn", objects, 1);
  bench_insert("insert_1000_per_txn", objects, 1000);

  std::vector<std::string> ids;
  ids.reserve(objects);
  s->view([&](const auto& tx) {
    (void)tx.template for_each<task>(keel::store::all(),
                                     [&](const auto& t) { ids.push_back(t->id); });
  });
  // Ids iterate in key order; the cases index them by the generator's order,
  // which is fine: task `x % N` is any task chosen uniformly.

  bench_rounds("update_1_per_txn", objects, benchtime, 1, [&](splitmix& rng) {
    for (int k = 0; k < 1000; ++k) {
      const std::string& id = ids[rng.next() % objects];
      auto ec = s->update([&](auto& tx) -> std::error_code {
        auto cur = tx.template get<task>(id);
        if (!cur) return keel::errc::not_found;
        task next = *cur;
        next.desired_state = 1 - next.desired_state;
        return tx.update(std::move(next));
      });
      if (ec) fail("update: " + ec.message());
    }
    return std::uint64_t{1000};
  });

  std::uint64_t slot_sum = 0;
  bench_rounds("get_by_id", objects, benchtime, 2, [&](splitmix& rng) {
    const auto tx = s->begin_read();
    for (int k = 0; k < 1000; ++k) {
      auto t = tx.get<task>(ids[rng.next() % objects]);
      if (!t) fail("get_by_id: missing task");
      slot_sum += t->slot;
    }
    return std::uint64_t{1000};
  });

  const std::size_t per_service = objects / 1000;
  bench_rounds("scan_by_service", objects, benchtime, 3, [&](splitmix& rng) {
    std::uint64_t scanned = 0;
    while (scanned < 1000) {
      const auto tx = s->begin_read();
      std::size_t count = 0;
      const std::string service = "svc-" + std::to_string(rng.next() % 1000);
      auto ec = tx.for_each<task>(keel::store::by_service_id(service), [&](const auto& t) {
        slot_sum += t->slot;
        ++count;
      });
      if (ec || count != per_service) fail("scan_by_service: wrong count");
      scanned += count;
    }
    return scanned;
  });
  std::fprintf(stderr, "(checksum %llu)\n", static_cast<unsigned long long>(slot_sum));
  return 0;
}
