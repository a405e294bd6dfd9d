#!/usr/bin/env python3
"""(Not named queue.py: that would shadow the standard library module kazoo imports.)
kazoo 2.11 Queue / LockingQueue peers for the interop tests of zk-recipes.

usage:
  kazoo_queue.py HOSTS put KIND PATH N PREFIX
      KIND: plain | locking. Puts PREFIX-0 .. PREFIX-(N-1), priority (i % 3) * 100 (for
      locking, the second half with one put_all per priority), prints "PUT N".
  kazoo_queue.py HOSTS get PATH N
      kazoo Queue consumer: get() until N values came (polling while empty, 60 s at most),
      prints "GOT <value>" for each, in order.
  kazoo_queue.py HOSTS lget PATH N
      kazoo LockingQueue consumer: get(timeout) + consume() until N values came, prints
      "GOT <value>" for each, in order.
  kazoo_queue.py HOSTS lconsume PATH CHECK
      kazoo LockingQueue consumer racing others: for each entry taken, creates the ephemeral
      CHECK/<value> (NodeExists: prints "VIOLATION <value>"), holds it briefly, deletes it,
      consumes: "CONSUMED <value>" or "LOST <value>". Exits once the queue is empty.
"""
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError


def out(*parts):
    print(*parts, flush=True)


hosts, mode = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)

if mode == "put":
    kind, path, n, prefix = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
    values = [("%s-%d" % (prefix, i)).encode() for i in range(n)]
    if kind == "plain":
        q = zk.Queue(path)
        for i, v in enumerate(values):
            q.put(v, priority=(i % 3) * 100)
    else:
        q = zk.LockingQueue(path)
        half = n // 2
        for i, v in enumerate(values[:half]):
            q.put(v, priority=(i % 3) * 100)
        for prio in range(3):
            batch = [v for i, v in enumerate(values) if i >= half and i % 3 == prio]
            if batch:
                q.put_all(batch, priority=prio * 100)
    out("PUT", n)
elif mode == "get":
    path, n = sys.argv[3], int(sys.argv[4])
    q = zk.Queue(path)
    end = time.time() + 60
    got = 0
    while got < n and time.time() < end:
        v = q.get()
        if v is None:
            time.sleep(0.05)
            continue
        out("GOT", v.decode())
        got += 1
elif mode == "lget":
    path, n = sys.argv[3], int(sys.argv[4])
    q = zk.LockingQueue(path)
    end = time.time() + 60
    got = 0
    while got < n and time.time() < end:
        v = q.get(timeout=1)
        if v is None:
            continue
        assert q.consume()
        out("GOT", v.decode())
        got += 1
elif mode == "lconsume":
    path, check = sys.argv[3], sys.argv[4]
    q = zk.LockingQueue(path)
    zk.ensure_path(check)
    while True:
        v = q.get(timeout=0.5)
        if v is None:
            if len(q) == 0:
                break
            continue
        name = v.decode()
        try:
            zk.create(check + "/" + name, b"kazoo", ephemeral=True)
            held = True
        except NodeExistsError:
            out("VIOLATION", name)
            held = False
        time.sleep(0.01)
        if held:
            zk.delete(check + "/" + name)
        if q.consume():
            out("CONSUMED", name)
        else:
            q.processing_element = None  # kazoo would hand it out again
            out("LOST", name)
zk.stop()
zk.close()
