#!/usr/bin/env python3
"""Turns the JSON lines of zk-bench, kazoo_bench.py, zkc-bench (the zookeeper-client crate)
and ZkJavaBench (the Java client) into Markdown tables: medians over the runs of each
(scenario, concurrency, client), the spread (min-max) beside them, and each client against
zk-rs.

    python3 bench/table.py target/zk-bench/compare-*.jsonl
    python3 bench/table.py --splice docs/benchmarks.md --plots docs/img/benchmarks FILE...

Lines with "label": "warmup" are ignored; labels starting with "stub" are the runs against
`zk-bench stub-serve`, tabled apart. --splice replaces what is between the lines
`<!-- compare.sh:begin -->` and `<!-- compare.sh:end -->` of the file with the run's header
(machine, versions, load), the tables and (with --plots DIR) the plots that bench/plots.py
drew into DIR.
"""

import argparse
import json
import os
import statistics
import sys

HEAD_TO_HEAD = ["get", "set", "exists", "create-delete", "lock-handoff"]
# zk-rs first (the others are compared with it), then the other Rust client, Java, Python
CLIENTS = ["zk-rs", "zookeeper-client", "java", "kazoo"]
OPS_SCENARIOS = ("get", "set", "exists", "create-delete")
BEGIN = "<!-- compare.sh:begin -->"
END = "<!-- compare.sh:end -->"


def load(paths):
    """(result rows, header comment lines) of the files."""
    rows, header = [], []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("# ") and not line.startswith("# round"):
                    header.append(line[2:])
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                if r.get("label") == "warmup":
                    continue
                rows.append(r)
    return rows, header


def clients_of(rows):
    seen = {r["client"] for r in rows}
    return [c for c in CLIENTS if c in seen] + sorted(seen - set(CLIENTS))


def level(r):
    """Requests in flight per session (None for the scenarios without the notion)."""
    return r.get("params", {}).get("concurrency") if r["scenario"] in OPS_SCENARIOS else None


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, int) and digits == 0:
        return "{:,d}".format(v)
    if isinstance(v, float) and digits == 0 and abs(v) >= 100:
        return "{:,.0f}".format(v)
    if digits == 0:
        return "{:,.0f}".format(v) if abs(v) >= 10 else "{:.1f}".format(v)
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
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
    r = a / b
    return "%.2f×" % r if r < 10 else "%.1f×" % r


def params_text(r):
    p = r.get("params", {})
    if r["scenario"] == "lock-handoff":
        return "%d contenders × %d rounds" % (p.get("contenders", 0), p.get("rounds", 0))
    if r["scenario"] in OPS_SCENARIOS:
        return "%d ops, %d in flight × %d session, %d B" % (
            p.get("ops", 0),
            p.get("concurrency", 0),
            p.get("sessions", 0),
            p.get("size", 0),
        )
    return ", ".join("%s %s" % (k, v) for k, v in p.items())


def cells(rows, scenarios):
    """(scenario, level, {client: rows}) in order, for the cells with any rows."""
    for sc in scenarios:
        in_sc = [r for r in rows if r["scenario"] == sc]
        levels = sorted({level(r) for r in in_sc}, key=lambda x: (x is None, x or 0))
        for lv in levels:
            by = {}
            for c in clients_of(in_sc):
                rs = [r for r in in_sc if r["client"] == c and level(r) == lv]
                if rs:
                    by[c] = rs
            if by:
                yield sc, lv, by


def head_to_head(rows, scenarios=HEAD_TO_HEAD, ops_per_client=False):
    out = [
        "| scenario | in flight | client | runs | ops/s | ops/s vs zk-rs | p50 / p99 µs "
        "| client CPU µs/op | CPU vs zk-rs | server CPU µs/op |",
        "|" + "---|" * 10,
    ]
    for sc, lv, by in cells(rows, scenarios):
        base = by.get("zk-rs")
        b_ops = med(base, "ops_per_sec")[0] if base else None
        b_cpu = med(base, "cpu_us_per_op")[0] if base else None
        for c, rs in by.items():
            name = c
            if ops_per_client or sc == "lock-handoff":
                name = "%s (%s)" % (c, params_text(rs[0]))
            out.append(
                "| %s | %s | %s | %d | %s | %s | %s / %s | %s | %s | %s |"
                % (
                    sc,
                    "–" if lv is None else lv,
                    name,
                    len(rs),
                    spread(rs, "ops_per_sec"),
                    "" if c == "zk-rs" else ratio(med(rs, "ops_per_sec")[0], b_ops),
                    fmt(med(rs, "p50_us")[0]),
                    fmt(med(rs, "p99_us")[0]),
                    spread(rs, "cpu_us_per_op", 1),
                    "" if c == "zk-rs" else ratio(med(rs, "cpu_us_per_op")[0], b_cpu),
                    fmt(med(rs, "server_cpu_us_per_op")[0]),
                )
            )
    return "\n".join(out)


def latencies(rows, scenarios=HEAD_TO_HEAD):
    out = [
        "| scenario | in flight | client | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |",
        "|" + "---|" * 8,
    ]
    for sc, lv, by in cells(rows, scenarios):
        for c, rs in by.items():
            out.append(
                "| %s | %s | %s | %s |"
                % (
                    sc,
                    "–" if lv is None else lv,
                    c,
                    " | ".join(
                        fmt(med(rs, k)[0])
                        for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")
                    ),
                )
            )
    return "\n".join(out)


def cpu_split(rows, scenarios=HEAD_TO_HEAD):
    out = [
        "| scenario | in flight | client | user µs/op | system µs/op | context switches/op |",
        "|---|---|---|---|---|---|",
    ]
    for sc, lv, by in cells(rows, scenarios):
        for c, rs in by.items():
            if med(rs, "cpu_user_us_per_op")[0] is None:
                continue
            out.append(
                "| %s | %s | %s | %s | %s | %s |"
                % (
                    sc,
                    "–" if lv is None else lv,
                    c,
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
    lh = [r for r in rows if r["scenario"] == "lock-handoff"]
    for client in clients_of(lh):
        rs = [r for r in lh if r["client"] == client]
        maxes = [r["max_notifications_per_release"] for r in rs if "max_notifications_per_release" in r]
        out.append(
            "| %s | %s (%s) | %s | %s | %s | %s |"
            % (
                client,
                fmt(med(rs, "notifications_per_release")[0], 3),
                fmt(max(maxes)) if maxes else "–",
                fmt(med(rs, "self_notifications_per_release")[0], 3),
                fmt(med(rs, "server_max_watchers_per_node")[0]),
                fmt(med(rs, "rtt_p50_us")[0]),
                fmt(med(rs, "handoff_p50_in_rtts")[0], 1),
            )
        )
    return "\n".join(out)


def ours_only(rows):
    # (exists is in the head-to-head tables, with whichever clients ran it)
    out = []
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


def report(every, header=(), plots=None, level=3):
    """The whole Markdown report: tables, and with `plots` (a directory relative to where
    the report goes) the plots' image links; its headings at `level`."""
    stub = [r for r in every if str(r.get("label", "")).startswith("stub")]
    rows = [r for r in every if not str(r.get("label", "")).startswith("stub")]
    out = []
    if any("smoke=1" in h for h in header):
        out.append(
            "**A smoke run (`compare.sh --smoke`), on a busy machine: these figures check the "
            "tooling and mean nothing.**\n"
        )
    if header:
        out.append("The run (from the header of its result file):\n")
        out.extend("- %s" % h for h in header)
        out.append("")
    if plots is not None:
        for name, alt in (
            ("throughput.png", "throughput by client and requests in flight"),
            ("cpu.png", "client CPU per request by client and requests in flight"),
            ("latency.png", "latency percentiles by client and requests in flight"),
        ):
            out.append("![%s](%s/%s)\n" % (alt, plots, name))
    out.append("### All clients, same server, alternating runs (median, min–max)\n")
    out.append(head_to_head(rows))
    out.append("\n### Latency percentiles (medians of the runs' percentiles)\n")
    out.append(latencies(rows))
    out.append("\n### Where the client CPU goes (medians)\n")
    out.append(cpu_split(rows))
    if any(r["scenario"] == "lock-handoff" for r in rows):
        out.append("\n### lock-handoff: herd and round trips (medians)\n")
        out.append(lock_details(rows))
    if stub:
        out.append(
            "\n### Client-bound: the same clients against `zk-bench stub-serve`, a stub that "
            "answers at once (median, min–max)\n"
        )
        out.append(head_to_head(stub, ["get", "set"], ops_per_client=True))
        out.append("")
        out.append(cpu_split(stub, ["get", "set"]))
    extra = ours_only(rows)
    if extra:
        out.append("\n### zk-rs only (medians)\n")
        out.append(extra)
    text = "\n".join(out) + "\n"
    hashes = "#" * level
    return "\n".join(hashes + l[3:] if l.startswith("### ") else l for l in text.split("\n"))


def splice(path, text, begin=BEGIN, end=END):
    """Replaces what is between the lines `begin` and `end` of the file with `text`."""
    with open(path) as f:
        doc = f.read()
    if begin not in doc or end not in doc:
        raise SystemExit("%s has no %s ... %s section" % (path, begin, end))
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + text + end + tail)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--splice", metavar="MARKDOWN", help="write the report into this file")
    ap.add_argument("--plots", metavar="DIR", help="link the plots in DIR")
    a = ap.parse_args(argv)
    every, header = load(a.files)
    if not every:
        print("no results in %s" % " ".join(a.files), file=sys.stderr)
        return 1
    if a.splice:
        rel = None
        if a.plots:
            rel = os.path.relpath(os.path.abspath(a.plots), os.path.dirname(os.path.abspath(a.splice)))
        splice(a.splice, report(every, header, rel, level=4))
        return 0
    print(report(every, header), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
