#!/usr/bin/env bash
# Builds and runs keel's demo (examples/demo.cpp); arguments go to the demo.
#
#   scripts/demo.sh [demo args...]
#
# Environment: BUILD_DIR (default build), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/deps.sh
keel_deps_install "${KEEL_BASE_DEPS[@]}"

if [[ ! -f examples/demo.cpp ]]; then
  echo "demo.sh: examples/demo.cpp does not exist yet" >&2
  exit 1
fi

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_BUILD_EXAMPLES=ON >&2
cmake --build "$build_dir" --target keel_demo --parallel "$jobs" >&2
exec "$build_dir/examples/keel_demo" "$@"
