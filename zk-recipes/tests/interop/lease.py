#!/usr/bin/env python3
"""kazoo 2.11 NonBlockingLease / MultiNonBlockingLease peers for the interop tests of zk-recipes.

usage:
  lease.py HOSTS obtain PATH SECONDS ID
      One NonBlockingLease attempt for SECONDS; prints "OBTAINED True|False" and
      "RAW <lease_holder data as text>" (or "RAW -" if there is none).
  lease.py HOSTS multi COUNT PATH SECONDS ID
      One MultiNonBlockingLease attempt; prints "OBTAINED True|False".
"""
import datetime
import sys

from kazoo.client import KazooClient


def out(*parts):
    print(*parts, flush=True)


hosts, mode = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)
if mode == "obtain":
    path, secs, ident = sys.argv[3], float(sys.argv[4]), sys.argv[5]
    lease = zk.NonBlockingLease(path, datetime.timedelta(seconds=secs), identifier=ident)
    out("OBTAINED", bool(lease))
    holder = path + "/lease_holder"
    out("RAW", zk.get(holder)[0].decode("utf-8") if zk.exists(holder) else "-")
elif mode == "multi":
    count, path, secs, ident = int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6]
    lease = zk.MultiNonBlockingLease(
        count, path, datetime.timedelta(seconds=secs), identifier=ident
    )
    out("OBTAINED", bool(lease))
zk.stop()
zk.close()
