#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: Apache ZooKeeper 3.8
# (Debian's `zookeeper` package: jars only, no service is started), a Java runtime and compiler,
# Apache Curator 5.4 (`libcurator-recipes-java`, which pulls curator-framework/client, guava and
# slf4j; `libcurator-discovery-java`, curator-x-discovery and Jackson) for the Curator interop
# tests of zk-recipes, and MIT Kerberos (a KDC for the GSSAPI
# tests, the headers the `gssapi` feature builds against). One apt-get run for all of them.
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
# curator-x-discovery for the service discovery interop test (Jackson comes with it)
[ -f /usr/share/java/curator-x-discovery.jar ] || need+=(libcurator-discovery-java)

# SASL GSSAPI (zk-core's `gssapi` feature, on in the workspace's tests): MIT Kerberos' headers
# and pkg-config file to build against, libclang for the bindings' bindgen; a KDC
# (krb5kdc, kdb5_util), kadmin.local and kinit for zk-testkit's throwaway realm.
[ -f /usr/include/gssapi/gssapi.h ] || need+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need+=(libclang-dev)
[ -x /usr/sbin/krb5kdc ] || need+=(krb5-kdc)
[ -x /usr/sbin/kadmin.local ] || need+=(krb5-admin-server)
command -v kinit >/dev/null 2>&1 || need+=(krb5-user)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} (Debian packages)" >&2
  $SUDO apt-get update -qq
  # krb5-kdc and krb5-admin-server come with services, and krb5-admin-server's install fails
  # if its service cannot start (it has no realm here: the tests run their own KDC in a temp
  # dir). Debian's policy-rc.d hook tells the packages not to start services; a machine that
  # has one (container images do) keeps it, otherwise one is in place for this install only.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    trap '$SUDO rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# scripts/setup.sh: no service starts during this install\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
  fi
  # the KDC packages ask for a default realm: none (the test kit writes its own krb5.conf)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  if [ -n "$policy" ]; then
    $SUDO rm -f "$policy"
    trap - EXIT
  fi
fi
# kazoo (Python) for the interoperability tests of zk-recipes
if ! python3 -c 'import kazoo' >/dev/null 2>&1; then
  echo "setup: installing kazoo (PyPI)" >&2
  python3 -m pip install -q 'kazoo==2.11.0' || $SUDO python3 -m pip install -q 'kazoo==2.11.0'
fi
echo "setup: ZooKeeper and Curator jars, java, javac, Kerberos (KDC, headers) and kazoo present" >&2
