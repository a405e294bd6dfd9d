#!/usr/bin/env bash
# Runs zk-rs (zk-bench) and kazoo (bench/kazoo_bench.py) against ONE local ZooKeeper,
# alternating (ours, kazoo, ours, kazoo, ...) scenario by scenario, then prints the tables
# (medians, spreads, ratios) that docs/benchmarks.md quotes.
#
#   bench/compare.sh                 # defaults: a few minutes on 2 cores (after the build)
#   REPS=9 OPS=100000 bench/compare.sh
#
# Knobs (environment): REPS (runs per client and scenario, 5), OPS (20000), CONCURRENCY (64),
# SIZE (100), SESSIONS (1), CONTENDERS (100), ROUNDS (5), WATCHES (100000), CANDIDATES (10),
# FAILOVERS (20), WAITERS (1000), EXTRA (1: also run the zk-rs-only scenarios; 0: skip them),
# STUB (1: also run get / set against `zk-bench stub-serve`, a stub server that answers at
# once, to see each client's own limit; 0: skip), STUB_REPS (3), STUB_OPS (200000 for zk-rs;
# kazoo gets a tenth, which already takes it seconds).
# SERVER_JAVA_OPTIONS ("-XX:TieredStopAtLevel=4 -Xms512m -Xmx512m"): handed to the server JVM
# as _JAVA_OPTIONS, which the JVM applies after its command line. zk-testkit starts servers
# with test-tuned flags (C1 JIT only, 256 MiB heap, serial GC: fast start-up); this puts the
# optimising JIT back, as in production. SERVER_JAVA_OPTIONS= keeps the test kit's flags.
#
# Every result line is kept in target/zk-bench/compare-<time>.jsonl; the tables are printed
# at the end and can be rebuilt with `python3 bench/table.py FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-5}
OPS=${OPS:-20000}
CONCURRENCY=${CONCURRENCY:-64}
SIZE=${SIZE:-100}
SESSIONS=${SESSIONS:-1}
CONTENDERS=${CONTENDERS:-100}
ROUNDS=${ROUNDS:-5}
WATCHES=${WATCHES:-100000}
CANDIDATES=${CANDIDATES:-10}
FAILOVERS=${FAILOVERS:-20}
WAITERS=${WAITERS:-1000}
EXTRA=${EXTRA:-1}
SERVER_JAVA_OPTIONS=${SERVER_JAVA_OPTIONS--XX:TieredStopAtLevel=4 -Xms512m -Xmx512m}
STUB=${STUB:-1}
STUB_REPS=${STUB_REPS:-3}
STUB_OPS=${STUB_OPS:-200000}

scripts/setup.sh
python3 -c 'import kazoo' || { echo "compare: kazoo is not importable" >&2; exit 1; }
echo "compare: building zk-bench (release)" >&2
cargo build --release -q -p zk-bench
BIN=target/release/zk-bench

mkdir -p target/zk-bench
OUT=target/zk-bench/compare-$(date +%Y%m%d-%H%M%S).jsonl
WORK=$(mktemp -d)
SERVE_PID=""
STUB_PID=""
cleanup() {
  for pid in $SERVE_PID $STUB_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# One server for everything: `zk-bench serve` starts it through zk-testkit and keeps it up
# until we send SIGTERM (it then stops the JVM and removes its directory).
if [ -n "$SERVER_JAVA_OPTIONS" ]; then
  _JAVA_OPTIONS="$SERVER_JAVA_OPTIONS" "$BIN" serve >"$WORK/serve.json" 2>"$WORK/serve.err" &
else
  "$BIN" serve >"$WORK/serve.json" 2>"$WORK/serve.err" &
fi
SERVE_PID=$!
for _ in $(seq 1 600); do
  [ -s "$WORK/serve.json" ] && break
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    cat "$WORK/serve.err" >&2
    exit 1
  fi
  sleep 0.1
done
HOSTS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serve"])' "$WORK/serve.json")
SPID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_pid"])' "$WORK/serve.json")
echo "compare: ZooKeeper at $HOSTS (pid $SPID); results in $OUT" >&2

{
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "# $(uname -sr); $(java -version 2>&1 | head -1); kazoo $(python3 -c 'import kazoo.version as v; print(v.__version__)' 2>/dev/null || echo '?'); $(rustc --version)"
  echo "# server JVM extra options: ${SERVER_JAVA_OPTIONS:-(none, the zk-testkit flags)}"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT" >&2

ours() { "$BIN" --hosts "$HOSTS" --server-pid "$SPID" "$@" | tee -a "$OUT"; }
kazoo() { python3 bench/kazoo_bench.py --hosts "$HOSTS" --server-pid "$SPID" "$@" | tee -a "$OUT"; }

ops_args=(--ops "$OPS" --concurrency "$CONCURRENCY" --size "$SIZE" --sessions "$SESSIONS")
lock_args=(--contenders "$CONTENDERS" --rounds "$ROUNDS")

# Warm-up (discarded): the server's JIT, page cache, both clients' first runs.
echo "compare: warm-up" >&2
for s in get set create-delete; do
  ours --label warmup "$s" --ops 5000 --concurrency "$CONCURRENCY" >/dev/null
  kazoo --label warmup "$s" --ops 5000 --concurrency "$CONCURRENCY" >/dev/null
done
ours --label warmup lock-handoff --contenders 10 --rounds 5 >/dev/null
kazoo --label warmup lock-handoff --contenders 10 --rounds 5 >/dev/null

for rep in $(seq 1 "$REPS"); do
  echo "compare: round $rep of $REPS" >&2
  for s in get set create-delete; do
    ours --label "rep$rep" "$s" "${ops_args[@]}" >/dev/null
    kazoo --label "rep$rep" "$s" "${ops_args[@]}" >/dev/null
  done
  ours --label "rep$rep" lock-handoff "${lock_args[@]}" >/dev/null
  kazoo --label "rep$rep" lock-handoff "${lock_args[@]}" >/dev/null
done

if [ "$EXTRA" = 1 ]; then
  echo "compare: zk-rs-only scenarios" >&2
  for rep in $(seq 1 "$REPS"); do
    ours --label "rep$rep" exists "${ops_args[@]}" >/dev/null
  done
  for rep in 1 2 3; do
    ours --label "rep$rep" watch-reregister --watches "$WATCHES" >/dev/null
    ours --label "rep$rep" election-failover --candidates "$CANDIDATES" --rounds "$FAILOVERS" >/dev/null
  done
  ours --label rep1 lock-waiters --contenders "$WAITERS" >/dev/null
fi
if [ "$STUB" = 1 ]; then
  echo "compare: client-bound runs against the stub server" >&2
  "$BIN" stub-serve --size "$SIZE" >"$WORK/stub.json" &
  STUB_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$WORK/stub.json" ] && break
    sleep 0.1
  done
  STUB_HOSTS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serve"])' "$WORK/stub.json")
  stub_args=(--concurrency "$CONCURRENCY" --size "$SIZE" --sessions "$SESSIONS")
  for rep in $(seq 1 "$STUB_REPS"); do
    for s in get set; do
      "$BIN" --hosts "$STUB_HOSTS" --label "stub-rep$rep" "$s" --ops "$STUB_OPS" \
        --warmup "$((STUB_OPS / 10))" "${stub_args[@]}" | tee -a "$OUT" >/dev/null
      python3 bench/kazoo_bench.py --hosts "$STUB_HOSTS" --label "stub-rep$rep" "$s" \
        --ops "$((STUB_OPS / 10))" "${stub_args[@]}" | tee -a "$OUT" >/dev/null
    done
  done
fi
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT" >&2

echo
python3 bench/table.py "$OUT"
echo
echo "(all result lines: $OUT)"
