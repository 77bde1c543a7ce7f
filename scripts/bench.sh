#!/usr/bin/env bash
# Runs one of keel's benchmark families side by side with its peer and prints
# one JSON object per case on stdout (format: docs/benchmarks.md, BENCH.md);
# everything human-readable goes to stderr.
#
#   scripts/bench.sh NAME      NAME: raft | store | wal | cluster | snapshot | all
#
# Environment:
#   RUNS       runs per side, alternating keel and peer (default 5, at least 3;
#              snapshot: default 3); every figure is the median over them
#   BENCHTIME  seconds each case runs per run (default 1)
#   BUILD_DIR  where keel's benchmarks and the Go peers are built (default build-bench)
#   JOBS       build parallelism (default nproc)
#   STORE_OBJECTS  store only: table sizes to run, space-separated multiples
#              of 1000 (default "200000 1000000")
#   WAL_RECOVERY_MIB  wal only: size of the WAL the recovery case reads back
#              (default 1024)
#   WAL_DIR    wal only: where the WAL benchmark writes (a temporary directory
#              is made in it; default BUILD_DIR); must be on the disk to
#              measure, not tmpfs
#   CLUSTER_WRITERS  cluster only: concurrent writers to run, space-separated
#              (default "1 16 64 256")
#   CLUSTER_DIR  cluster only: where keel's and etcd's data directories go (a
#              temporary directory is made in it; default BUILD_DIR); must be
#              on the disk to measure, not tmpfs
#   CLUSTER_PEER_ONLY  cluster only: 1 runs etcd's side alone (keel's figures
#              and ratios are null), e.g. before bench/cluster.bench.cpp exists
#   SNAPSHOT_BYTES  snapshot only: size of the snapshot streamed (default
#              1073741824, 1 GiB)
#   SNAPSHOT_RTT_SECONDS  snapshot only: seconds each round-trip case runs
#              (default 2)
#   SNAPSHOT_DIR  snapshot only: where the snapshot files go (a temporary
#              directory is made in it; default BUILD_DIR); must be on the
#              disk to measure, not tmpfs
#
# Installs missing Debian packages with apt-get (scripts/deps.sh). Builds
# offline: Go peers use GO111MODULE=off and GOPATH=/usr/share/gocode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

families=(raft store wal cluster snapshot)
available=(raft store wal cluster snapshot)

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

# The store family's peer (bench/peers/go-memdb) exists; keel's side is
# bench/store.bench.cpp, built as keel_store_bench. Without it there is
# nothing to compare: fail (or, for 'all', skip) before building anything.
store_missing() {
  [[ -f bench/store.bench.cpp ]] && return 1
  echo "keel's store benchmark does not exist yet: bench/store.bench.cpp (CMake target keel_store_bench, built into \$BUILD_DIR/bench/) is missing; its output contract is in docs/benchmarks.md, section 'store'"
}
if [[ $name == store ]] && why=$(store_missing); then
  echo "keel bench: cannot run 'store': $why" >&2
  exit 2
fi

# The cluster family's peer (bench/peers/etcd) exists; keel's side is
# bench/cluster.bench.cpp, built as keel_cluster_bench. CLUSTER_PEER_ONLY=1
# runs the peer alone.
cluster_missing() {
  [[ -f bench/cluster.bench.cpp || ${CLUSTER_PEER_ONLY:-0} == 1 ]] && return 1
  echo "keel's cluster benchmark does not exist yet: bench/cluster.bench.cpp (CMake target keel_cluster_bench, built into \$BUILD_DIR/bench/) is missing; its contract is in docs/benchmarks.md, section 'cluster' (CLUSTER_PEER_ONLY=1 runs etcd's side alone)"
}
if [[ $name == cluster ]] && why=$(cluster_missing); then
  echo "keel bench: cannot run 'cluster': $why" >&2
  exit 2
fi

# The snapshot family moves 3 x SNAPSHOT_BYTES through the disk per run: 3 runs.
default_runs=5
[[ $name == snapshot ]] && default_runs=3
runs=${RUNS:-$default_runs}
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 3)); then
  echo "keel bench: RUNS must be a number >= 3 (medians need at least 3 runs), got '$runs'" >&2
  exit 2
fi
benchtime=${BENCHTIME:-1}
build_dir=${BUILD_DIR:-build-bench}
jobs=${JOBS:-$(nproc)}

log() { echo "keel bench: $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
cleanup_dirs=("$tmp")  # removed on exit; a family may add its own
trap 'rm -rf "${cleanup_dirs[@]}"' EXIT
trap 'exit 130' INT TERM

# --- dependencies ---------------------------------------------------------------

source scripts/deps.sh
# apt-get reports on stdout, which is for the JSON lines only.
keel_deps_install cmake g++ make libboost-dev libbenchmark-dev jq golang-go golang-etcd-server-dev \
  golang-github-hashicorp-go-memdb-dev >&2

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

# build_keel TARGET SOURCE [grpc]: builds a keel benchmark in Release into
# BUILD_DIR through CMake; falls back to g++ only if the CMake target does not
# exist. With `grpc` the gRPC adapter is built too (KEEL_WITH_GRPC=ON), and
# there is no fallback: the adapter's generated code needs CMake.
# Prints the binary's path.
build_keel() {
  local target=$1 src=$2 grpc=OFF
  [[ ${3:-} == grpc ]] && grpc=ON
  if [[ -f bench/CMakeLists.txt ]]; then
    log "configuring $build_dir (Release, benchmarks only, gRPC adapter $grpc)"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKEEL_BUILD_BENCH=ON \
      -DKEEL_BUILD_TESTS=OFF -DKEEL_BUILD_EXAMPLES=OFF -DKEEL_WITH_GRPC="$grpc" >&2
    # grep without -q reads to the end: -q would quit at the match, cmake (make)
    # would fail on the closed pipe, and pipefail would fail the test.
    if cmake --build "$build_dir" --target help 2>/dev/null | grep -w "$target" >/dev/null; then
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
  if [[ $grpc == ON ]]; then
    log "no CMake target $target (it needs bench/CMakeLists.txt and the gRPC adapter)"
    exit 2
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

# --- store --------------------------------------------------------------------------

# keel_store_bench (bench/store.bench.cpp) and bench/peers/go-memdb run the
# same cases on the same SwarmKit-like task table and print the same lines
# (contract: docs/benchmarks.md, section "store"):
#   case=<name> objects=<N> ops=<count> ns=<wall ns> ops_per_s=<ops/s>
#   case=mem_per_object objects=<N> bytes=<heap growth> bytes_per_object=<bytes>
store_cases=(insert_1_per_txn insert_1000_per_txn update_1_per_txn get_by_id scan_by_service
  mem_per_object)

# store_value FILE CASE OBJECTS: the case's figure (ops_per_s, or
# bytes_per_object for mem_per_object) in a store bench's output; fails
# unless exactly one line reports that case for that table size.
store_value() {
  awk -v c="$2" -v n="$3" '
    /^case=/ {
      delete kv
      for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        if (eq > 1) kv[substr($i, 1, eq - 1)] = substr($i, eq + 1)
      }
      if (kv["case"] != c || kv["objects"] != n) next
      key = (c == "mem_per_object") ? "bytes_per_object" : "ops_per_s"
      if (!(key in kv) || kv[key] !~ /^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/) { bad = 1; next }
      v = kv[key]; found++
    }
    END { if (bad || found != 1) exit 1; print v }' "$1"
}

bench_store() {
  local sizes=${STORE_OBJECTS:-200000 1000000} n
  for n in $sizes; do
    if ! [[ $n =~ ^[1-9][0-9]*$ ]] || ((n % 1000)); then
      log "STORE_OBJECTS must list positive multiples of 1000, got '$n'"
      exit 2
    fi
  done

  local keel_bin peers="$build_dir/peers"
  keel_bin=$(build_keel keel_store_bench bench/store.bench.cpp)
  [[ -x $keel_bin ]] || { log "keel_store_bench was not built ($keel_bin)"; exit 2; }

  mkdir -p "$peers" "$build_dir/go-cache"
  log "building the go-memdb peer (offline, GOPATH=/usr/share/gocode)"
  (cd bench/peers/go-memdb && go_env go build -o "$root/$peers/go-memdb-bench" .)

  local r c
  # run_side SIDE BIN: one run of one side for table size n, its figures
  # appended to $tmp/store.SIDE.CASE.n.
  run_side() {
    local side=$1 bin=$2 out
    out="$tmp/store-$side-$n-$r.txt"
    log "objects=$n run $r/$runs: $side ($bin --objects=$n --benchtime=$benchtime)"
    if ! "$bin" --objects="$n" --benchtime="$benchtime" >"$out"; then
      cat "$out" >&2
      log "$side's store bench failed (objects=$n, run $r)"
      exit 1
    fi
    cat "$out" >&2
    for c in "${store_cases[@]}"; do
      store_value "$out" "$c" "$n" >>"$tmp/store.$side.$c.$n" ||
        { log "$side's store bench printed no single valid figure for case=$c objects=$n"; exit 1; }
    done
  }
  for n in $sizes; do
    for ((r = 1; r <= runs; r++)); do
      # Alternate who goes first so neither side always meets a warmer machine.
      if ((r % 2)); then
        run_side keel "$keel_bin"; run_side go-memdb "$peers/go-memdb-bench"
      else
        run_side go-memdb "$peers/go-memdb-bench"; run_side keel "$keel_bin"
      fi
    done
  done

  # All runs done: only now print, so a failure leaves no partial JSON.
  local keel peer
  for n in $sizes; do
    for c in "${store_cases[@]}"; do
      keel=$(median "$tmp/store.keel.$c.$n")
      peer=$(median "$tmp/store.go-memdb.$c.$n")
      awk -v k="$keel" -v p="$peer" -v c="$c" -v n="$n" -v runs="$runs" 'BEGIN {
        mem = (c == "mem_per_object")
        printf "{\"bench\":\"store\",\"case\":\"%s\",\"unit\":\"%s\",", c, mem ? "bytes" : "ops/s"
        if (mem) printf "\"keel\":%.1f,\"peer\":\"go-memdb\",\"peer_value\":%.1f,", k, p
        else printf "\"keel\":%.0f,\"peer\":\"go-memdb\",\"peer_value\":%.0f,", k, p
        ratio = 0
        if (p > 0) ratio = k / p
        printf "\"ratio\":%.2f,", ratio
        if (mem) printf "\"lower_is_better\":true,"
        if (c == "insert_1000_per_txn" || c == "get_by_id") printf "\"per_txn\":1000,"
        else if (c == "insert_1_per_txn" || c == "update_1_per_txn") printf "\"per_txn\":1,"
        printf "\"objects\":%d,\"runs\":%d}\n", n, runs }'
    done
  done >"$tmp/store.json"
  cat "$tmp/store.json"
}

# --- wal ------------------------------------------------------------------------------

# keel_wal_bench (bench/wal.bench.cpp) measures keel's WAL and its raw peer
# back to back in one process, per write mode, and prints per measurement
# (contract: docs/benchmarks.md, section "wal"):
#   case=<c> side=<keel|raw-...> mode=<mmap|pwrite> ops=.. ns=.. ops_per_s=.. bytes=.. mb_per_s=..
wal_cases=(sync_append_256b group_commit recovery)
wal_modes=(mmap pwrite)

# wal_peer CASE: the raw peer's id.
wal_peer() {
  case $1 in
    sync_append_256b) echo raw-fsync ;;
    group_commit) echo raw-seq-write ;;
    recovery) echo raw-seq-read ;;
  esac
}

# wal_value FILE CASE SIDE MODE KEY: the KEY figure of the single line for
# CASE, SIDE and MODE in a wal bench's output; fails unless there is
# exactly one, with a valid number.
wal_value() {
  awk -v c="$2" -v s="$3" -v m="$4" -v key="$5" '
    /^case=/ {
      delete kv
      for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        if (eq > 1) kv[substr($i, 1, eq - 1)] = substr($i, eq + 1)
      }
      if (kv["case"] != c || kv["side"] != s || kv["mode"] != m) next
      if (!(key in kv) || kv[key] !~ /^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/) { bad = 1; next }
      v = kv[key]; found++
    }
    END { if (bad || found != 1) exit 1; print v }' "$1"
}

bench_wal() {
  local mib=${WAL_RECOVERY_MIB:-1024}
  if ! [[ $mib =~ ^[1-9][0-9]*$ ]]; then
    log "WAL_RECOVERY_MIB must be a positive number of MiB, got '$mib'"
    exit 2
  fi
  local parent=${WAL_DIR:-$build_dir}
  mkdir -p "$parent"
  parent=$(cd "$parent" && pwd)

  # fdatasync on tmpfs is free: the figures would say nothing about a disk.
  # (stat -f names ext4 "ext2/ext3", findmnt names it right; with mounts
  # stacked on one point findmnt lists each, the one in effect last.)
  local fs source
  case $(stat -f -c %T "$parent") in
    tmpfs | ramfs)
      log "$parent is on $(stat -f -c %T "$parent"): the WAL benchmark needs a disk;" \
        "set WAL_DIR to a directory on one"
      exit 2
      ;;
  esac
  fs=$(findmnt -n -o FSTYPE -T "$parent" 2>/dev/null | tail -n 1)
  [[ -n $fs ]] || fs=$(stat -f -c %T "$parent")
  source=$(findmnt -n -o SOURCE -T "$parent" 2>/dev/null | tail -n 1)
  # Room for the recovery WAL (and its spare segment), and for group commit
  # at up to 2 GB/s for BENCHTIME seconds: all deleted after each case.
  local need avail
  need=$(awk -v m="$mib" -v t="$benchtime" 'BEGIN { printf "%d", m + 128 + 2000 * t }')
  avail=$(df -P -m "$parent" | awk 'NR == 2 { print $4 }')
  if [[ -n $avail ]] && ((avail < need)); then
    log "$parent has $avail MiB free; the wal benchmark needs about $need MiB" \
      "(lower WAL_RECOVERY_MIB or BENCHTIME, or set WAL_DIR)"
    exit 2
  fi

  local keel_bin
  keel_bin=$(build_keel keel_wal_bench bench/wal.bench.cpp)
  [[ -x $keel_bin ]] || { log "keel_wal_bench was not built ($keel_bin)"; exit 2; }

  local data
  data=$(mktemp -d "$parent/keel-wal-bench.XXXXXX")
  cleanup_dirs+=("$data")
  log "wal: writing in $data ($fs on ${source:-an unknown device}), recovery WAL of $mib MiB"

  local r c m out
  for ((r = 1; r <= runs; r++)); do
    # Every other run reverses the order of the measurements, so each side
    # and mode goes first equally often.
    local order=()
    ((r % 2)) || order=(--reverse)
    out="$tmp/wal-$r.txt"
    log "run $r/$runs: $keel_bin --dir=$data --benchtime=$benchtime --recovery-mib=$mib ${order[*]}"
    if ! "$keel_bin" --dir="$data" --benchtime="$benchtime" --recovery-mib="$mib" \
      "${order[@]}" >"$out"; then
      cat "$out" >&2
      log "keel_wal_bench failed (run $r)"
      exit 1
    fi
    cat "$out" >&2
    for c in "${wal_cases[@]}"; do
      local key=mb_per_s peer
      [[ $c == sync_append_256b ]] && key=ops_per_s
      peer=$(wal_peer "$c")
      for m in "${wal_modes[@]}"; do
        wal_value "$out" "$c" keel "$m" "$key" >>"$tmp/wal.keel.$c.$m" ||
          { log "no single valid figure for case=$c side=keel mode=$m"; exit 1; }
        wal_value "$out" "$c" "$peer" "$m" "$key" >>"$tmp/wal.peer.$c.$m" ||
          { log "no single valid figure for case=$c side=$peer mode=$m"; exit 1; }
      done
    done
  done

  # All runs done: only now print, so a failure leaves no partial JSON.
  local keel peer_value
  for c in "${wal_cases[@]}"; do
    for m in "${wal_modes[@]}"; do
      keel=$(median "$tmp/wal.keel.$c.$m")
      peer_value=$(median "$tmp/wal.peer.$c.$m")
      awk -v k="$keel" -v p="$peer_value" -v c="$c" -v m="$m" -v peer="$(wal_peer "$c")" \
        -v fs="$fs" -v mib="$mib" -v runs="$runs" 'BEGIN {
        ops = (c == "sync_append_256b")
        printf "{\"bench\":\"wal\",\"case\":\"%s\",\"unit\":\"%s\",", c, ops ? "ops/s" : "MB/s"
        if (ops) printf "\"keel\":%.0f,\"peer\":\"%s\",\"peer_value\":%.0f,", k, peer, p
        else printf "\"keel\":%.1f,\"peer\":\"%s\",\"peer_value\":%.1f,", k, peer, p
        printf "\"ratio\":%.2f,\"mode\":\"%s\",", (p > 0 ? k / p : 0), m
        if (c == "sync_append_256b")
          printf "\"entry_bytes\":256,\"batch\":1,\"peer_write_bytes\":4096,\"target_ratio\":0.9,"
        else if (c == "group_commit")
          printf "\"entry_bytes\":1024,\"batch\":1024,\"peer_write_bytes\":1048576,\"target_ratio\":0.8,"
        else
          printf "\"entry_bytes\":256,\"wal_mib\":%d,\"target_mb_per_s\":1000,", mib
        printf "\"fs\":\"%s\",\"runs\":%d}\n", fs, runs }'
    done
  done >"$tmp/wal.json"
  cat "$tmp/wal.json"
}

# --- cluster ------------------------------------------------------------------------

# keel_cluster_bench (bench/cluster.bench.cpp) runs three keel nodes and
# bench/peers/etcd a 3-member etcd cluster (bench/peers/etcd/cluster.sh); in
# both, WRITERS concurrent writers write 256-byte values through the leader
# for BENCHTIME seconds. One invocation is one run at one concurrency and
# prints exactly one JSON line (contract: docs/benchmarks.md, section
# "cluster"):
#   {"side":"keel"|"etcd","writers":N,"ops_per_s":X,"p50_ms":Y,"p99_ms":Z}

# cluster_value FILE SIDE WRITERS KEY: the KEY figure of the one JSON line in
# FILE; fails unless FILE holds exactly one JSON value, for SIDE and WRITERS,
# whose KEY is a number >= 0.
cluster_value() {
  jq -ers --arg s "$2" --argjson w "$3" --arg k "$4" '
    if length != 1 then error("expected exactly one JSON line, got \(length)") else .[0] end
    | if .side != $s or .writers != $w
      then error("expected side \($s) and writers \($w), got \(.side) and \(.writers)") else . end
    | .[$k] | if type == "number" and . >= 0 then . else error("\($k) is not a number >= 0") end' "$1"
}

bench_cluster() {
  local writers_list=${CLUSTER_WRITERS:-1 16 64 256} w
  for w in $writers_list; do
    if ! [[ $w =~ ^[1-9][0-9]*$ ]]; then
      log "CLUSTER_WRITERS must list positive numbers of writers, got '$w'"
      exit 2
    fi
  done
  if ! [[ $benchtime =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $benchtime =~ ^0+(\.0+)?$ ]]; then
    log "BENCHTIME must be a positive number of seconds, got '$benchtime'"
    exit 2
  fi
  local peer_only=0
  [[ ${CLUSTER_PEER_ONLY:-0} == 1 ]] && peer_only=1

  local parent=${CLUSTER_DIR:-$build_dir}
  mkdir -p "$parent"
  parent=$(cd "$parent" && pwd)
  # Both sides fsync their WAL on every commit; on tmpfs that is free and the
  # figures would say nothing about a disk (as for the wal family).
  local fs source
  case $(stat -f -c %T "$parent") in
    tmpfs | ramfs)
      log "$parent is on $(stat -f -c %T "$parent"): the cluster benchmark needs a disk;" \
        "set CLUSTER_DIR to a directory on one"
      exit 2
      ;;
  esac
  fs=$(findmnt -n -o FSTYPE -T "$parent" 2>/dev/null | tail -n 1)
  [[ -n $fs ]] || fs=$(stat -f -c %T "$parent")
  source=$(findmnt -n -o SOURCE -T "$parent" 2>/dev/null | tail -n 1)
  # etcd preallocates a 64 MiB WAL segment per member; keel's nodes need
  # about as much. One run's data is removed before the next starts.
  local avail
  avail=$(df -P -m "$parent" | awk 'NR == 2 { print $4 }')
  if [[ -n $avail ]] && ((avail < 1024)); then
    log "$parent has $avail MiB free; the cluster benchmark needs about 1024 MiB (set CLUSTER_DIR)"
    exit 2
  fi

  keel_deps_install "${KEEL_BENCH_CLUSTER_DEPS[@]}" >&2

  local keel_bin="" peers="$build_dir/peers"
  if ((!peer_only)); then
    keel_bin=$(build_keel keel_cluster_bench bench/cluster.bench.cpp grpc)
    [[ -x $keel_bin ]] || { log "keel_cluster_bench was not built ($keel_bin)"; exit 2; }
  fi

  mkdir -p "$peers" "$build_dir/go-cache"
  log "building the etcd client peer (offline, GOPATH=/usr/share/gocode)"
  (cd bench/peers/etcd && go_env go build -o "$root/$peers/etcd-cluster-bench" .)

  local data
  data=$(mktemp -d "$parent/keel-cluster-bench.XXXXXX")
  cleanup_dirs+=("$data")
  log "cluster: data in $data ($fs on ${source:-an unknown device}), writers $writers_list," \
    "$benchtime s per run$( ((peer_only)) && echo ", etcd's side only (CLUSTER_PEER_ONLY=1)")"

  local r k
  # record SIDE OUT: appends the run's figures to $tmp/cluster.SIDE.KEY.w.
  record() {
    for k in ops_per_s p50_ms p99_ms; do
      cluster_value "$2" "$1" "$w" "$k" >>"$tmp/cluster.$1.$k.$w" ||
        { log "$1's cluster bench printed no valid '$k' (writers=$w, run $r)"; exit 1; }
    done
  }
  run_keel() {
    local dir="$data/keel-w$w-r$r" out="$tmp/cluster-keel-$w-$r.json"
    mkdir "$dir"
    log "writers=$w run $r/$runs: keel ($keel_bin --writers $w --seconds $benchtime --dir $dir)"
    if ! "$keel_bin" --writers "$w" --seconds "$benchtime" --dir "$dir" >"$out"; then
      cat "$out" >&2
      log "keel's cluster bench failed (writers=$w, run $r)"
      exit 1
    fi
    cat "$out" >&2
    record keel "$out"
    # The optional "transport" field names how keel's nodes talked.
    jq -r '.transport // empty | select(test("^[A-Za-z0-9_.-]+$"))' "$out" >"$tmp/cluster.transport"
    rm -rf "$dir"
  }
  run_etcd() {
    local out="$tmp/cluster-etcd-$w-$r.json"
    log "writers=$w run $r/$runs: etcd (3 members, etcd-cluster-bench -writers $w -seconds $benchtime)"
    if ! bench/peers/etcd/cluster.sh "$data" -- \
      "$peers/etcd-cluster-bench" -writers "$w" -seconds "$benchtime" >"$out"; then
      cat "$out" >&2
      log "etcd's cluster bench failed (writers=$w, run $r)"
      exit 1
    fi
    cat "$out" >&2
    record etcd "$out"
  }
  for w in $writers_list; do
    for ((r = 1; r <= runs; r++)); do
      # Alternate who goes first so neither side always meets a warmer machine.
      if ((peer_only)); then
        run_etcd
      elif ((r % 2)); then
        run_keel; run_etcd
      else
        run_etcd; run_keel
      fi
    done
  done

  # All runs done: only now print, so a failure leaves no partial JSON. Each
  # figure is its own median over the runs. Without keel's side (peer only)
  # keel's figures and the ratios are null.
  local kv kp50 kp99 ev ep50 ep99 transport=""
  [[ -s $tmp/cluster.transport ]] && transport=$(<"$tmp/cluster.transport")
  for w in $writers_list; do
    ev=$(median "$tmp/cluster.etcd.ops_per_s.$w")
    ep50=$(median "$tmp/cluster.etcd.p50_ms.$w")
    ep99=$(median "$tmp/cluster.etcd.p99_ms.$w")
    kv=null kp50=null kp99=null
    if ((!peer_only)); then
      kv=$(median "$tmp/cluster.keel.ops_per_s.$w")
      kp50=$(median "$tmp/cluster.keel.p50_ms.$w")
      kp99=$(median "$tmp/cluster.keel.p99_ms.$w")
    fi
    awk -v kv="$kv" -v kp50="$kp50" -v kp99="$kp99" -v ev="$ev" -v ep50="$ep50" -v ep99="$ep99" \
      -v w="$w" -v fs="$fs" -v transport="$transport" -v runs="$runs" '
      function num(x, fmt) { return x == "null" ? "null" : sprintf(fmt, x) }
      function ratio(k, p) { return (k == "null" || p <= 0) ? "null" : sprintf("%.2f", k / p) }
      function tail() {
        return sprintf("\"writers\":%d,\"value_bytes\":256,\"fs\":\"%s\",%s%s\"runs\":%d}\n", w, fs,
                       transport == "" ? "" : "\"keel_transport\":\"" transport "\",",
                       kv == "null" ? "\"peer_only\":true," : "", runs) }
      BEGIN {
        printf "{\"bench\":\"cluster\",\"case\":\"update_256b\",\"unit\":\"ops/s\","
        printf "\"keel\":%s,\"peer\":\"etcd\",\"peer_value\":%.0f,\"ratio\":%s,", num(kv, "%.0f"), ev, ratio(kv, ev)
        printf "\"p50_ms\":%s,\"p99_ms\":%s,", num(kp50, "%.3f"), num(kp99, "%.3f")
        printf "\"peer_p50_ms\":%.3f,\"peer_p99_ms\":%.3f,%s", ep50, ep99, tail()
        printf "{\"bench\":\"cluster\",\"case\":\"update_256b_p50\",\"unit\":\"ms\","
        printf "\"keel\":%s,\"peer\":\"etcd\",\"peer_value\":%.3f,\"ratio\":%s,", num(kp50, "%.3f"), ep50, ratio(kp50, ep50)
        printf "\"lower_is_better\":true,%s", tail()
        printf "{\"bench\":\"cluster\",\"case\":\"update_256b_p99\",\"unit\":\"ms\","
        printf "\"keel\":%s,\"peer\":\"etcd\",\"peer_value\":%.3f,\"ratio\":%s,", num(kp99, "%.3f"), ep99, ratio(kp99, ep99)
        printf "\"lower_is_better\":true,%s", tail() }'
  done >"$tmp/cluster.json"
  cat "$tmp/cluster.json"
}

# --- snapshot ---------------------------------------------------------------------

# keel_snapshot_bench (bench/snapshot.bench.cpp) runs everything itself, each
# sender and receiver in a process of its own: a SNAPSHOT_BYTES snapshot
# streamed by the gRPC transport over loopback with TLS off and on, the same
# bytes over a raw loopback TCP socket (peer raw-tcp), and heartbeat round
# trips against a raw TCP ping-pong; it alternates the order of the cases
# between runs and prints the medians as this family's JSON lines (contract:
# docs/benchmarks.md, section "snapshot"). The script checks them and adds
# the file system.
KEEL_BENCH_SNAPSHOT_DEPS=(pkg-config protobuf-compiler libprotobuf-dev libgrpc++-dev
  protobuf-compiler-grpc openssl)

bench_snapshot() {
  local bytes=${SNAPSHOT_BYTES:-1073741824} rtt=${SNAPSHOT_RTT_SECONDS:-2}
  if ! [[ $bytes =~ ^[1-9][0-9]*$ ]]; then
    log "SNAPSHOT_BYTES must be a positive number of bytes, got '$bytes'"
    exit 2
  fi
  if ! [[ $rtt =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $rtt =~ ^0+(\.0+)?$ ]]; then
    log "SNAPSHOT_RTT_SECONDS must be a positive number of seconds, got '$rtt'"
    exit 2
  fi
  local parent=${SNAPSHOT_DIR:-$build_dir}
  mkdir -p "$parent"
  parent=$(cd "$parent" && pwd)
  # The receivers fsync what they write; on tmpfs that is free.
  local fs source
  case $(stat -f -c %T "$parent") in
    tmpfs | ramfs)
      log "$parent is on $(stat -f -c %T "$parent"): the snapshot benchmark needs a disk;" \
        "set SNAPSHOT_DIR to a directory on one"
      exit 2
      ;;
  esac
  fs=$(findmnt -n -o FSTYPE -T "$parent" 2>/dev/null | tail -n 1)
  [[ -n $fs ]] || fs=$(stat -f -c %T "$parent")
  source=$(findmnt -n -o SOURCE -T "$parent" 2>/dev/null | tail -n 1)
  # The sender's snapshot, and one receiver's copy at a time (removed after
  # each transfer).
  local need avail
  need=$(awk -v b="$bytes" 'BEGIN { printf "%d", 2 * b / 1048576 + 256 }')
  avail=$(df -P -m "$parent" | awk 'NR == 2 { print $4 }')
  if [[ -n $avail ]] && ((avail < need)); then
    log "$parent has $avail MiB free; the snapshot benchmark needs about $need MiB" \
      "(lower SNAPSHOT_BYTES or set SNAPSHOT_DIR)"
    exit 2
  fi

  keel_deps_install "${KEEL_BENCH_SNAPSHOT_DEPS[@]}" >&2
  local keel_bin
  keel_bin=$(build_keel keel_snapshot_bench bench/snapshot.bench.cpp grpc)
  [[ -x $keel_bin ]] || { log "keel_snapshot_bench was not built ($keel_bin)"; exit 2; }

  local data out="$tmp/snapshot.json"
  data=$(mktemp -d "$parent/keel-snapshot-bench.XXXXXX")
  cleanup_dirs+=("$data")
  log "snapshot: files in $data ($fs on ${source:-an unknown device}), $bytes bytes," \
    "$runs runs, round trips for $rtt s"
  if ! "$keel_bin" --dir "$data" --bytes "$bytes" --runs "$runs" --rtt-seconds "$rtt" >"$out"; then
    cat "$out" >&2
    log "keel_snapshot_bench failed"
    exit 1
  fi
  # Four lines (snapshot and round trips, each plain and tls), every one with
  # numeric figures; only then print, so a failure leaves no partial JSON.
  jq -cs --arg fs "$fs" '
    if length != 4 then error("expected 4 JSON lines, got \(length)") else . end
    | .[] | if .bench == "snapshot" and (.keel | type) == "number" and .keel > 0
               and (.peer_value | type) == "number" and .peer_value > 0
            then . + {fs: $fs} else error("a bad line: \(tojson)") end' "$out" >"$tmp/snapshot.checked" ||
    { cat "$out" >&2; log "keel_snapshot_bench printed unexpected lines"; exit 1; }
  cat "$tmp/snapshot.checked"
}

# --- dispatch ---------------------------------------------------------------------------

if [[ $name == all ]]; then
  for f in "${families[@]}"; do
    if [[ $f == store ]] && why=$(store_missing); then
      log "skipping 'store': $why"
    elif [[ $f == cluster ]] && why=$(cluster_missing); then
      log "skipping 'cluster': $why"
    elif is_available "$f"; then
      "bench_$f"
    else
      log "skipping '$f': not yet available"
    fi
  done
else
  "bench_$name"
fi
