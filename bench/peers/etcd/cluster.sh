#!/usr/bin/env bash
# Starts a 3-member etcd cluster on loopback for keel's cluster benchmark,
# runs a command against it, and stops it again.
#
#   bench/peers/etcd/cluster.sh PARENT_DIR -- COMMAND [ARG...]
#   bench/peers/etcd/cluster.sh PARENT_DIR          (run until Ctrl-C)
#
# The members' data directories (and their logs, m1.log ...) go into a fresh
# `mktemp -d` directory inside PARENT_DIR, which must exist; put it on the
# disk to measure, since etcd fsyncs its WAL there. Each member listens on
# 127.0.0.1 only, on ports picked at random among those nothing listens on
# (a start that loses a race for a port is retried with new ones). etcd runs
# with its defaults otherwise: fsync on, 100 ms heartbeat, 1 s election
# timeout, zap logging to the member's log file.
#
# Once every member's /health says true, COMMAND runs with ETCD_ENDPOINTS set
# to the three client URLs, comma-separated; the script exits with its
# status. Without a command it prints the endpoints on stdout and waits. On
# exit, also on failure or a signal, it stops the members (SIGTERM, then
# SIGKILL after 1 s) and removes their data. Progress goes to stderr.
#
# Environment: ETCD (default: etcd on PATH), ETCD_START_TIMEOUT (seconds to
# wait for a healthy cluster, default 30).
set -euo pipefail

usage() {
  echo "usage: $0 PARENT_DIR [-- COMMAND [ARG...]]" >&2
  exit 2
}
(($# >= 1)) || usage
parent=$1
shift
if (($# > 0)); then
  [[ $1 == -- ]] || usage
  shift
  (($# > 0)) || usage
fi
[[ -d $parent ]] || { echo "etcd cluster: $parent is not a directory" >&2; exit 2; }

etcd_bin=${ETCD:-etcd}
command -v "$etcd_bin" >/dev/null ||
  { echo "etcd cluster: no '$etcd_bin' on PATH (Debian package etcd-server)" >&2; exit 2; }
start_timeout=${ETCD_START_TIMEOUT:-30}

log() { echo "etcd cluster: $*" >&2; }

dir=$(mktemp -d "$parent/etcd-cluster.XXXXXX")
pids=()
cmd_pid=

# stop_members: SIGTERM to every member still running, SIGKILL to those
# still there after 1 s; waits for all. A member that is leader answers
# SIGTERM by handing leadership over first, which takes etcd 3.4 some 7 s
# when the others are stopping too; the data is thrown away, so there is no
# point in waiting for that.
stop_members() {
  local p i
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 10; i++)); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

cleanup() {
  if [[ -n $cmd_pid ]]; then kill -TERM "$cmd_pid" 2>/dev/null || true; fi
  stop_members
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# listening PORT: whether something accepts connections on 127.0.0.1:PORT.
listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# healthy PORT: whether the member serving clients on PORT reports health.
healthy() {
  local resp
  resp=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
    timeout 2 cat <&3) 2>/dev/null) || return 1
  [[ $resp == *'"health":"true"'* ]]
}

# pick_ports: six distinct free ports below Linux's ephemeral range
# (32768..60999), so that outgoing connections' ports do not collide.
pick_ports() {
  ports=()
  local p q dup
  while ((${#ports[@]} < 6)); do
    p=$((10000 + RANDOM % 22000))
    dup=0
    for q in "${ports[@]}"; do [[ $q == "$p" ]] && dup=1; done
    ((dup)) && continue
    listening "$p" && continue
    ports+=("$p")
  done
}

# start_cluster ATTEMPT: starts the members on fresh ports and waits until
# all are healthy. Returns 1 if a member lost a port race (worth a retry),
# exits on any other failure.
start_cluster() {
  local attempt=$1 i name initial="" endpoints=()
  pick_ports
  for i in 0 1 2; do
    initial+="${initial:+,}m$((i + 1))=http://127.0.0.1:${ports[i + 3]}"
  done
  for i in 0 1 2; do
    name=m$((i + 1))
    rm -rf "${dir:?}/$name"
    "$etcd_bin" --name "$name" --data-dir "$dir/$name" \
      --listen-client-urls "http://127.0.0.1:${ports[i]}" \
      --advertise-client-urls "http://127.0.0.1:${ports[i]}" \
      --listen-peer-urls "http://127.0.0.1:${ports[i + 3]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ports[i + 3]}" \
      --initial-cluster "$initial" --initial-cluster-state new \
      --initial-cluster-token "keel-bench-$$-$attempt" \
      --logger zap --log-outputs stderr </dev/null 2>"$dir/$name.log" &
    pids+=($!)
    endpoints+=("http://127.0.0.1:${ports[i]}")
  done
  ETCD_ENDPOINTS=$(IFS=,; echo "${endpoints[*]}")

  local deadline=$((SECONDS + start_timeout)) up
  while :; do
    for i in 0 1 2; do
      if ! kill -0 "${pids[i]}" 2>/dev/null; then
        if grep -q 'address already in use' "$dir/m$((i + 1)).log"; then
          log "member m$((i + 1)) lost a port to another program; retrying on other ports"
          stop_members
          return 1
        fi
        log "member m$((i + 1)) exited while starting; the end of its log:"
        tail -n 20 "$dir/m$((i + 1)).log" >&2
        exit 1
      fi
    done
    up=0
    for i in 0 1 2; do healthy "${ports[i]}" && up=$((up + 1)); done
    ((up == 3)) && return 0
    if ((SECONDS >= deadline)); then
      log "the cluster was not healthy after ${start_timeout}s ($up of 3 members); the end of m1's log:"
      tail -n 20 "$dir/m1.log" >&2
      exit 1
    fi
    sleep 0.1
  done
}

attempt=1
until start_cluster "$attempt"; do
  ((attempt++ < 5)) || { log "could not get free ports in 5 attempts"; exit 1; }
done
log "3 members healthy at $ETCD_ENDPOINTS (data in $dir; $("$etcd_bin" --version | head -n 1))"

if (($# == 0)); then
  echo "$ETCD_ENDPOINTS"
  log "running until Ctrl-C"
  while :; do
    sleep 3600 &
    cmd_pid=$!
    wait "$cmd_pid" || true
  done
fi

# The command runs in the background so that a signal reaches the traps at
# once instead of after the command ends.
export ETCD_ENDPOINTS
"$@" </dev/null &
cmd_pid=$!
status=0
wait "$cmd_pid" || status=$?
cmd_pid=
if ((status != 0)); then
  log "'$1' failed (status $status) against the cluster; the end of the members' logs:"
  for i in 1 2 3; do
    echo "--- m$i" >&2
    tail -n 5 "$dir/m$i.log" >&2
  done
fi
exit "$status"
