// The radix tree (keel::index::tree) beside std::map: bulk and
// per-transaction inserts, point lookups, ordered walks, and memory per key
// (the `bytes_per_key` counter, from glibc's mallinfo2: chunk headers and
// rounding included), on random 16-byte keys and on store-like keys (25
// base-36 characters, as the store benchmark's task ids).
//
// A pool keeps freed blocks for reuse, so a pooled case's bytes_per_key is
// right only as the first pooled case of its process:
//
//   keel_index_bench --benchmark_filter=insert_bulk/pooled/base36
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "keel/index/pooled_node_policy.hpp"
#include "keel/index/tree.hpp"

namespace {

using value = void*;  // A pointer-sized handle, as the store keeps.

std::size_t heap_in_use() {
  const auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

enum class keys_kind { random16, base36_25 };

const std::vector<std::string>& keys_of(keys_kind kind, std::size_t n) {
  static std::map<std::pair<int, std::size_t>, std::vector<std::string>> cache;
  auto& keys = cache[{static_cast<int>(kind), n}];
  if (keys.empty()) {
    std::mt19937_64 rng(42);
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    keys.resize(n);
    for (auto& k : keys) {
      if (kind == keys_kind::random16) {
        k.resize(16);
        for (auto& c : k) c = static_cast<char>(rng());
      } else {
        k.resize(25);
        for (auto& c : k) c = alphabet[rng() % 36];
      }
    }
  }
  return keys;
}

template <class Policy>
keel::index::tree<value, Policy> build(const std::vector<std::string>& keys) {
  keel::index::tree<value, Policy> t;
  auto tx = t.begin_transaction();
  for (const auto& k : keys) tx.insert(k, nullptr);
  return tx.commit();
}

template <class Policy>
void bm_insert_bulk(benchmark::State& state, keys_kind kind) {
  const auto& keys = keys_of(kind, static_cast<std::size_t>(state.range(0)));
  // The first build takes fresh memory; a pool reuses it after, also in
  // later runs of this benchmark (the framework calls it several times).
  static double first_bytes_per_key[2] = {0, 0};
  double& bytes_per_key = first_bytes_per_key[static_cast<int>(kind)];
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    auto t = build<Policy>(keys);
    state.PauseTiming();
    bytes_per_key = std::max(bytes_per_key, static_cast<double>(heap_in_use() - before) /
                                                static_cast<double>(keys.size()));
    t = {};
    state.ResumeTiming();
  }
  state.counters["bytes_per_key"] = bytes_per_key;
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

/// Writes of random existing keys (new values), `per_txn` per transaction,
/// on a full tree, each transaction committed and the old version released,
/// as a store applying updates.
template <class Policy>
void bm_update_per_txn(benchmark::State& state, keys_kind kind, int per_txn) {
  const auto& keys = keys_of(kind, static_cast<std::size_t>(state.range(0)));
  auto t = build<Policy>(keys);
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    auto tx = t.begin_transaction();
    for (int i = 0; i < per_txn; ++i) tx.insert(keys[rng() % keys.size()], &t);
    t = tx.commit();
  }
  state.SetItemsProcessed(state.iterations() * per_txn);
}

template <class Policy>
void bm_find(benchmark::State& state, keys_kind kind) {
  const auto& keys = keys_of(kind, static_cast<std::size_t>(state.range(0)));
  const auto t = build<Policy>(keys);
  std::mt19937_64 rng(9);
  for (auto _ : state) benchmark::DoNotOptimize(t.find(keys[rng() % keys.size()]));
  state.SetItemsProcessed(state.iterations());
}

template <class Policy>
void bm_iterate(benchmark::State& state, keys_kind kind) {
  const auto& keys = keys_of(kind, static_cast<std::size_t>(state.range(0)));
  const auto t = build<Policy>(keys);
  for (auto _ : state) {
    std::size_t n = 0;
    for (const auto& e : t) n += e.key.size();
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void bm_map_insert_bulk(benchmark::State& state, keys_kind kind) {
  const auto& keys = keys_of(kind, static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    std::map<std::string, value> m;
    for (const auto& k : keys) m.emplace(k, nullptr);
    state.PauseTiming();
    state.counters["bytes_per_key"] =
        static_cast<double>(heap_in_use() - before) / static_cast<double>(keys.size());
    m = {};
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void bm_map_find(benchmark::State& state, keys_kind kind) {
  const auto& keys = keys_of(kind, static_cast<std::size_t>(state.range(0)));
  std::map<std::string, value> m;
  for (const auto& k : keys) m.emplace(k, nullptr);
  std::mt19937_64 rng(9);
  for (auto _ : state) benchmark::DoNotOptimize(m.find(keys[rng() % keys.size()]));
  state.SetItemsProcessed(state.iterations());
}

using heap = keel::index::default_node_policy;
using pooled = keel::index::pooled_node_policy;

constexpr std::int64_t big = 1'000'000;
constexpr std::int64_t store_size = 200'000;

}  // namespace

namespace {

/// Registered at static initialization (BENCHMARK_CAPTURE cannot take a
/// template's name).
const bool registered = [] {
  using benchmark::RegisterBenchmark;
  constexpr auto random16 = keys_kind::random16;
  constexpr auto base36 = keys_kind::base36_25;
  RegisterBenchmark("insert_bulk/heap/random16", bm_insert_bulk<heap>, random16)
      ->Arg(big)
      ->Unit(benchmark::kMillisecond);
  RegisterBenchmark("insert_bulk/pooled/random16", bm_insert_bulk<pooled>, random16)
      ->Arg(big)
      ->Unit(benchmark::kMillisecond);
  RegisterBenchmark("insert_bulk/std_map/random16", bm_map_insert_bulk, random16)
      ->Arg(big)
      ->Unit(benchmark::kMillisecond);
  RegisterBenchmark("insert_bulk/heap/base36", bm_insert_bulk<heap>, base36)
      ->Arg(store_size)
      ->Unit(benchmark::kMillisecond);
  RegisterBenchmark("insert_bulk/pooled/base36", bm_insert_bulk<pooled>, base36)
      ->Arg(store_size)
      ->Unit(benchmark::kMillisecond);
  RegisterBenchmark("insert_bulk/std_map/base36", bm_map_insert_bulk, base36)
      ->Arg(store_size)
      ->Unit(benchmark::kMillisecond);
  RegisterBenchmark("update_1_per_txn/heap/base36", bm_update_per_txn<heap>, base36, 1)
      ->Arg(store_size);
  RegisterBenchmark("update_1_per_txn/pooled/base36", bm_update_per_txn<pooled>, base36, 1)
      ->Arg(store_size);
  RegisterBenchmark("update_1000_per_txn/pooled/base36", bm_update_per_txn<pooled>, base36, 1000)
      ->Arg(store_size);
  RegisterBenchmark("update_1_per_txn/pooled/random16", bm_update_per_txn<pooled>, random16, 1)
      ->Arg(big);
  RegisterBenchmark("find/heap/random16", bm_find<heap>, random16)->Arg(big);
  RegisterBenchmark("find/pooled/random16", bm_find<pooled>, random16)->Arg(big);
  RegisterBenchmark("find/std_map/random16", bm_map_find, random16)->Arg(big);
  RegisterBenchmark("find/pooled/base36", bm_find<pooled>, base36)->Arg(store_size);
  RegisterBenchmark("find/std_map/base36", bm_map_find, base36)->Arg(store_size);
  RegisterBenchmark("iterate/pooled/random16", bm_iterate<pooled>, random16)
      ->Arg(big)
      ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
