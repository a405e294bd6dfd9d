#!/usr/bin/env bash
# Runs the whole test suite against real ZooKeeper servers it starts itself (after installing
# ZooKeeper if this machine lacks it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# zk-cli's `gssapi` feature: zk's `--sasl gssapi` and its test (zk-core's feature is on in the
# workspace already, through the test crate's dependency); its `real-zookeeper` feature:
# `zk demo --real-zookeeper` and its tests (tests/demo_real_zookeeper.rs)
exec cargo test --workspace --features zk-cli/gssapi,zk-cli/real-zookeeper --no-fail-fast "$@"
