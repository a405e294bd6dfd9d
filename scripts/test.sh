#!/usr/bin/env bash
# Runs the whole test suite against real ZooKeeper servers it starts itself (after installing
# ZooKeeper if this machine lacks it), then the zk-recipes suite once more against zk-server
# (zk-testkit's ZK_TESTKIT_BACKEND=zk-server; TLS, SASL and ensembles stay on ZooKeeper).
#
# With no arguments the test binaries run several at a time (scripts/run-tests.py: TEST_JOBS,
# default 3, the longest first; each binary's output is printed whole when it ends), and the
# zk-server pass reuses the same binaries. With arguments it is plain `cargo test` with them, one
# pass after the other, e.g. `scripts/test.sh -p zk-recipes --test lock`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# zk-cli's `gssapi` feature: zk's `--sasl gssapi` and its test (zk-core's feature is on in the
# workspace already, through the test crate's dependency); its `real-zookeeper` feature:
# `zk demo --real-zookeeper` and its tests (tests/demo_real_zookeeper.rs)
features=zk-cli/gssapi,zk-cli/real-zookeeper
if [ "$#" -eq 0 ]; then
    exec python3 scripts/run-tests.py --features "$features" \
        --pass zk-server:zk-recipes:ZK_TESTKIT_BACKEND=zk-server
fi
status=0
echo "== pass 1: cargo test --workspace (real ZooKeeper)"
cargo test --workspace --features "$features" --no-fail-fast "$@" || status=1
echo "== pass 2: ZK_TESTKIT_BACKEND=zk-server cargo test -p zk-recipes (zk-server)"
ZK_TESTKIT_BACKEND=zk-server cargo test -p zk-recipes --no-fail-fast "$@" || status=1
exit "$status"
