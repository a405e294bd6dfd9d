#!/usr/bin/env bash
# ZooKeeper 3.8 (Debian's jars, one standalone JVM) next to zk-server (this workspace's
# in-process server, run as its binary) on the same machine, measured by the same client
# (zk-bench, zk-rs) with the same scenarios, alternating servers round by round:
#
#   bench/servers.sh             # tables on stdout, result lines in target/zk-bench/
#   bench/servers.sh --publish   # and the tables into docs/benchmarks.md (servers.sh markers)
#
# Order: round r runs every cell (scenario x concurrency) against both servers, ZooKeeper
# first in odd rounds and zk-server first in even ones. One warm-up run per server and
# scenario first (label "warmup", left out of the tables). Each run reports the client's and
# the server's CPU per request (zk-bench --server-pid reads the server process's CPU time).
#
# Knobs (environment): REPS (rounds, 4), OPS (requests per run, 20000), CONCURRENCY ("1 64
# 256"), SCENARIOS ("get set create-delete"), SIZE (100), WARMUP_OPS (5000),
# SERVER_JAVA_OPTIONS ("-XX:TieredStopAtLevel=4 -Xms512m -Xmx512m": the optimising JIT and a
# fixed heap for ZooKeeper's JVM, as in compare.sh; empty keeps zk-testkit's test flags).
#
# Durability is the same on both sides: ZooKeeper (zk-testkit's configuration) appends every
# change to its transaction log without fsync (forceSync=no), and zk-server runs with
# --data-dir and --no-fsync, which appends every change to its log, unsynced, as well.
set -euo pipefail
cd "$(dirname "$0")/.."

PUBLISH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --publish) PUBLISH=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "servers: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
REPS=${REPS:-4}
OPS=${OPS:-20000}
CONCURRENCY=${CONCURRENCY:-1 64 256}
SCENARIOS=${SCENARIOS:-get set create-delete}
SIZE=${SIZE:-100}
WARMUP_OPS=${WARMUP_OPS:-5000}
SERVER_JAVA_OPTIONS=${SERVER_JAVA_OPTIONS--XX:TieredStopAtLevel=4 -Xms512m -Xmx512m}
read -r -a LEVELS <<<"$CONCURRENCY"
read -r -a SCENARIO_LIST <<<"$SCENARIOS"

scripts/setup.sh
echo "servers: building zk-bench and zk-server (release)" >&2
cargo build --release -q -p zk-bench -p zk-server
BIN=target/release/zk-bench
SRV_BIN=target/release/zk-server

mkdir -p target/zk-bench
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=target/zk-bench/servers-$STAMP.jsonl
WORK=$(mktemp -d)
ZK_PID=""
ZS_PID=""
cleanup() {
  for pid in $ZK_PID $ZS_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # file pid what
  for _ in $(seq 1 600); do
    [ -s "$1" ] && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      cat "$WORK"/*.err >&2 || true
      echo "servers: $3 did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "servers: $3 did not start within 60 s" >&2
  exit 1
}

# ZooKeeper through zk-testkit (`zk-bench serve`, as compare.sh starts it)
if [ -n "$SERVER_JAVA_OPTIONS" ]; then
  _JAVA_OPTIONS="$SERVER_JAVA_OPTIONS" "$BIN" serve >"$WORK/zk.json" 2>"$WORK/zk.err" &
else
  "$BIN" serve >"$WORK/zk.json" 2>"$WORK/zk.err" &
fi
ZK_PID=$!
wait_for "$WORK/zk.json" "$ZK_PID" ZooKeeper
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
ZK_HOSTS=$(json_field "$WORK/zk.json" serve)
ZK_SPID=$(json_field "$WORK/zk.json" server_pid)

# zk-server's binary on a free port; its first stdout line names the address
RUST_LOG=warn "$SRV_BIN" --port 0 --data-dir "$WORK/zs-data" --no-fsync >"$WORK/zs.out" 2>"$WORK/zs.err" &
ZS_PID=$!
wait_for "$WORK/zs.out" "$ZS_PID" zk-server
ZS_HOSTS=$(sed -n '1s/^zk-server listening on //p' "$WORK/zs.out")
[ -n "$ZS_HOSTS" ] || { echo "servers: zk-server printed no address" >&2; exit 1; }
echo "servers: ZooKeeper at $ZK_HOSTS (pid $ZK_SPID), zk-server at $ZS_HOSTS (pid $ZS_PID); results in $OUT" >&2

{
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "# $(uname -sr); $(java -version 2>&1 | head -1); $(rustc --version)"
  echo "# server JVM extra options: ${SERVER_JAVA_OPTIONS:-(none, the zk-testkit flags)}"
  echo "# run: REPS=$REPS OPS=$OPS CONCURRENCY='$CONCURRENCY' SCENARIOS='$SCENARIOS' SIZE=$SIZE"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT" >&2

FAILED=0
run() { # server-name label scenario args...
  local name=$1 label=$2 hosts spid
  shift 2
  if [ "$name" = zookeeper ]; then hosts=$ZK_HOSTS; spid=$ZK_SPID; else hosts=$ZS_HOSTS; spid=$ZS_PID; fi
  if ! "$BIN" --hosts "$hosts" --server-pid "$spid" --label "$name/$label" "$@" \
      >"$WORK/line" 2>"$WORK/err"; then
    FAILED=$((FAILED + 1))
    echo "# FAILED: $name $* ($(tail -1 "$WORK/err"))" | tee -a "$OUT" >&2
    return 0
  fi
  cat "$WORK/line" >>"$OUT"
}

echo "servers: warm-up" >&2
for srv in zookeeper zk-server; do
  for s in "${SCENARIO_LIST[@]}"; do
    run "$srv" warmup "$s" --ops "$WARMUP_OPS" --concurrency 64 --size "$SIZE"
  done
done
for rep in $(seq 1 "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then ord=(zookeeper zk-server); else ord=(zk-server zookeeper); fi
  echo "servers: round $rep of $REPS, order ${ord[*]}" >&2
  for s in "${SCENARIO_LIST[@]}"; do
    for level in "${LEVELS[@]}"; do
      for srv in "${ord[@]}"; do
        run "$srv" "rep$rep" "$s" --ops "$OPS" --concurrency "$level" --size "$SIZE"
      done
    done
  done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT" >&2

TABLES=${OUT%.jsonl}.md
python3 bench/servers_table.py "$OUT" | tee "$TABLES"
if [ "$PUBLISH" = 1 ]; then
  python3 bench/servers_table.py --splice docs/benchmarks.md "$OUT"
  echo "servers: docs/benchmarks.md (between the servers.sh markers) rewritten" >&2
fi
echo "(all result lines: $OUT; tables: $TABLES)"
if [ "$FAILED" != 0 ]; then
  echo "servers: $FAILED run(s) FAILED (see the # FAILED lines in $OUT)" >&2
  exit 1
fi
