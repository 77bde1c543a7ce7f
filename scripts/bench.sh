#!/usr/bin/env bash
# Runs one of keel's benchmark families side by side with its peer and prints
# one JSON object per case on stdout (format: docs/benchmarks.md, BENCH.md);
# everything human-readable goes to stderr.
#
#   scripts/bench.sh NAME      NAME: raft | store | wal | cluster | snapshot | all
#
# Environment:
#   RUNS       runs per side, alternating keel and peer (default 5, at least 3);
#              every figure is the median over them
#   BENCHTIME  seconds each case runs per run (default 1)
#   BUILD_DIR  where keel's benchmarks and the Go peers are built (default build-bench)
#   JOBS       build parallelism (default nproc)
#
# Installs missing Debian packages with apt-get (scripts/deps.sh). Builds
# offline: Go peers use GO111MODULE=off and GOPATH=/usr/share/gocode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

families=(raft store wal cluster snapshot)
available=(raft)

usage() {
  echo "usage: scripts/bench.sh NAME   (NAME: ${families[*]} all)" >&2
  exit 2
}

(($# == 1)) || usage
name=$1
case " ${families[*]} all " in
  *" $name "*) ;;
  *) usage ;;
esac

is_available() {
  local a
  for a in "${available[@]}"; do [[ $a == "$1" ]] && return 0; done
  return 1
}

if [[ $name != all ]] && ! is_available "$name"; then
  echo "keel bench: the '$name' benchmark is not yet available (available: ${available[*]})" >&2
  exit 2
fi

runs=${RUNS:-5}
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 3)); then
  echo "keel bench: RUNS must be a number >= 3 (medians need at least 3 runs), got '$runs'" >&2
  exit 2
fi
benchtime=${BENCHTIME:-1}
build_dir=${BUILD_DIR:-build-bench}
jobs=${JOBS:-$(nproc)}

log() { echo "keel bench: $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# --- dependencies ---------------------------------------------------------------

source scripts/deps.sh
keel_deps_install cmake g++ make libboost-dev libbenchmark-dev jq golang-go golang-etcd-server-dev

# --- helpers ----------------------------------------------------------------------

# median FILE: the median of the numbers in FILE, one per line.
median() {
  sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit 1
    if (NR % 2) printf "%.6f\n", v[(NR + 1) / 2]
    else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# keel_value JSONFILE CASE: committed entries per second of CASE in Google
# Benchmark's JSON output.
keel_value() {
  jq -er --arg c "$2" '[.benchmarks[]
      | select((.name | split("/")[0]) == $c and (.run_type // "iteration") == "iteration")
      | if .error_occurred then error("\($c): \(.error_message)") else .committed end][0]
    | select(. != null)' "$1"
}

# go_env: the environment of every Go command here (offline, GOPATH mode).
go_env() {
  env GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off \
    GOCACHE="$root/$build_dir/go-cache" "$@"
}

# --- build ------------------------------------------------------------------------

# build_keel TARGET SOURCE: builds a keel benchmark in Release into BUILD_DIR
# through CMake; falls back to g++ only if the CMake target does not exist.
# Prints the binary's path.
build_keel() {
  local target=$1 src=$2
  if [[ -f bench/CMakeLists.txt ]]; then
    log "configuring $build_dir (Release, benchmarks only)"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKEEL_BUILD_BENCH=ON \
      -DKEEL_BUILD_TESTS=OFF -DKEEL_BUILD_EXAMPLES=OFF -DKEEL_WITH_GRPC=OFF >&2
    if cmake --build "$build_dir" --target help 2>/dev/null | grep -qw "$target"; then
      cmake --build "$build_dir" --target "$target" --parallel "$jobs" >&2
      local bin="$build_dir/bench/$target"
      [[ -x $bin ]] ||
        bin=$(find "$build_dir" -path "$build_dir/direct" -prune -o -type f -name "$target" \
          -perm -u+x -print | head -n 1)
      [[ -n $bin ]] || { log "built $target but cannot find it under $build_dir"; exit 1; }
      echo "$bin"
      return
    fi
  fi
  log "no CMake target $target yet; building $src directly with g++"
  mkdir -p "$build_dir/direct"
  g++ -O2 -DNDEBUG -std=c++20 -I include "$src" -o "$build_dir/direct/$target" \
    -lbenchmark_main -lbenchmark -lpthread >&2
  echo "$build_dir/direct/$target"
}

# --- raft ---------------------------------------------------------------------------

# keel cases and the peer figure each is compared with: the etcd-io/raft
# BenchmarkOneNode test itself for one_node_propose; for the others (and as a
# second figure for one_node_propose) bench/peers/etcd-raft, which drives
# etcd's RawNode exactly as bench/raft.bench.cpp drives keel's raw_node.
raft_cases=(one_node_propose one_node_propose_sync three_node_propose three_node_propose_sync)

bench_raft() {
  local keel_bin peers="$build_dir/peers"
  keel_bin=$(build_keel keel_raft_bench bench/raft.bench.cpp)

  mkdir -p "$peers" "$build_dir/go-cache"
  log "building the etcd-io/raft peers (offline, GOPATH=/usr/share/gocode)"
  (cd bench/peers/etcd-raft && go_env go build -o "$root/$peers/etcd-raft-bench" .)
  go_env go test -c -o "$peers/etcd-raft.test" go.etcd.io/etcd/raft

  local r c
  run_keel() {
    log "run $r/$runs: keel ($keel_bin)"
    "$keel_bin" --benchmark_min_time="$benchtime" \
      --benchmark_out="$tmp/keel-$r.json" --benchmark_out_format=json >&2
    for c in "${raft_cases[@]}"; do
      keel_value "$tmp/keel-$r.json" "$c" >>"$tmp/keel.$c" ||
        { log "no figure for $c in keel's output"; exit 1; }
    done
  }
  run_peer() {
    log "run $r/$runs: etcd-raft BenchmarkOneNode (go test)"
    "$peers/etcd-raft.test" -test.run '^$' -test.bench '^BenchmarkOneNode$' \
      -test.benchtime "${benchtime}s" >"$tmp/stock-$r.txt" 2>&1 || {
      cat "$tmp/stock-$r.txt" >&2
      log "etcd's BenchmarkOneNode failed"
      exit 1
    }
    local ns
    ns=$(grep -Eo '[0-9.]+ ns/op' "$tmp/stock-$r.txt" | tail -n 1 | cut -d' ' -f1)
    [[ -n $ns ]] || { cat "$tmp/stock-$r.txt" >&2; log "no ns/op in BenchmarkOneNode's output"; exit 1; }
    echo "BenchmarkOneNode $ns ns/op" >&2
    awk -v ns="$ns" 'BEGIN { printf "%.6f\n", 1e9 / ns }' >>"$tmp/stock"

    log "run $r/$runs: etcd-raft RawNode mirror (bench/peers/etcd-raft)"
    "$peers/etcd-raft-bench" -case all -benchtime "${benchtime}s" | tee "$tmp/mirror-$r.txt" >&2
    for c in "${raft_cases[@]}"; do
      local v
      v=$(sed -n "s/^case=$c .*ops_per_s=\([0-9.]*\).*/\1/p" "$tmp/mirror-$r.txt")
      [[ -n $v ]] || { log "no figure for $c from etcd-raft-bench"; exit 1; }
      echo "$v" >>"$tmp/mirror.$c"
    done
  }
  for ((r = 1; r <= runs; r++)); do
    # Alternate who goes first so neither side always meets a warmer machine.
    if ((r % 2)); then run_keel; run_peer; else run_peer; run_keel; fi
  done

  local keel peer mirror
  for c in "${raft_cases[@]}"; do
    keel=$(median "$tmp/keel.$c")
    mirror=$(median "$tmp/mirror.$c")
    case $c in
      one_node_propose)
        peer=$(median "$tmp/stock")
        awk -v k="$keel" -v p="$peer" -v m="$mirror" -v c="$c" -v n="$runs" 'BEGIN {
          printf "{\"bench\":\"raft\",\"case\":\"%s\",\"unit\":\"ops/s\",\"keel\":%.0f,", c, k
          printf "\"peer\":\"etcd-raft\",\"peer_value\":%.0f,\"ratio\":%.2f,", p, k / p
          printf "\"peer_case\":\"BenchmarkOneNode\",\"peer_entry_bytes\":3,"
          printf "\"peer_rawnode_value\":%.0f,\"ratio_rawnode\":%.2f,", m, k / m
          printf "\"entry_bytes\":64,\"batch\":256,\"runs\":%d}\n", n }'
        ;;
      *)
        local batch=1
        [[ $c == *_sync ]] || batch=256
        awk -v k="$keel" -v p="$mirror" -v c="$c" -v n="$runs" -v b="$batch" 'BEGIN {
          printf "{\"bench\":\"raft\",\"case\":\"%s\",\"unit\":\"ops/s\",\"keel\":%.0f,", c, k
          printf "\"peer\":\"etcd-raft\",\"peer_value\":%.0f,\"ratio\":%.2f,", p, k / p
          printf "\"peer_case\":\"RawNode:%s\",", c
          printf "\"entry_bytes\":64,\"batch\":%d,\"runs\":%d}\n", b, n }'
        ;;
    esac
  done
}

# --- dispatch ---------------------------------------------------------------------------

if [[ $name == all ]]; then
  for f in "${families[@]}"; do
    if is_available "$f"; then
      "bench_$f"
    else
      log "skipping '$f': not yet available"
    fi
  done
else
  "bench_$name"
fi
