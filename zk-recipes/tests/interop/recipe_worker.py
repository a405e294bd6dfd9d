#!/usr/bin/env python3
"""A kazoo contender for the interop tests of zk-recipes.

usage: recipe_worker.py HOSTS KIND PATH ID ROUNDS DIR [MAX_LEASES]
KIND: lock | read | write | semaphore | election

Each round: obtain the recipe, run the critical-section check shared with the Rust side
(marker files in DIR), release. Prints one line per event, flushed:
  CONTENDERS <json list>   (once per round, while holding)
  VIOLATION <what>         (the exclusion check failed)
  DONE <rounds>
Exclusion check (same protocol as the Rust tests):
  exclusive holder: create DIR/w exclusively, then no DIR/r.* may exist
  reader:           create DIR/r.<ID>, then DIR/w must not exist
  semaphore:        create DIR/s.<ID>, then at most MAX_LEASES DIR/s.* may exist
"""
import json
import os
import sys
import time

from kazoo.client import KazooClient

hosts, kind, path, ident, rounds, cs_dir = sys.argv[1:7]
rounds = int(rounds)
max_leases = int(sys.argv[7]) if len(sys.argv) > 7 else 1


def out(*parts):
    print(*parts, flush=True)


def critical(mode):
    if mode == "exclusive":
        marker = os.path.join(cs_dir, "w")
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
        except FileExistsError:
            out("VIOLATION two exclusive holders", ident)
            return
        if any(n.startswith("r.") for n in os.listdir(cs_dir)):
            out("VIOLATION reader inside while writer holds", ident)
        time.sleep(0.003)
        os.remove(marker)
    elif mode == "reader":
        marker = os.path.join(cs_dir, "r." + ident)
        open(marker, "w").close()
        if os.path.exists(os.path.join(cs_dir, "w")):
            out("VIOLATION writer inside while reader holds", ident)
        time.sleep(0.003)
        os.remove(marker)
    else:  # semaphore
        marker = os.path.join(cs_dir, "s." + ident)
        open(marker, "w").close()
        holders = [n for n in os.listdir(cs_dir) if n.startswith("s.")]
        if len(holders) > max_leases:
            out("VIOLATION", len(holders), "semaphore holders", ident)
        time.sleep(0.003)
        os.remove(marker)


zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=20)
# The test asserts that each side saw the other in a listing: after ROUNDS, keep going (at most
# 5 x ROUNDS in all) until a listing held a contender that is not a kazoo one, so that a slow
# start of the other side on a loaded machine does not make the test fail.
saw_other = False


def listed(names):
    global saw_other
    saw_other = saw_other or any(not n.startswith("py-") for n in names)
    out("CONTENDERS", json.dumps(names))


try:
    done = 0
    while done < rounds or (not saw_other and done < 5 * rounds):
        if kind in ("lock", "write", "read"):
            recipe = {"lock": zk.Lock, "write": zk.WriteLock, "read": zk.ReadLock}[kind](path, ident)
            with recipe:
                listed(recipe.contenders())
                critical("reader" if kind == "read" else "exclusive")
        elif kind == "semaphore":
            sem = zk.Semaphore(path, ident, max_leases=max_leases)
            with sem:
                listed(sem.lease_holders())
                critical("semaphore")
        elif kind == "election":
            election = zk.Election(path, ident)

            def lead():
                listed(election.contenders())
                critical("exclusive")

            election.run(lead)
        else:
            raise SystemExit("unknown kind " + kind)
        done += 1
    out("DONE", done)
finally:
    zk.stop()
    zk.close()
