#!/usr/bin/env python3
"""Turns the JSON lines of zk-bench and kazoo_bench.py into Markdown tables: medians over the
runs of each (scenario, client), the spread (min-max) beside them, and our/kazoo ratios.

    python3 bench/table.py target/zk-bench/compare-*.jsonl

Lines with "label": "warmup" are ignored.
"""

import json
import statistics
import sys

HEAD_TO_HEAD = ["get", "set", "create-delete", "lock-handoff"]


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                if r.get("label") == "warmup":
                    continue
                rows.append(r)
    return rows


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, float) and digits == 0 and abs(v) >= 100:
        return "{:,.0f}".format(v)
    if digits == 0:
        return "{:,.0f}".format(v) if abs(v) >= 10 else "{:.1f}".format(v)
    return "{:.{d}f}".format(v, d=digits)


def spread(rows, key, digits=0):
    m, lo, hi = med(rows, key)
    if m is None:
        return "–"
    if len([r for r in rows if r.get(key) is not None]) == 1 or lo == hi:
        return fmt(m, digits)
    return "%s (%s–%s)" % (fmt(m, digits), fmt(lo, digits), fmt(hi, digits))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return "%.1f×" % (a / b)


def params_text(r):
    p = r.get("params", {})
    if r["scenario"] == "lock-handoff":
        return "%d contenders × %d rounds" % (p.get("contenders", 0), p.get("rounds", 0))
    if r["scenario"] in ("get", "set", "exists", "create-delete"):
        return "%d ops, %d in flight × %d session, %d B" % (
            p.get("ops", 0),
            p.get("concurrency", 0),
            p.get("sessions", 0),
            p.get("size", 0),
        )
    return ", ".join("%s %s" % (k, v) for k, v in p.items())


def head_to_head(rows, scenarios=HEAD_TO_HEAD, ops_per_client=False):
    out = []
    out.append(
        "| scenario | parameters | runs | zk-rs ops/s | kazoo ops/s | ratio | zk-rs p50 / p99 µs "
        "| kazoo p50 / p99 µs | zk-rs CPU µs/op | kazoo CPU µs/op | CPU ratio "
        "| server CPU µs/op zk-rs / kazoo |"
    )
    out.append("|" + "---|" * 12)
    for sc in scenarios:
        ours = [r for r in rows if r["scenario"] == sc and r["client"] == "zk-rs"]
        theirs = [r for r in rows if r["scenario"] == sc and r["client"] == "kazoo"]
        if not ours and not theirs:
            continue
        any_row = (ours or theirs)[0]
        params = params_text(any_row)
        if ops_per_client and ours and theirs:
            params = "zk-rs %s; kazoo %s" % (params_text(ours[0]), params_text(theirs[0]))
        o_ops, t_ops = med(ours, "ops_per_sec")[0], med(theirs, "ops_per_sec")[0]
        o_cpu, t_cpu = med(ours, "cpu_us_per_op")[0], med(theirs, "cpu_us_per_op")[0]
        out.append(
            "| %s | %s | %d / %d | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s / %s |"
            % (
                sc,
                params,
                len(ours),
                len(theirs),
                spread(ours, "ops_per_sec"),
                spread(theirs, "ops_per_sec"),
                ratio(o_ops, t_ops),
                fmt(med(ours, "p50_us")[0]),
                fmt(med(ours, "p99_us")[0]),
                fmt(med(theirs, "p50_us")[0]),
                fmt(med(theirs, "p99_us")[0]),
                spread(ours, "cpu_us_per_op", 1),
                spread(theirs, "cpu_us_per_op", 1),
                ratio(t_cpu, o_cpu),
                fmt(med(ours, "server_cpu_us_per_op")[0]),
                fmt(med(theirs, "server_cpu_us_per_op")[0]),
            )
        )
    return "\n".join(out)


def cpu_split(rows):
    out = [
        "| scenario | client | user µs/op | system µs/op | context switches/op |",
        "|---|---|---|---|---|",
    ]
    for sc in HEAD_TO_HEAD + ["exists"]:
        for client in ("zk-rs", "kazoo"):
            rs = [r for r in rows if r["scenario"] == sc and r["client"] == client]
            if not rs or med(rs, "cpu_user_us_per_op")[0] is None:
                continue
            out.append(
                "| %s | %s | %s | %s | %s |"
                % (
                    sc,
                    client,
                    fmt(med(rs, "cpu_user_us_per_op")[0], 1),
                    fmt(med(rs, "cpu_sys_us_per_op")[0], 1),
                    fmt(med(rs, "ctx_switches_per_op")[0], 2),
                )
            )
    return "\n".join(out)


def lock_details(rows):
    out = [
        "| client | notifications / release (max) | self-notifications / release "
        "| server watchers / node (max) | RTT p50 µs | handoff p50 in RTTs |",
        "|---|---|---|---|---|---|",
    ]
    for client in ("zk-rs", "kazoo"):
        rs = [r for r in rows if r["scenario"] == "lock-handoff" and r["client"] == client]
        if not rs:
            continue
        out.append(
            "| %s | %s (%s) | %s | %s | %s | %s |"
            % (
                client,
                fmt(med(rs, "notifications_per_release")[0], 3),
                fmt(max(r.get("max_notifications_per_release", 0) for r in rs)),
                fmt(med(rs, "self_notifications_per_release")[0], 3),
                fmt(med(rs, "server_max_watchers_per_node")[0]),
                fmt(med(rs, "rtt_p50_us")[0]),
                fmt(med(rs, "handoff_p50_in_rtts")[0], 1),
            )
        )
    return "\n".join(out)


def ours_only(rows):
    out = []
    ex = [r for r in rows if r["scenario"] == "exists" and r["client"] == "zk-rs"]
    if ex:
        out.append(
            "- exists (%s): %s ops/s, p50 %s µs, p99 %s µs, CPU %s µs/op, server CPU %s µs/op"
            % (
                params_text(ex[0]),
                spread(ex, "ops_per_sec"),
                fmt(med(ex, "p50_us")[0]),
                fmt(med(ex, "p99_us")[0]),
                spread(ex, "cpu_us_per_op", 1),
                fmt(med(ex, "server_cpu_us_per_op")[0]),
            )
        )
    wr = [r for r in rows if r["scenario"] == "watch-reregister"]
    if wr:
        out.append(
            "- watch-reregister (%s): reconnect %s ms, all re-registered on the server %s ms "
            "after the reset (client: sync answered %s ms after); client heap %s B/watch, "
            "RSS %s B/watch; RSS %s → %s → %s KiB (before / registered / after re-registration)"
            % (
                params_text(wr[0]),
                spread(wr, "reconnect_ms"),
                spread(wr, "server_reregistered_ms"),
                spread(wr, "client_reregistered_ms"),
                fmt(med(wr, "heap_bytes_per_watch")[0]),
                fmt(med(wr, "rss_bytes_per_watch")[0]),
                fmt(med(wr, "rss_kib_before")[0]),
                fmt(med(wr, "rss_kib_registered")[0]),
                fmt(med(wr, "rss_kib_after")[0]),
            )
        )
    ef = [r for r in rows if r["scenario"] == "election-failover"]
    if ef:
        out.append(
            "- election-failover (%s): next leader knows it leads %s µs (p50; p99 %s µs) after "
            "the close starts; closeSession itself %s µs (p50)"
            % (
                params_text(ef[0]),
                spread(ef, "p50_us"),
                fmt(med(ef, "p99_us")[0]),
                fmt(med(ef, "close_p50_us")[0]),
            )
        )
    lw = [r for r in rows if r["scenario"] == "lock-waiters"]
    if lw:
        out.append(
            "- lock-waiters (%s): %s heap bytes per waiting contender (state stream %s B, "
            "acquire future %s B, lock handle %s B)"
            % (
                params_text(lw[0]),
                spread(lw, "heap_bytes_per_waiter"),
                fmt(med(lw, "heap_bytes_per_state_stream")[0]),
                fmt(med(lw, "acquire_future_bytes")[0]),
                fmt(med(lw, "heap_bytes_per_lock_handle")[0]),
            )
        )
    lh = [r for r in rows if r["scenario"] == "lock-handoff" and r["client"] == "zk-rs"]
    if lh:
        out.append(
            "- lock-handoff client heap: %s B per session, %s B per queued contender "
            "(its own session aside)"
            % (
                fmt(med(lh, "heap_bytes_per_session")[0]),
                fmt(med(lh, "heap_bytes_per_queued_contender")[0]),
            )
        )
    return "\n".join(out)


def main(paths):
    every = load(paths)
    if not every:
        print("no results in %s" % " ".join(paths), file=sys.stderr)
        return 1
    stub = [r for r in every if str(r.get("label", "")).startswith("stub")]
    rows = [r for r in every if not str(r.get("label", "")).startswith("stub")]
    print("### zk-rs and kazoo, same server, alternating runs (median, min–max)\n")
    print(head_to_head(rows))
    print("\n### Where the client CPU goes (medians)\n")
    print(cpu_split(rows))
    print("\n### lock-handoff: herd and round trips (medians)\n")
    print(lock_details(rows))
    if stub:
        print(
            "\n### Client-bound: the same clients against `zk-bench stub-serve`, a stub that "
            "answers at once (median, min–max)\n"
        )
        print(head_to_head(stub, ["get", "set"], ops_per_client=True))
        print()
        print(cpu_split(stub))
    extra = ours_only(rows)
    if extra:
        print("\n### zk-rs only (medians)\n")
        print(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
