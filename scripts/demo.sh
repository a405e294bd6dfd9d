#!/usr/bin/env bash
# Runs `zk demo`: workers contending for a lock, an election with a leader hand-over, and a
# double barrier, as a timeline. With no --hosts and no server at 127.0.0.1:2181 it starts a
# local ZooKeeper (installed from Debian's packages if missing) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run -q -p zk-cli -- demo "$@"
