#!/usr/bin/env bash
# Runs the demo against a local ZooKeeper that it starts (and stops) itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run -q -p zk-examples --example demo -- "$@"
