#!/usr/bin/env bash
# Runs `zk demo`: workers contending for a lock, an election with a leader hand-over, and a
# double barrier, as a timeline. With no --hosts (nor ZK_HOSTS) it starts zk-server in the
# demo's process (no Java, no apt-get) and stops it at the end.
# `scripts/demo.sh --real-zookeeper` runs it on Debian's ZooKeeper 3.8 instead: installs it
# (scripts/setup.sh) and builds zk with the `real-zookeeper` feature.
set -euo pipefail
cd "$(dirname "$0")/.."
for a in "$@"; do
    if [ "$a" = --real-zookeeper ]; then
        scripts/setup.sh
        exec cargo run -q -p zk-cli --features real-zookeeper -- demo "$@"
    fi
done
exec cargo run -q -p zk-cli -- demo "$@"
