#!/usr/bin/env bash
# Installs the Debian packages keel's scripts need, only those missing.
#
#   scripts/deps.sh [package...]   install the base list plus the given packages
#   source scripts/deps.sh         define KEEL_BASE_DEPS, KEEL_BENCH_CLUSTER_DEPS and
#                                  keel_deps_install
#
# Uses apt-get non-interactively; needs root (or sudo) only when something is
# actually missing.

KEEL_BASE_DEPS=(cmake g++ make catch2 libboost-dev libbenchmark-dev pkg-config
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc openssl libspdlog-dev)

# The cluster benchmark's peer (scripts/bench.sh cluster): the etcd server, and
# its Go client built offline. Installed only when that benchmark runs, since
# on a machine with systemd etcd-server's package also starts an etcd
# service (on the default ports 2379/2380, which the benchmark does not use).
# shellcheck disable=SC2034  # used by the scripts that source this file
KEEL_BENCH_CLUSTER_DEPS=(etcd-server golang-go golang-etcd-server-dev)

# keel_deps_install package...: installs those of the packages not yet installed.
keel_deps_install() {
  local pkg missing=()
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "keel: installing missing packages: ${missing[*]}" >&2
  local sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "keel: missing packages ${missing[*]}; run as root or install them" >&2
      return 1
    fi
  fi
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update || return 1
  "${apt[@]}" install --no-install-recommends "${missing[@]}" || return 1
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  keel_deps_install "${KEEL_BASE_DEPS[@]}" "$@"
fi
