#!/usr/bin/env bash
# Builds keel's libFuzzer targets (tests/fuzz/*.fuzz.cpp) with clang, ASan
# and UBSan, and runs each for a bounded number of inputs.
#
#   scripts/fuzz.sh            FUZZ_RUNS (default 500000) inputs per target
#   FUZZ_SECONDS=600 scripts/fuzz.sh   stop each target after this long (default 120)
#
# Installs clang and its runtime libraries when missing. Crashing inputs are
# written to build-fuzz/ and fail the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/deps.sh
keel_deps_install "${KEEL_BASE_DEPS[@]}" clang libclang-rt-14-dev

out=${BUILD_DIR:-build-fuzz}
runs=${FUZZ_RUNS:-500000}
seconds=${FUZZ_SECONDS:-120}
mkdir -p "$out"
for src in tests/fuzz/*.fuzz.cpp; do
  name=$(basename "$src" .fuzz.cpp)
  echo "fuzz: building $name" >&2
  clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Iinclude "$src" -o "$out/$name"
  mkdir -p "$out/$name.corpus"
  echo "fuzz: running $name ($runs inputs, at most ${seconds}s)" >&2
  (cd "$out" && "./$name" -runs="$runs" -max_total_time="$seconds" -max_len=16384 \
    -print_final_stats=1 "$name.corpus")
done
