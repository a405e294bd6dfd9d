#!/usr/bin/env python3
"""kazoo 2.11 Counter / Party / ShallowParty peers for the interop tests of zk-recipes.

usage:
  counter_party.py HOSTS counter PATH N DELTA LAYOUT
      LAYOUT: int | float | curator. Adds DELTA N times with kazoo's Counter (default 0 or 0.0,
      support_curator for curator), then prints "VALUE <repr(counter.value)>" and
      "RAW <hex of the node's data>".
  counter_party.py HOSTS party KIND PATH ID
      KIND: party | shallow. Joins, prints "JOINED", then serves stdin commands, one a line:
        list  -> "MEMBERS <json list(party)>" and "LEN <len(party)>"
        leave -> leaves, prints "LEFT <result>" and exits.
  counter_party.py repr V1 V2 ...
      prints repr(float(v)) for each, one a line (checks the Rust encoder against Python).
"""
import json
import sys


def out(*parts):
    print(*parts, flush=True)


if sys.argv[1] == "repr":
    for v in sys.argv[2:]:
        out(repr(float(v)))
    sys.exit(0)

from kazoo.client import KazooClient  # noqa: E402

hosts, mode = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)

if mode == "counter":
    path, n, delta, layout = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
    if layout == "float":
        counter = zk.Counter(path, default=0.0)
        delta = float(delta)
    else:
        counter = zk.Counter(path, default=0, support_curator=(layout == "curator"))
        delta = int(delta)
    for _ in range(n):
        counter += delta
    out("VALUE", repr(counter.value))
    data, _ = zk.get(path)
    out("RAW", data.hex())
elif mode == "party":
    kind, path, ident = sys.argv[3], sys.argv[4], sys.argv[5]
    party = zk.Party(path, ident) if kind == "party" else zk.ShallowParty(path, ident)
    party.join()
    out("JOINED")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "list":
            out("MEMBERS", json.dumps(sorted(party)))
            out("LEN", len(party))
        elif cmd == "leave":
            out("LEFT", party.leave())
            break
zk.stop()
zk.close()
