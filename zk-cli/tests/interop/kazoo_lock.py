#!/usr/bin/env python3
"""A kazoo Lock contender for zk-cli's interop test.

usage: kazoo_lock.py HOSTS PATH ID ROUNDS DIR

Each round: take kazoo's Lock(PATH, ID), print the contenders, run the critical-section check
shared with the `zk lock` side, release. Prints one line per event, flushed:
  CONTENDERS <json list>   (once per round, while holding)
  VIOLATION <what>         (the exclusion check failed)
  DONE <rounds>
Exclusion check (the protocol of zk-recipes/tests/interop/recipe_worker.py, with mkdir as the
exclusive create so that a shell can do the same): an exclusive holder creates DIR/w
exclusively, and removes it when leaving.
"""
import json
import os
import sys
import time

from kazoo.client import KazooClient

hosts, path, ident, rounds, cs_dir = sys.argv[1:6]
rounds = int(rounds)


def out(*parts):
    print(*parts, flush=True)


def critical():
    marker = os.path.join(cs_dir, "w")
    try:
        os.mkdir(marker)
    except FileExistsError:
        out("VIOLATION two exclusive holders", ident)
        return
    time.sleep(0.02)
    os.rmdir(marker)


zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
try:
    for _ in range(rounds):
        lock = zk.Lock(path, ident)
        with lock:
            out("CONTENDERS", json.dumps(lock.contenders()))
            critical()
    out("DONE", rounds)
finally:
    zk.stop()
    zk.close()
