#!/usr/bin/env bash
# Runs `.ci/run` on N fresh clones of HEAD one after the other while a bounded CPU hog keeps
# every core busy beside it (one busy loop per core, each ended by `timeout` after the run),
# and prints one line per run: result, wall time, tests passed / failed. Stops at the first red
# run (its log is kept). This is how the "5 consecutive green runs under load" figures in the
# closing notes are made:
#
#   scripts/ci-under-load.sh 5            # 5 runs; logs in $TMPDIR/zk-ci-under-load.*/
#   WARM_TARGET=/path scripts/ci-under-load.sh 5
#
# With WARM_TARGET, every run builds into that one target directory (CARGO_TARGET_DIR), so the
# dependencies are compiled once and only the workspace's own crates are rebuilt per run: each
# clone is made at the same path and its files are newer than the last build, so cargo rebuilds
# every workspace crate and test from this clone's sources. What the streak is about, the tests
# under load, is unchanged; a run then takes the test phase's time rather than a cold build's.
#
# The hog processes are started here and stopped here, by their pids.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
hog_limit=${HOG_LIMIT:-3600} # seconds; a hard bound on each hog even if this script dies
repo=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/zk-ci-under-load.XXXXXX")
echo "HEAD $(git rev-parse --short HEAD); logs in $work"
if [ -n "${WARM_TARGET:-}" ]; then
    mkdir -p "$WARM_TARGET"
    export CARGO_TARGET_DIR="$WARM_TARGET"
    echo "warm target dir: $WARM_TARGET"
fi
for i in $(seq 1 "$runs"); do
    if [ -n "${WARM_TARGET:-}" ]; then
        clone="$work/clone"
        rm -rf "$clone"
    else
        clone="$work/clone-$i"
    fi
    git clone -q "$repo" "$clone"
    hogs=()
    for _ in $(seq 1 "$(nproc)"); do
        timeout "$hog_limit" sh -c 'while :; do :; done' &
        hogs+=("$!")
    done
    start=$(date +%s)
    set +e
    (cd "$clone" && .ci/run) >"$work/run-$i.log" 2>&1
    rc=$?
    set -e
    kill "${hogs[@]}" 2>/dev/null || true
    wait "${hogs[@]}" 2>/dev/null || true
    took=$(($(date +%s) - start))
    passed=$(grep -Eo '[0-9]+ passed' "$work/run-$i.log" | awk '{s+=$1} END {print s+0}')
    failed=$(grep -Eo '[0-9]+ failed' "$work/run-$i.log" | awk '{s+=$1} END {print s+0}')
    echo "run $i: rc=$rc, ${took} s, $passed passed, $failed failed, load $(cut -d' ' -f1-3 /proc/loadavg)"
    rm -rf "$clone/target"
    if [ "$rc" -ne 0 ]; then
        echo "red: see $work/run-$i.log" >&2
        exit 1
    fi
done
echo "$runs consecutive green runs under load"
