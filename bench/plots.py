#!/usr/bin/env python3
"""Draws the plots of docs/benchmarks.md from the JSON lines of bench/compare.sh (the same
lines bench/table.py reads): PNG files into a directory.

    python3 bench/plots.py --out docs/img/benchmarks target/zk-bench/compare-*.jsonl

* throughput.png: ops/s by client and requests in flight, one panel per scenario (median of
  the runs, the bar from the slowest to the fastest run);
* cpu.png: the client's CPU µs per request, same layout (log scale: the clients differ by
  orders of magnitude);
* latency.png: p50 / p90 / p99 / p99.9 by client, one panel per scenario and requests in
  flight (medians of the runs' percentiles, log scale).

Warm-up runs and the stub-server runs are left out. The title says which run it is (from the
result file's header) and, for a `--smoke` run, that its figures mean nothing.

Needs matplotlib (bench/compare.sh installs it with pip when it is missing).
"""

import argparse
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import OPS_SCENARIOS, clients_of, level, load  # noqa: E402

PLAIN = FuncFormatter(lambda v, _: "{:,.0f}".format(v) if v >= 1 else "{:g}".format(v))


def plain_log_y(ax):
    """Log scale with plain numbers on the major ticks only."""
    ax.set_yscale("log")
    # 1, 2, 5 in every decade: labels even when the values span less than a decade
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(NullFormatter())


COLORS = {"zk-rs": "#d62728", "zookeeper-client": "#ff7f0e", "java": "#1f77b4", "kazoo": "#2ca02c"}
PERCENTILES = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9")]


def title(header, what):
    smoke = any("smoke=1" in h for h in header)
    machine = next((h for h in header if h.startswith("machine:")), "")
    load_start = next((h for h in header if h.startswith("load average at start")), "")
    t = what
    if smoke:
        t += "\nSMOKE RUN on a busy machine: checks the tooling, the figures mean nothing"
    sub = "; ".join(x for x in (machine, load_start) if x)
    return t + ("\n" + sub if sub else "")


def series(rows, scenario, client, key):
    """[(concurrency, median, min, max)] of `key`."""
    out = []
    levels = sorted({level(r) for r in rows if r["scenario"] == scenario and r["client"] == client})
    for lv in levels:
        vals = [
            r[key]
            for r in rows
            if r["scenario"] == scenario and r["client"] == client and level(r) == lv
            and r.get(key) is not None
        ]
        if vals and lv is not None:
            out.append((lv, statistics.median(vals), min(vals), max(vals)))
    return out


def compared(rows):
    """The scenarios with results, those that more than one client ran if there are any (the
    zk-rs-only `exists` runs of compare.sh stay out of the plots)."""
    present = [s for s in OPS_SCENARIOS if any(r["scenario"] == s for r in rows)]
    multi = [s for s in present if len(clients_of([r for r in rows if r["scenario"] == s])) > 1]
    return multi or present


def by_concurrency(rows, header, key, ylabel, what, path, log_y):
    scenarios = compared(rows)
    if not scenarios:
        return False
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.2 * len(scenarios), 4.6), squeeze=False)
    for ax, sc in zip(axes[0], scenarios):
        for c in clients_of([r for r in rows if r["scenario"] == sc]):
            s = series(rows, sc, c, key)
            if not s:
                continue
            xs = [p[0] for p in s]
            ys = [p[1] for p in s]
            err = [[p[1] - p[2] for p in s], [p[3] - p[1] for p in s]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=c, color=COLORS.get(c))
        ax.set_xscale("log", base=2)
        levels = sorted({level(r) for r in rows if r["scenario"] == sc and level(r) is not None})
        ax.set_xticks(levels)
        ax.set_xticklabels([str(x) for x in levels])
        if log_y:
            plain_log_y(ax)
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(sc)
        ax.set_xlabel("requests in flight (one session)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title(header, what), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def latency(rows, header, path):
    cells = []
    for sc in compared(rows):
        levels = sorted({level(r) for r in rows if r["scenario"] == sc and level(r) is not None})
        cells.extend((sc, lv) for lv in levels)
    if not cells:
        return False
    scenarios = [s for s in OPS_SCENARIOS if any(c[0] == s for c in cells)]
    ncols = max(sum(1 for c in cells if c[0] == s) for s in scenarios)
    fig, axes = plt.subplots(
        len(scenarios), ncols, figsize=(3.6 * ncols, 3.2 * len(scenarios)), squeeze=False
    )
    for i, sc in enumerate(scenarios):
        levels = [lv for s, lv in cells if s == sc]
        for j in range(ncols):
            ax = axes[i][j]
            if j >= len(levels):
                ax.axis("off")
                continue
            lv = levels[j]
            here = [r for r in rows if r["scenario"] == sc and level(r) == lv]
            clients = clients_of(here)
            width = 0.8 / max(len(clients), 1)
            for k, c in enumerate(clients):
                rs = [r for r in here if r["client"] == c]
                ys = []
                for key, _ in PERCENTILES:
                    vals = [r[key] for r in rs if r.get(key) is not None]
                    ys.append(statistics.median(vals) if vals else 0)
                xs = [p + (k - (len(clients) - 1) / 2) * width for p in range(len(PERCENTILES))]
                ax.bar(xs, ys, width=width, label=c, color=COLORS.get(c))
            values = [r[k] for r in here for k, _ in PERCENTILES if r.get(k)]
            if values:
                # the smallest bar visible, not cut at the axis
                ax.set_ylim(bottom=min(values) / 2, top=max(values) * 1.5)
            ax.set_xticks(range(len(PERCENTILES)))
            ax.set_xticklabels([name for _, name in PERCENTILES])
            plain_log_y(ax)
            ax.set_title("%s, %s in flight" % (sc, lv), fontsize=9)
            ax.set_ylabel("µs")
            ax.grid(True, axis="y", which="both", alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(title(header, "Latency percentiles, issue to reply (medians of the runs)"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", required=True, metavar="DIR")
    a = ap.parse_args(argv)
    every, header = load(a.files)
    rows = [r for r in every if not str(r.get("label", "")).startswith("stub")]
    if not rows:
        print("plots.py: no results in %s" % " ".join(a.files), file=sys.stderr)
        return 1
    os.makedirs(a.out, exist_ok=True)
    drawn = []
    if by_concurrency(
        rows, header, "ops_per_sec", "requests / s",
        "Throughput against one ZooKeeper (median; bar: slowest to fastest run)",
        os.path.join(a.out, "throughput.png"), log_y=False,
    ):
        drawn.append("throughput.png")
    if by_concurrency(
        rows, header, "cpu_us_per_op", "client CPU µs per request (user + system)",
        "Client CPU per request (median; bar: lowest to highest run; log scale)",
        os.path.join(a.out, "cpu.png"), log_y=True,
    ):
        drawn.append("cpu.png")
    if latency(rows, header, os.path.join(a.out, "latency.png")):
        drawn.append("latency.png")
    print("plots.py: %s in %s" % (", ".join(drawn) or "nothing", a.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
