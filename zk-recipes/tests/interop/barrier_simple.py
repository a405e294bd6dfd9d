"""kazoo side of the Barrier interoperability tests (run by zk-recipes/tests/barrier.rs).

usage: barrier_simple.py HOSTS PATH create|remove|wait [TIMEOUT_SECONDS]

create: puts the barrier up and prints "created".
remove: takes it down and prints "removed True" (or False if it was not there).
wait:   prints "waiting", blocks in Barrier.wait and prints "cleared True" (or False).
"""
import sys

from kazoo.client import KazooClient
from kazoo.recipe.barrier import Barrier


def main():
    hosts, path, action = sys.argv[1], sys.argv[2], sys.argv[3]
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=30)
    try:
        barrier = Barrier(zk, path)
        if action == "create":
            barrier.create()
            print("created", flush=True)
        elif action == "remove":
            print("removed", barrier.remove(), flush=True)
        elif action == "wait":
            timeout = float(sys.argv[4]) if len(sys.argv) > 4 else None
            print("waiting", flush=True)
            print("cleared", barrier.wait(timeout), flush=True)
        else:
            sys.exit("unknown action " + action)
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    main()
