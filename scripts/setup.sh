#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: Apache ZooKeeper 3.8
# (Debian's `zookeeper` package: jars only, no service is started) and a Java runtime.
# Idempotent: does nothing when both are present.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} (Debian packages)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "setup: ZooKeeper jars and java present" >&2
