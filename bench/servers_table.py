#!/usr/bin/env python3
"""Tables of bench/servers.sh: ZooKeeper and zk-server measured by the same client.

    python3 bench/servers_table.py FILE...
    python3 bench/servers_table.py --splice docs/benchmarks.md FILE...

Rows are zk-bench result lines whose label is "<server>/<round>" (warm-up rounds left out);
each cell shows the median over rounds and the min-max. --splice replaces what is between
the lines "<!-- servers.sh:begin -->" and "<!-- servers.sh:end -->" of the file.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import table  # noqa: E402 (bench/table.py, beside this file)
from table import fmt, med, splice, spread  # noqa: E402

BEGIN = "<!-- servers.sh:begin -->"
END = "<!-- servers.sh:end -->"
SERVERS = ["zookeeper", "zk-server"]
NAMES = {"zookeeper": "ZooKeeper 3.8", "zk-server": "zk-server"}


def load(paths):
    """bench/table.py's rows and header, narrowed to this script's "<server>/<round>" labels
    (warm-up rounds and failed-run notes left out)."""
    every, header = table.load(paths)
    rows = []
    for r in every:
        server, _, label = r.get("label", "").partition("/")
        if server in SERVERS and label != "warmup":
            r["server"] = server
            rows.append(r)
    return rows, [h for h in header if not h.startswith("FAILED")]


def report(rows, header):
    out = []
    if header:
        out.append("Measured with `bench/servers.sh`:\n")
        out.extend("    " + h for h in header)
        out.append("")
    out.append(
        "| scenario | in flight | server | ops/s | vs ZooKeeper | server CPU µs/op | client CPU µs/op | p50 µs | p99 µs |"
    )
    out.append("|" + "---|" * 9)
    scenarios = []
    for r in rows:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    for sc in scenarios:
        levels = sorted({r.get("params", {}).get("concurrency", 0) for r in rows if r["scenario"] == sc})
        for lv in levels:
            cell = {
                s: [r for r in rows if r["scenario"] == sc and r["server"] == s and r.get("params", {}).get("concurrency", 0) == lv]
                for s in SERVERS
            }
            base = med(cell["zookeeper"], "ops_per_sec")[0]
            for s in SERVERS:
                rs = cell[s]
                if not rs:
                    continue
                m = med(rs, "ops_per_sec")[0]
                ratio = "–" if not base or m is None else "%.2f×" % (m / base)
                out.append(
                    "| %s | %s | %s | %s | %s | %s | %s | %s | %s |"
                    % (
                        sc,
                        lv,
                        NAMES[s],
                        spread(rs, "ops_per_sec"),
                        ratio,
                        fmt(med(rs, "server_cpu_us_per_op")[0]),
                        fmt(med(rs, "cpu_us_per_op")[0]),
                        fmt(med(rs, "p50_us")[0]),
                        fmt(med(rs, "p99_us")[0]),
                    )
                )
    return "\n".join(out) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--splice", metavar="MARKDOWN")
    a = ap.parse_args(argv)
    rows, header = load(a.files)
    if not rows:
        print("no results in %s" % " ".join(a.files), file=sys.stderr)
        return 1
    text = report(rows, header)
    if a.splice:
        splice(a.splice, text, BEGIN, END)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
