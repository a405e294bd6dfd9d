"""kazoo against a server: prints one line per observation, for a differential comparison.

Usage: kazoo_smoke.py HOST:PORT ROOT
"""
import sys
import threading
import time

from kazoo.client import KazooClient

hosts, root = sys.argv[1], sys.argv[2]
out = []


def say(*parts):
    out.append(" ".join(str(p) for p in parts))


def wait_for(pred, what):
    deadline = time.time() + 30
    while not pred():
        if time.time() > deadline:
            raise SystemExit("timed out waiting for " + what)
        time.sleep(0.02)


zk = KazooClient(hosts=hosts + root)
zk.start(timeout=15)
other = KazooClient(hosts=hosts + root)
other.start(timeout=15)
say("version", zk.server_version())

events = []
lock = threading.Lock()
zk.ensure_path("/smoke")


@zk.DataWatch("/smoke/d")
def data_watch(data, stat, event=None):
    with lock:
        events.append((data, stat.version if stat else None, event.type if event else None))


zk.create("/smoke/d", b"v1")
# the set waits until the watch saw v1 (and re-armed): a set right after the create can fold
# into the read that NodeCreated triggers, and then there is no third call (seen in CI)
wait_for(lambda: len(events) >= 2, "two data watch calls")
other.set("/smoke/d", b"v2")
wait_for(lambda: len(events) >= 3, "three data watch calls")
with lock:
    say("datawatch", events)

children = []


@zk.ChildrenWatch("/smoke")
def child_watch(names):
    with lock:
        children.append(sorted(names))


other.create("/smoke/c1")
wait_for(lambda: len(children) >= 2, "two children watch calls")
with lock:
    say("childrenwatch", children[:2])

lk = zk.Lock("/smoke/lock", "me")
with lk:
    say("lock contenders", lk.contenders())
say("seq", zk.create("/smoke/seq-", ephemeral=True, sequence=True))
tx = zk.transaction()
tx.create("/smoke/tx1")
tx.check("/smoke/d", 1)
tx.set_data("/smoke/d", b"v3")
res = tx.commit()
say("tx", res[0], res[1], res[2].version, res[2].dataLength)
tx = other.transaction()
tx.create("/smoke/tx2")
tx.check("/smoke/d", 0)
say("tx failing", [type(r).__name__ for r in tx.commit()])

zk.create("/smoke/eph", b"", ephemeral=True)
gone = threading.Event()


def eph_watch(event):
    say("eph event", event.type, event.path)
    gone.set()


say("eph seen by other", other.exists("/smoke/eph", watch=eph_watch) is not None)
zk.stop()
zk.close()
if not gone.wait(30):
    raise SystemExit("no event for the ephemeral after its session closed")
say("eph after close", other.exists("/smoke/eph"))
say("children", sorted(other.get_children("/smoke")))
other.stop()
other.close()
print("\n".join(out))
