"""kazoo participant of the DoubleBarrier interoperability test (run by
zk-recipes/tests/barrier.rs).

usage: barrier_double.py HOSTS PATH N IDENTIFIER

Enters DoubleBarrier(PATH, N, IDENTIFIER), then prints
    entered <unix time in ms> <participant nodes under PATH> <our node name>
waits for a line "leave" on standard input, leaves, and prints "left <unix time in ms>".
"""
import sys
import time

from kazoo.client import KazooClient
from kazoo.recipe.barrier import DoubleBarrier


def now_ms():
    return int(time.time() * 1000)


def main():
    hosts, path, n, ident = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=30)
    try:
        barrier = DoubleBarrier(zk, path, n, ident)
        barrier.enter()
        entered_at = now_ms()
        if not barrier.participating:
            sys.exit("enter failed")
        members = [c for c in zk.get_children(path) if c != "ready"]
        print("entered", entered_at, len(members), barrier.node_name, flush=True)
        line = sys.stdin.readline().strip()
        if line != "leave":
            sys.exit("expected 'leave', got %r" % line)
        barrier.leave()
        print("left", now_ms(), flush=True)
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    main()
