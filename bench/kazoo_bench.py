#!/usr/bin/env python3
"""The kazoo side of the benchmarks: the same scenarios as `zk-bench`, the same parameters, the
same JSON fields (one object per line).

    python3 bench/kazoo_bench.py --hosts 127.0.0.1:2181 get --ops 20000 --concurrency 64
    python3 bench/kazoo_bench.py --hosts 127.0.0.1:2181 lock-handoff --contenders 100 --rounds 5

Scenarios: get, set, exists, create-delete (pipelined with the *_async calls, C requests in
flight on each of S sessions: the next request is issued from the completion callback of the
previous one, kazoo's fastest way to keep requests in flight), and lock-handoff (kazoo's
`Lock` recipe, one KazooClient per contender, one thread per contender).

Requires kazoo (scripts/setup.sh installs 2.11.0). --hosts is required: unlike zk-bench this
script does not start a server (bench/compare.sh starts one with `zk-bench serve`).
"""

import argparse
import json
import os
import resource
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.protocol import connection as kazoo_connection


def usage():
    """(user s, system s, context switches) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime, ru.ru_stime, ru.ru_nvcsw + ru.ru_nivcsw)


def usage_since(u0):
    u1 = usage()
    return tuple(b - a for a, b in zip(u0, u1))


def process_cpu(pid):
    """utime + stime of process `pid` in seconds, from /proc/PID/stat (None if unknown)."""
    if pid is None:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 1 :].split()
    hz = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / hz


def percentiles(samples_us):
    """p50, p90, p99, p99.9, max by nearest rank, or Nones (zk-bench's fields)."""
    if not samples_us:
        return None, None, None, None, None
    s = sorted(samples_us)
    n = len(s)

    def rank(q):
        i = min(max(int(-(-q * n // 1)), 1), n)  # ceil(q * n), clamped to 1..n
        return s[i - 1]

    return rank(0.50), rank(0.90), rank(0.99), rank(0.999), s[-1]


def base_path(what):
    return "/zk-bench/%s-kazoo-%d-%d" % (what, os.getpid(), time.time_ns() % 10**12)


def connect(hosts, n=1):
    clients = []
    for _ in range(n):
        c = KazooClient(hosts=hosts, timeout=20.0)
        c.start(timeout=30)
        clients.append(c)
    return clients


def throughput(out, ops, seconds, u):
    """The common fields; `u` is a usage difference (user s, system s, switches)."""
    user, system, switches = u
    cpu_seconds = user + system

    def per_op(x):
        return round(x / ops, 3) if ops else 0.0

    out["ops"] = ops
    out["seconds"] = round(seconds, 3)
    out["ops_per_sec"] = round(ops / seconds, 3) if seconds > 0 else 0.0
    out["cpu_seconds"] = round(cpu_seconds, 3)
    out["cpu_us_per_op"] = per_op(cpu_seconds * 1e6)
    out["cpu_user_us_per_op"] = per_op(user * 1e6)
    out["cpu_sys_us_per_op"] = per_op(system * 1e6)
    out["ctx_switches_per_op"] = per_op(switches)


def latency_fields(out, samples_us, prefix=""):
    p50, p90, p99, p999, mx = percentiles(samples_us)
    out[prefix + "p50_us"] = p50
    out[prefix + "p90_us"] = p90
    out[prefix + "p99_us"] = p99
    out[prefix + "p999_us"] = p999
    out[prefix + "max_us"] = mx


def server_fields(out, server_pid, cpu0, ops):
    cpu1 = process_cpu(server_pid)
    if cpu0 is None or cpu1 is None:
        out["server_cpu_seconds"] = None
        out["server_cpu_us_per_op"] = None
    else:
        d = cpu1 - cpu0
        out["server_cpu_seconds"] = round(d, 3)
        out["server_cpu_us_per_op"] = round(d * 1e6 / ops, 3) if ops else None


# --------------------------------------------------------------------------- get / set / ...


def drive(clients, kind, total, concurrency, paths, data, base, tag):
    """`total` requests, `concurrency` in flight per client; returns latencies in µs."""
    step = 2 if kind == "create-delete" else 1
    lock = threading.Lock()
    finished = threading.Event()
    state = {"next": 0, "active": 0, "error": None}
    latencies = []

    def claim():
        with lock:
            i = state["next"]
            if i + step > total or state["error"] is not None:
                state["active"] -= 1
                if state["active"] == 0:
                    finished.set()
                return None
            state["next"] = i + step
            return i

    def fail(exc):
        with lock:
            if state["error"] is None:
                state["error"] = exc
        finished.set()

    # Each worker keeps one request in flight on its client: the completion callback (run
    # on the client's completion thread) records the latency and issues the next request.
    def make_worker(c, si, wi):
        def done_w(res, t_start):
            if res.exception is not None:
                return fail(res.exception)
            latencies.append(int((time.perf_counter() - t_start) * 1e6))
            go()

        def go():
            i = claim()
            if i is None:
                return
            path = paths[i % len(paths)]
            t0 = time.perf_counter()
            if kind == "get":
                c.get_async(path).rawlink(lambda res: done_w(res, t0))
            elif kind == "set":
                c.set_async(path, data).rawlink(lambda res: done_w(res, t0))
            elif kind == "exists":
                c.exists_async(path).rawlink(lambda res: done_w(res, t0))
            else:
                node = "%s/%s%d-%d-%d" % (base, tag, si, wi, i)

                def created(res):
                    if res.exception is not None:
                        return fail(res.exception)
                    t1 = time.perf_counter()
                    latencies.append(int((t1 - t0) * 1e6))
                    c.delete_async(node).rawlink(lambda res2: done_w(res2, t1))

                c.create_async(node, data).rawlink(created)

        return go

    workers = []
    for si, c in enumerate(clients):
        for wi in range(concurrency):
            workers.append(make_worker(c, si, wi))
    state["active"] = len(workers)
    for w in workers:
        w()
    finished.wait()
    if state["error"] is not None:
        raise state["error"]
    return latencies


def run_ops(args):
    clients = connect(args.hosts, args.sessions)
    base = base_path(args.scenario)
    clients[0].ensure_path(base)
    data = b"x" * args.size
    paths = ["%s/n%d" % (base, i) for i in range(args.nodes)]
    if args.scenario != "create-delete":
        for p in paths:
            clients[0].create(p, data)
    if args.warmup > 0:
        drive(clients, args.scenario, args.warmup, args.concurrency, paths, data, base, "w")
    server0 = process_cpu(args.server_pid)
    u0 = usage()
    t0 = time.perf_counter()
    lat = drive(clients, args.scenario, args.ops, args.concurrency, paths, data, base, "m")
    secs = time.perf_counter() - t0
    cpu = usage_since(u0)
    threads = threading.active_count()
    out = {
        "threads": threads,
        "scenario": args.scenario,
        "params": {
            "ops": args.ops,
            "concurrency": args.concurrency,
            "size": args.size,
            "sessions": args.sessions,
            "nodes": args.nodes,
        },
    }
    throughput(out, len(lat), secs, cpu)
    latency_fields(out, lat)
    server_fields(out, args.server_pid, server0, len(lat))
    clients[0].delete(base, recursive=True)
    for c in clients:
        c.stop()
        c.close()
    return out


# --------------------------------------------------------------------------- lock-handoff

# Every notification (xid -1) each connection receives, as (type, path): the herd measure
# counts what reaches the clients, whatever watcher it was for.
_notifications = {}
_orig_read_watch_event = kazoo_connection.ConnectionHandler._read_watch_event


def _counting_read_watch_event(self, buffer, offset):
    from kazoo.protocol.serialization import Watch

    watch, _ = Watch.deserialize(buffer, offset)
    _notifications.setdefault(id(self.client), []).append((watch.type, watch.path))
    return _orig_read_watch_event(self, buffer, offset)


def run_lock_handoff(args):
    kazoo_connection.ConnectionHandler._read_watch_event = _counting_read_watch_event
    n, rounds = args.contenders, args.rounds
    clients = connect(args.hosts, n)
    base = base_path("lock-handoff")
    path = base + "/lock"
    clients[0].ensure_path(path)

    rtt = []
    for _ in range(200):
        t = time.perf_counter()
        clients[0].exists(path)
        rtt.append(int((time.perf_counter() - t) * 1e6))
    rtt_p50 = percentiles(rtt)[0]

    shared = {"last_release": None}
    latencies = []
    acquisitions = []
    owned = [set() for _ in range(n)]
    errors = []
    held = threading.Event()
    go = threading.Event()
    mutex = threading.Lock()

    def contender(i):
        try:
            lock = clients[i].Lock(path, "contender-%d" % i)
            for r in range(rounds):
                if r == 0:
                    if i == 0:
                        lock.acquire()
                        owned[i].add(path + "/" + lock.node)
                        held.set()
                        go.wait()
                        shared["last_release"] = time.perf_counter()
                        lock.release()
                        continue
                    held.wait()
                lock.acquire()
                now = time.perf_counter()
                with mutex:
                    prev = shared["last_release"]
                    if prev is not None:
                        latencies.append(int((now - prev) * 1e6))
                    acquisitions.append(now)
                owned[i].add(path + "/" + lock.node)
                shared["last_release"] = time.perf_counter()
                lock.release()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
            held.set()

    threads = [threading.Thread(target=contender, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    held.wait()
    # wait until everyone queued (N contender nodes)
    deadline = time.time() + 60
    while len(clients[0].get_children(path)) < n and time.time() < deadline and not errors:
        time.sleep(0.02)
    time.sleep(0.1)  # the last ones set their predecessor watch
    server0 = process_cpu(args.server_pid)
    u0 = usage()
    go_at = time.perf_counter()
    go.set()
    nthreads = threading.active_count()
    for t in threads:
        t.join()
    cpu = usage_since(u0)
    if errors:
        raise errors[0]
    handoffs = len(acquisitions)
    secs = (max(acquisitions) - go_at) if acquisitions else 0.0

    all_nodes = set().union(*owned)
    per_node = {}
    self_n = foreign = other = 0
    for i, c in enumerate(clients):
        for ty, node in _notifications.get(id(c), []):
            if node in owned[i]:
                self_n += 1
            elif node in all_nodes:
                foreign += 1
                per_node[node] = per_node.get(node, 0) + 1
                if ty != kazoo_connection.DELETED_EVENT:
                    other += 1
            else:
                other += 1
    releases = len(all_nodes)

    out = {
        "threads": nthreads,
        "scenario": "lock-handoff",
        "params": {"contenders": n, "rounds": rounds},
    }
    throughput(out, handoffs, secs, cpu)
    latency_fields(out, latencies)
    server_fields(out, args.server_pid, server0, handoffs)
    out["releases"] = releases
    out["notifications_per_release"] = round(foreign / max(releases, 1), 3)
    out["max_notifications_per_release"] = max(per_node.values()) if per_node else 0
    out["self_notifications_per_release"] = round(self_n / max(releases, 1), 3)
    out["other_notifications"] = other
    out["rtt_p50_us"] = rtt_p50
    if out["p50_us"] is not None and rtt_p50:
        out["handoff_p50_in_rtts"] = round(out["p50_us"] / rtt_p50, 3)
    clients[0].delete(base, recursive=True)
    for c in clients:
        c.stop()
        c.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--server-pid", type=int, default=None)
    ap.add_argument("--label", default=None)
    ap.add_argument("scenario", choices=["get", "set", "exists", "create-delete", "lock-handoff"])
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--contenders", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if args.scenario == "lock-handoff":
        out = run_lock_handoff(args)
    else:
        out = run_ops(args)
    line = {"client": "kazoo"}
    if args.label:
        line["label"] = args.label
    line.update(out)
    print(json.dumps(line, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
