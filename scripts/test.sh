#!/usr/bin/env bash
# Configures, builds and runs keel's tests; exits non-zero on any failure.
#
#   scripts/test.sh [extra cmake args...]
#
# Environment: BUILD_DIR (default build), JOBS (default nproc).
# Example: BUILD_DIR=build-asan scripts/test.sh -DKEEL_SANITIZE=ON
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/deps.sh
keel_deps_install "${KEEL_BASE_DEPS[@]}"

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"

# Extra arguments come last, so they override the defaults here.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_BUILD_TESTS=ON "$@"
cmake --build "$build_dir" --parallel "$jobs"
ctest --test-dir "$build_dir" --output-on-failure --parallel "$jobs"
