#!/usr/bin/env python3
"""kazoo 2.11 TreeCache / PatientChildrenWatch peers for the interop tests of zk-recipes.

usage:
  tree_cache.py HOSTS cache PATH
      Starts kazoo's TreeCache on PATH, prints "INITIALIZED" at its INITIALIZED event, then
      serves stdin commands, one a line:
        dump -> one "NODE <path> <data hex or -> <czxid> <mzxid> <version>" line per node in
                the cache (walked from PATH with the cache's own get_children / get_data),
                then "END"
        quit -> closes the cache and exits.
  tree_cache.py HOSTS patient PATH BOUNDARY
      kazoo's PatientChildrenWatch(PATH, time_boundary=BOUNDARY): prints "STARTED", then
      "STABLE <children sorted, comma-separated>" when it reports.
"""
import sys
import threading

from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.watchers import PatientChildrenWatch


def out(*parts):
    print(*parts, flush=True)


hosts, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)

if mode == "cache":
    initialized = threading.Event()
    cache = TreeCache(zk, path)

    @cache.listen
    def on_event(event):
        if event.event_type == TreeEvent.INITIALIZED:
            initialized.set()

    cache.start()
    initialized.wait(60)
    out("INITIALIZED")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "dump":
            todo = [path]
            while todo:
                p = todo.pop()
                node = cache.get_data(p)
                if node is None:
                    continue
                s = node.stat
                out("NODE", p, node.data.hex() or "-", s.czxid, s.mzxid, s.version)
                for c in cache.get_children(p) or ():
                    todo.append(p + "/" + c)
            out("END")
        elif cmd == "quit":
            break
    cache.close()
elif mode == "patient":
    boundary = float(sys.argv[4])
    result = PatientChildrenWatch(zk, path, time_boundary=boundary).start()
    out("STARTED")
    children, _ = result.get(timeout=120)
    out("STABLE", ",".join(sorted(children)))
zk.stop()
