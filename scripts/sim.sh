#!/usr/bin/env bash
# Runs the deterministic cluster simulation over N seeds and prints a summary;
# exits non-zero if any seed fails, naming it and how to replay it.
#
#   scripts/sim.sh N [FIRST_SEED]     seeds FIRST_SEED .. FIRST_SEED + N - 1 (default 1)
#   scripts/sim.sh 1 SEED             replays one seed and prints its run
#
# Environment: BUILD_DIR (default build-sim), JOBS (parallel runs and build
# jobs, default nproc); KEEL_SIM_MEMBERSHIP=0 runs without voter replacements,
# KEEL_SIM_STALE_READS=1 with the broken read path the checker must catch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if (($# < 1 || $# > 2)) || ! [[ "$1" =~ ^[0-9]+$ ]] || ! [[ "${2:-1}" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/sim.sh N [FIRST_SEED]" >&2
  exit 2
fi
count="$1"
first="${2:-1}"

source scripts/deps.sh
keel_deps_install "${KEEL_BASE_DEPS[@]}"

build_dir="${BUILD_DIR:-build-sim}"
jobs="${JOBS:-$(nproc)}"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_BUILD_TESTS=ON \
  -DKEEL_TEST_FOLDERS=sim -DKEEL_BUILD_BENCH=OFF -DKEEL_BUILD_EXAMPLES=OFF \
  -DKEEL_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build_dir" --target keel_sim_tests --parallel "$jobs"
exe="$build_dir/tests/keel_sim_tests"

# One contiguous range of seeds per job; each run is independent.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
((jobs > count)) && jobs=$((count > 0 ? count : 1))
per=$(((count + jobs - 1) / jobs))
start=$SECONDS
pids=()
for ((j = 0; j < jobs; j++)); do
  from=$((first + j * per))
  n=$((count - j * per < per ? count - j * per : per))
  ((n > 0)) || continue
  # Catch's own report goes to a file: the log holds only the runs' lines.
  KEEL_SIM_SEEDS="$n" KEEL_SIM_FIRST_SEED="$from" \
    "$exe" "[.sweep]" -o "$logs/$j.catch" >"$logs/$j.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

failed=()
passed=0
for log in "$logs"/*.log; do
  [[ -e "$log" ]] || continue
  # Failures and single-seed runs print their stories.
  grep -v '^keel-sim: seeds ' "$log" || true
  line="$(grep '^keel-sim: seeds ' "$log" || true)"
  if [[ -z "$line" ]]; then
    echo "keel-sim: a run ended without its summary (crashed?); Catch says:" >&2
    cat "${log%.log}.catch" >&2 || true
    status=1
    continue
  fi
  passed=$((passed + $(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")))
  read -r -a seeds <<<"$(sed -E 's/.* failed ?//' <<<"$line")"
  failed+=("${seeds[@]}")
done

echo "keel-sim: $count seeds from $first: $passed passed, ${#failed[@]} failed ($((SECONDS - start))s, $jobs jobs)"
if ((${#failed[@]})); then
  for seed in "${failed[@]}"; do
    echo "keel-sim: seed $seed failed; replay it with:" \
      "${KEEL_SIM_MEMBERSHIP:+KEEL_SIM_MEMBERSHIP=$KEEL_SIM_MEMBERSHIP }${KEEL_SIM_STALE_READS:+KEEL_SIM_STALE_READS=$KEEL_SIM_STALE_READS }scripts/sim.sh 1 $seed"
  done
  exit 1
fi
exit "$status"
