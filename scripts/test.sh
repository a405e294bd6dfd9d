#!/usr/bin/env bash
# Runs the whole test suite against real ZooKeeper servers it starts itself (after installing
# ZooKeeper if this machine lacks it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace --no-fail-fast "$@"
