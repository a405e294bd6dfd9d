#!/usr/bin/env python3
"""A kazoo 2.11 SetPartitioner peer for the interop tests of zk-recipes.

usage:
  partitioner.py HOSTS PATH ID TIME_BOUNDARY ITEM...
      Runs kazoo's documented loop (failed / release / acquired / allocating) with the default
      partition function. Prints "ACQUIRED <json sorted partition>" each time it enters
      ACQUIRED, "RELEASE" each time it releases. A line "stop" on stdin: finish() (release the
      locks, leave the party), print "STOPPED" and exit.
"""
import json
import sys
import threading

from kazoo.client import KazooClient


def out(*parts):
    print(*parts, flush=True)


hosts, path, ident, boundary = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
items = sys.argv[5:]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)
stop = threading.Event()


def read_stdin():
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


threading.Thread(target=read_stdin, daemon=True).start()
qp = zk.SetPartitioner(path=path, set=items, identifier=ident, time_boundary=boundary)
while not stop.is_set():
    if qp.failed:
        out("FAILED")
        break
    elif qp.release:
        out("RELEASE")
        qp.release_set()
    elif qp.acquired:
        out("ACQUIRED", json.dumps(sorted(qp)))
        while qp.acquired and not stop.is_set():
            stop.wait(0.05)
    elif qp.allocating:
        qp.wait_for_acquire(0.2)
qp.finish()
out("STOPPED")
zk.stop()
zk.close()
