#!/usr/bin/env bash
# Runs the whole test suite against real ZooKeeper servers it starts itself (after installing
# ZooKeeper if this machine lacks it), then the zk-recipes suite a second time against zk-server
# (issue 14: "CI runs the recipe suite against both"). Both passes always run; the script fails
# if either does. Arguments go to both `cargo test` commands.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
status=0

# Pass 1: every crate against real ZooKeeper 3.8.
# zk-cli's `gssapi` feature: zk's `--sasl gssapi` and its test (zk-core's feature is on in the
# workspace already, through the test crate's dependency); its `real-zookeeper` feature:
# `zk demo --real-zookeeper` and its tests (tests/demo_real_zookeeper.rs)
echo "== pass 1: cargo test --workspace (real ZooKeeper)"
cargo test --workspace --features zk-cli/gssapi,zk-cli/real-zookeeper --no-fail-fast "$@" || status=1

# Pass 2: the zk-recipes suite against zk-server (zk-testkit's ZK_TESTKIT_BACKEND; TLS, SASL and
# ensembles stay on ZooKeeper). A separate command, so a parallel runner can take it on its own.
# Measured on the loaded 2-core test machine: 5m40s of tests once built; `-p zk-recipes` resolves
# features apart from pass 1's `--workspace` (zk-core without gssapi, clap, ...), so a fresh CI
# run also compiles that set once (3m37s here to rebuild zk-recipes' tests alone).
echo "== pass 2: ZK_TESTKIT_BACKEND=zk-server cargo test -p zk-recipes (zk-server)"
ZK_TESTKIT_BACKEND=zk-server cargo test -p zk-recipes --no-fail-fast "$@" || status=1

exit "$status"
