#!/usr/bin/env bash
# A real Dask cluster on this machine, bound to 127.0.0.1 only.
#   deploy/local/cluster.sh start [N_WORKERS]   prints the scheduler address (tcp://127.0.0.1:PORT)
#   deploy/local/cluster.sh stop                stops every process it started; nothing keeps listening
#   deploy/local/cluster.sh status
# State (pids, scheduler file, logs) lives in $CLUSTER_STATE_DIR [${TMPDIR:-/tmp}/audio-pipeline-cluster].
set -euo pipefail

here="$(cd "$(dirname "$0")/../.." && pwd)"
state="${CLUSTER_STATE_DIR:-${TMPDIR:-/tmp}/audio-pipeline-cluster}"
if [ -n "${DASK:-}" ]; then dask_bin="$DASK"
elif [ -x "$here/.venv/bin/dask" ]; then dask_bin="$here/.venv/bin/dask"
else dask_bin="$(command -v dask || true)"; fi

die() { echo "cluster.sh: $*" >&2; exit 2; }

start() {
  local n="${1:-2}"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "expected a positive number of workers, got '$n'"
  [ -n "$dask_bin" ] || die "the dask command is not installed (make install, or set DASK=/path/to/dask)"
  if [ -f "$state/scheduler.pid" ] && kill -0 "$(cat "$state/scheduler.pid")" 2>/dev/null; then
    die "a cluster is already running (state in $state); run 'cluster.sh stop' first"
  fi
  rm -rf "$state"; mkdir -p "$state"
  setsid "$dask_bin" scheduler --host 127.0.0.1 --port 0 --dashboard-address 127.0.0.1:0 \
    --scheduler-file "$state/scheduler.json" >"$state/scheduler.log" 2>&1 &
  echo $! >"$state/scheduler.pid"
  for _ in $(seq 1 300); do [ -s "$state/scheduler.json" ] && break; sleep 0.1; done
  [ -s "$state/scheduler.json" ] || { stop >/dev/null 2>&1; die "scheduler did not start (log: $state/scheduler.log)"; }
  for i in $(seq 1 "$n"); do
    setsid "$dask_bin" worker --scheduler-file "$state/scheduler.json" --host 127.0.0.1 \
      --nthreads 1 --nworkers 1 --dashboard-address 127.0.0.1:0 --name "worker-$i" \
      --local-directory "$state/worker-$i" >"$state/worker-$i.log" 2>&1 &
    echo $! >"$state/worker-$i.pid"
  done
  local address
  address="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$state/scheduler.json")"
  # wait until every worker has registered
  for _ in $(seq 1 600); do
    local count
    count="$(grep -c "Register worker addr" "$state/scheduler.log" 2>/dev/null || true)"
    [ "${count:-0}" -ge "$n" ] && break
    sleep 0.1
  done
  echo "$address"
}

stop() {
  [ -d "$state" ] || return 0
  local pids=()
  for f in "$state"/worker-*.pid "$state"/scheduler.pid; do
    [ -f "$f" ] && pids+=("$(cat "$f")")
  done
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$state"
}

status() {
  if [ -f "$state/scheduler.pid" ] && kill -0 "$(cat "$state/scheduler.pid")" 2>/dev/null; then
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$state/scheduler.json"
  else
    echo "not running"; return 1
  fi
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: cluster.sh start [N_WORKERS] | stop | status" >&2; exit 2 ;;
esac
