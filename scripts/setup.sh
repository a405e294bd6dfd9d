#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: Apache ZooKeeper 3.8
# (Debian's `zookeeper` package: jars only, no service is started), a Java runtime and compiler,
# and Apache Curator 5.4 (`libcurator-recipes-java`, which pulls curator-framework/client,
# guava and slf4j) for the Curator interop tests of zk-recipes.
# Idempotent: does nothing when everything is present.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
# the Curator interop tests compile a small Java worker
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
[ -f /usr/share/java/curator-recipes.jar ] || need+=(libcurator-recipes-java)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} (Debian packages)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# kazoo (Python) for the interoperability tests of zk-recipes
if ! python3 -c 'import kazoo' >/dev/null 2>&1; then
  echo "setup: installing kazoo (PyPI)" >&2
  python3 -m pip install -q 'kazoo==2.11.0' || $SUDO python3 -m pip install -q 'kazoo==2.11.0'
fi
echo "setup: ZooKeeper and Curator jars, java, javac and kazoo present" >&2
