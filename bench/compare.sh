#!/usr/bin/env bash
# Runs four ZooKeeper clients against ONE local ZooKeeper in one run, scenario by scenario and
# concurrency by concurrency, alternating, then prints the tables (medians, spreads, ratios)
# and draws the plots that docs/benchmarks.md shows:
#   zk-rs            zk-bench (this workspace: zk-core, zk-recipes)
#   kazoo            bench/kazoo_bench.py (kazoo 2.11, Python)
#   zookeeper-client bench/vs-zookeeper-client, binary zkc-bench (the `zookeeper-client` crate)
#   java             bench/java/ZkJavaBench.java (org.apache.zookeeper.ZooKeeper, async API;
#                    lock-handoff: ZkJavaLockBench.java, Apache's WriteLock recipe)
#
#   bench/compare.sh                     # everything, defaults (see docs/benchmarks.md)
#   bench/compare.sh --publish           # and write the plots and tables into docs/
#   bench/compare.sh --smoke             # a short run: does the tooling work end to end?
#   bench/compare.sh --clients zk-rs,java
#
# Flags: --clients LIST (comma-separated, from the four above; default all), --smoke (one
# round, few ops, small lock and watch scenarios: for checking the tooling, not for figures),
# --publish (after the run: plots into docs/img/benchmarks/, the four-client tables into
# docs/benchmarks.md between its "compare.sh:begin" / "compare.sh:end" markers; not with
# --smoke), -h/--help.
#
# Order: every round runs each cell (scenario x concurrency) once per client, the clients in
# the order of one row of a Williams square (rows: 0 1 3 2 / 1 2 0 3 / 2 3 1 0 / 3 0 2 1 for
# four clients): over four rounds every client runs first once and right after each other
# client exactly once, so no client always follows the same one (a warmer server, a fuller
# page cache, a colder CPU). Before the rounds, one warm-up run per client and scenario
# (label "warmup": kept in the jsonl, left out of the tables).
#
# Knobs (environment): REPS (rounds, 5), OPS (measured requests per run, 20000), CONCURRENCY
# (requests in flight per session, a list: "1 16 64 256"), SCENARIOS ("get set create-delete"),
# SIZE (100), SESSIONS (1), CONTENDERS (100), ROUNDS (5), WARMUP_OPS (5000, the warm-up runs),
# JAVA_WARMUP (20000: requests the Java client runs in its JVM before measuring, for the JIT),
# JAVA_CLIENT_OPTIONS (extra JVM options for the Java client, none), EXTRA (1: also run the
# zk-rs-only scenarios: exists, watch-reregister, election-failover, lock-waiters; 0: skip),
# WATCHES (100000), CANDIDATES (10), FAILOVERS (20), WAITERS (1000), STUB (1: also run get / set
# against `zk-bench stub-serve`, a stub that answers at once, to see each client's own limit;
# 0: skip), STUB_REPS (3), STUB_OPS (200000; kazoo gets a tenth, which already takes it
# seconds), STUB_CONCURRENCY (64).
# SERVER_JAVA_OPTIONS ("-XX:TieredStopAtLevel=4 -Xms512m -Xmx512m"): handed to the server JVM
# as _JAVA_OPTIONS, which the JVM applies after its command line. zk-testkit starts servers
# with test-tuned flags (C1 JIT only, 256 MiB heap, serial GC: fast start-up); this puts the
# optimising JIT back, as in production. SERVER_JAVA_OPTIONS= keeps the test kit's flags.
#
# Every result line is kept in target/zk-bench/compare-<time>.jsonl (failed runs as "# FAILED"
# comment lines); the tables are printed at the end and written beside it (.md), the plots
# into target/zk-bench/compare-<time>/ (docs/img/benchmarks/ with --publish). Rebuild them
# from any set of files with `python3 bench/table.py FILE...` and
# `python3 bench/plots.py --out DIR FILE...`.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_CLIENTS="zk-rs,kazoo,zookeeper-client,java"
CLIENTS=${CLIENTS:-$ALL_CLIENTS}
SMOKE=0
PUBLISH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) CLIENTS=${2:?--clients needs a list}; shift 2 ;;
    --clients=*) CLIENTS=${1#--clients=}; shift ;;
    --smoke) SMOKE=1; shift ;;
    --publish) PUBLISH=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ] && [ "$PUBLISH" = 1 ]; then
  echo "compare: --publish takes a full run, not --smoke" >&2
  exit 2
fi
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in
    zk-rs | kazoo | zookeeper-client | java) ;;
    *) echo "compare: unknown client $c (clients: $ALL_CLIENTS)" >&2; exit 2 ;;
  esac
done
has_client() {
  local c
  for c in "${CLIENT_LIST[@]}"; do [ "$c" = "$1" ] && return 0; done
  return 1
}

if [ "$SMOKE" = 1 ]; then
  # small everything (the environment still wins)
  : "${REPS:=1}" "${OPS:=1000}" "${CONCURRENCY:=1 64}" "${CONTENDERS:=5}" "${ROUNDS:=2}"
  : "${WARMUP_OPS:=500}" "${JAVA_WARMUP:=2000}" "${WATCHES:=1000}" "${CANDIDATES:=3}"
  : "${FAILOVERS:=2}" "${WAITERS:=10}" "${STUB_REPS:=1}" "${STUB_OPS:=5000}"
fi
REPS=${REPS:-5}
OPS=${OPS:-20000}
CONCURRENCY=${CONCURRENCY:-1 16 64 256}
SCENARIOS=${SCENARIOS:-get set create-delete}
SIZE=${SIZE:-100}
SESSIONS=${SESSIONS:-1}
CONTENDERS=${CONTENDERS:-100}
ROUNDS=${ROUNDS:-5}
WARMUP_OPS=${WARMUP_OPS:-5000}
JAVA_WARMUP=${JAVA_WARMUP:-20000}
JAVA_CLIENT_OPTIONS=${JAVA_CLIENT_OPTIONS:-}
WATCHES=${WATCHES:-100000}
CANDIDATES=${CANDIDATES:-10}
FAILOVERS=${FAILOVERS:-20}
WAITERS=${WAITERS:-1000}
EXTRA=${EXTRA:-1}
SERVER_JAVA_OPTIONS=${SERVER_JAVA_OPTIONS--XX:TieredStopAtLevel=4 -Xms512m -Xmx512m}
STUB=${STUB:-1}
STUB_REPS=${STUB_REPS:-3}
STUB_OPS=${STUB_OPS:-200000}
STUB_CONCURRENCY=${STUB_CONCURRENCY:-64}
read -r -a LEVELS <<<"$CONCURRENCY"
read -r -a SCENARIO_LIST <<<"$SCENARIOS"
MAIN_LEVEL=64
case " $CONCURRENCY " in *" 64 "*) ;; *) MAIN_LEVEL=${LEVELS[0]} ;; esac

scripts/setup.sh
if has_client kazoo; then
  python3 -c 'import kazoo' || { echo "compare: kazoo is not importable" >&2; exit 1; }
fi
# Bench-only: the plots need matplotlib (not a test dependency, so not in scripts/setup.sh).
PLOTS=1
if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
  echo "compare: installing matplotlib (PyPI) for the plots" >&2
  python3 -m pip install -q 'matplotlib>=3.5' ||
    { echo "compare: no matplotlib: tables only, no plots" >&2; PLOTS=0; }
fi

echo "compare: building zk-bench (release)" >&2
cargo build --release -q -p zk-bench
BIN=target/release/zk-bench
if has_client zookeeper-client; then
  echo "compare: building zkc-bench (release; bench/vs-zookeeper-client)" >&2
  cargo build --release -q --manifest-path bench/vs-zookeeper-client/Cargo.toml --bin zkc-bench
  ZKC_BIN=bench/vs-zookeeper-client/target/release/zkc-bench
fi

# The ZooKeeper client jars, found where zk-testkit looks for the server's: $ZK_TESTKIT_JAR_DIR
# alone when set, else $ZOOKEEPER_HOME/lib, Debian's /usr/share/java, Homebrew's, /opt/zookeeper.
java_classpath() {
  local dirs=() d
  if [ -n "${ZK_TESTKIT_JAR_DIR:-}" ]; then
    dirs=("$ZK_TESTKIT_JAR_DIR")
  else
    [ -n "${ZOOKEEPER_HOME:-}" ] && dirs+=("$ZOOKEEPER_HOME/lib")
    dirs+=(/usr/share/java /opt/homebrew/opt/zookeeper/libexec/lib
      /usr/local/opt/zookeeper/libexec/lib /opt/zookeeper/lib)
  fi
  for d in "${dirs[@]}"; do
    if [ -f "$d/zookeeper.jar" ] && [ -f "$d/zookeeper-jute.jar" ]; then
      # Debian's layout: zookeeper.jar names its dependencies in its manifest; slf4j-nop keeps
      # the client quiet (slf4j-simple, if that is what there is, logs to stderr)
      local cp="$d/zookeeper.jar:$d/zookeeper-jute.jar:$d/slf4j-api.jar"
      if [ -f "$d/slf4j-nop.jar" ]; then cp="$cp:$d/slf4j-nop.jar"; fi
      # Apache's lock recipe (WriteLock) for the Java client's lock-handoff, when there
      if [ -f "$d/zookeeper-recipes-lock.jar" ]; then cp="$cp:$d/zookeeper-recipes-lock.jar"; fi
      echo "$cp"
      return 0
    fi
    if compgen -G "$d/zookeeper-3*.jar" >/dev/null; then
      # a release's lib/: every jar, the server's dependencies beside it
      local jars=("$d"/*.jar)
      (IFS=:; echo "${jars[*]}")
      return 0
    fi
  done
  echo "compare: the ZooKeeper jars are in none of: ${dirs[*]} (run scripts/setup.sh)" >&2
  return 1
}

mkdir -p target/zk-bench
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=target/zk-bench/compare-$STAMP.jsonl
PLOT_DIR=target/zk-bench/compare-$STAMP
if [ "$PUBLISH" = 1 ]; then PLOT_DIR=docs/img/benchmarks; fi
WORK=$(mktemp -d)
JAVA_LOCK=0
if has_client java; then
  JAVA_CP=$(java_classpath)
  echo "compare: compiling ZkJavaBench (javac)" >&2
  javac -nowarn -cp "$JAVA_CP" -d "$WORK/java" bench/java/ZkJavaBench.java
  case ":$JAVA_CP" in
    *"/zookeeper-recipes-lock"*)
      javac -nowarn -cp "$WORK/java:$JAVA_CP" -d "$WORK/java" bench/java/ZkJavaLockBench.java
      JAVA_LOCK=1 ;;
    *) echo "compare: no zookeeper-recipes-lock jar: no lock-handoff for the Java client" >&2 ;;
  esac
  JAVA_CP="$WORK/java:$JAVA_CP"
fi

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
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
HOSTS=$(json_field "$WORK/serve.json" serve)
SPID=$(json_field "$WORK/serve.json" server_pid)
echo "compare: ZooKeeper at $HOSTS (pid $SPID); results in $OUT" >&2

zkc_version=$(awk '/^name = "zookeeper-client"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' \
  bench/vs-zookeeper-client/Cargo.lock 2>/dev/null || true)
java_version="-"
if has_client java; then
  java_version=$(java -cp "$JAVA_CP" org.apache.zookeeper.Version 2>/dev/null | head -1 | cut -d- -f1 || true)
fi
{
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "# $(uname -sr); $(java -version 2>&1 | head -1); kazoo $(python3 -c 'import kazoo.version as v; print(v.__version__)' 2>/dev/null || echo '?'); $(rustc --version)"
  echo "# clients: ${CLIENT_LIST[*]}; zookeeper-client crate ${zkc_version:-?}; Java client ${java_version:-?}"
  echo "# server JVM extra options: ${SERVER_JAVA_OPTIONS:-(none, the zk-testkit flags)}"
  echo "# run: REPS=$REPS OPS=$OPS CONCURRENCY='$CONCURRENCY' SCENARIOS='$SCENARIOS' SIZE=$SIZE SESSIONS=$SESSIONS CONTENDERS=$CONTENDERS ROUNDS=$ROUNDS JAVA_WARMUP=$JAVA_WARMUP smoke=$SMOKE"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT" >&2

# One run of one client against HOSTS: its JSON line into the jsonl. A failed run is noted
# ("# FAILED ...") and the run goes on; the script exits 1 at the end.
FAILED=0
run() {
  local client=$1 hosts=$2
  shift 2
  local cmd=()
  case "$client" in
    zk-rs) cmd=("$BIN") ;;
    kazoo) cmd=(python3 bench/kazoo_bench.py) ;;
    zookeeper-client) cmd=("$ZKC_BIN") ;;
    java)
      local opts=()
      read -r -a opts <<<"$JAVA_CLIENT_OPTIONS"
      local main=ZkJavaBench
      case " $* " in *" lock-handoff "*) main=ZkJavaLockBench ;; esac
      cmd=(java "${opts[@]}" -cp "$JAVA_CP" "$main") ;;
  esac
  cmd+=(--hosts "$hosts")
  if [ "$hosts" = "$HOSTS" ]; then cmd+=(--server-pid "$SPID"); fi
  # the Java client's in-JVM warm-up for the JIT (its own option wins: the last one given)
  if [ "$client" = java ]; then cmd+=("$@" --warmup "$JAVA_WARMUP"); else cmd+=("$@"); fi
  if ! "${cmd[@]}" >"$WORK/line" 2>"$WORK/err"; then
    FAILED=$((FAILED + 1))
    echo "# FAILED: $client $* ($(tail -1 "$WORK/err"))" | tee -a "$OUT" >&2
    return 0
  fi
  cat "$WORK/line" >>"$OUT"
}
supports() { # client scenario
  case "$2" in
    lock-handoff) [ "$1" != java ] || [ "$JAVA_LOCK" = 1 ] ;;
    *) return 0 ;;
  esac
}

# Row `r` of a Williams square over the selected clients (a balanced order: see the top).
order() {
  local n=${#CLIENT_LIST[@]} r=$1 seq=() j k
  seq+=(0)
  for ((k = 1; ${#seq[@]} < n; k++)); do
    seq+=("$k")
    [ ${#seq[@]} -lt "$n" ] && seq+=("$((n - k))")
  done
  local row=()
  for j in "${seq[@]}"; do row+=("${CLIENT_LIST[$(((j + r) % n))]}"); done
  # an odd number of clients needs the mirrored rows too for the balance
  if [ $((n % 2)) = 1 ] && [ $(((r / n) % 2)) = 1 ]; then
    local rev=()
    for ((k = ${#row[@]} - 1; k >= 0; k--)); do rev+=("${row[$k]}"); done
    row=("${rev[@]}")
  fi
  echo "${row[*]}"
}

ops_args() { echo --concurrency "$1" --ops "$OPS" --size "$SIZE" --sessions "$SESSIONS"; }
lock_args=(--contenders "$CONTENDERS" --rounds "$ROUNDS")

echo "compare: warm-up (one run per client and scenario, label warmup)" >&2
read -r -a first <<<"$(order 0)"
for c in "${first[@]}"; do
  for s in "${SCENARIO_LIST[@]}"; do
    run "$c" "$HOSTS" --label warmup "$s" --ops "$WARMUP_OPS" --concurrency "$MAIN_LEVEL"
  done
  if supports "$c" lock-handoff; then
    run "$c" "$HOSTS" --label warmup lock-handoff --contenders 10 --rounds 5
  fi
done

for rep in $(seq 1 "$REPS"); do
  read -r -a ord <<<"$(order $((rep - 1)))"
  echo "compare: round $rep of $REPS, order ${ord[*]}" >&2
  echo "# round $rep order: ${ord[*]}" >>"$OUT"
  for s in "${SCENARIO_LIST[@]}"; do
    for level in "${LEVELS[@]}"; do
      read -r -a a <<<"$(ops_args "$level")"
      for c in "${ord[@]}"; do run "$c" "$HOSTS" --label "rep$rep" "$s" "${a[@]}"; done
    done
  done
  for c in "${ord[@]}"; do
    if supports "$c" lock-handoff; then run "$c" "$HOSTS" --label "rep$rep" lock-handoff "${lock_args[@]}"; fi
  done
done

if [ "$EXTRA" = 1 ] && has_client zk-rs; then
  echo "compare: zk-rs-only scenarios" >&2
  read -r -a a <<<"$(ops_args "$MAIN_LEVEL")"
  for rep in $(seq 1 "$REPS"); do
    run zk-rs "$HOSTS" --label "rep$rep" exists "${a[@]}"
  done
  for rep in $(seq 1 "$(( REPS < 3 ? REPS : 3 ))"); do
    run zk-rs "$HOSTS" --label "rep$rep" watch-reregister --watches "$WATCHES"
    run zk-rs "$HOSTS" --label "rep$rep" election-failover --candidates "$CANDIDATES" --rounds "$FAILOVERS"
  done
  run zk-rs "$HOSTS" --label rep1 lock-waiters --contenders "$WAITERS"
fi
if [ "$STUB" = 1 ]; then
  echo "compare: client-bound runs against the stub server" >&2
  "$BIN" stub-serve --size "$SIZE" >"$WORK/stub.json" &
  STUB_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$WORK/stub.json" ] && break
    sleep 0.1
  done
  STUB_HOSTS=$(json_field "$WORK/stub.json" serve)
  for rep in $(seq 1 "$STUB_REPS"); do
    read -r -a ord <<<"$(order $((rep - 1)))"
    for s in get set; do
      for c in "${ord[@]}"; do
        n=$STUB_OPS
        extra=(--warmup "$((STUB_OPS / 10))")
        if [ "$c" = kazoo ]; then n=$((STUB_OPS / 10)); extra=(); fi
        run "$c" "$STUB_HOSTS" --label "stub-rep$rep" "$s" --ops "$n" "${extra[@]}" \
          --concurrency "$STUB_CONCURRENCY" --size "$SIZE" --sessions "$SESSIONS"
      done
    done
  done
fi
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT" >&2

TABLES=${OUT%.jsonl}.md
python3 bench/table.py "$OUT" | tee "$TABLES"
if [ "$PLOTS" = 1 ]; then
  python3 bench/plots.py --out "$PLOT_DIR" "$OUT"
fi
if [ "$PUBLISH" = 1 ]; then
  python3 bench/table.py --splice docs/benchmarks.md --plots "$PLOT_DIR" "$OUT"
  echo "compare: docs/benchmarks.md (between the compare.sh markers) and $PLOT_DIR/ rewritten" >&2
fi
echo
if [ "$PLOTS" = 1 ]; then
  echo "(all result lines: $OUT; tables: $TABLES; plots: $PLOT_DIR/)"
else
  echo "(all result lines: $OUT; tables: $TABLES)"
fi
if [ "$FAILED" != 0 ]; then
  echo "compare: $FAILED run(s) FAILED (see the # FAILED lines in $OUT)" >&2
  exit 1
fi
