#!/usr/bin/env python3
"""Runs the workspace's test binaries several at a time (scripts/test.sh calls it).

`cargo test` runs one test binary after another: with ~90 binaries that mostly wait on real
servers (session expiries, restarts, elections), the suite's wall time is the sum of them all.
This runner asks cargo to build them (`cargo test --no-run`, the same features and profile),
then runs them JOBS at a time (env TEST_JOBS, default 3), the longest first (times of the last
run on this machine are kept in the target dir; a first run goes by a built-in list), each as
`cargo test` would: in its package's directory, with cargo's run-time variables, its output
captured and printed whole when it ends, under cargo's own "Running" header. The doc tests
run as one more job (`cargo test --doc`).

Extra passes: `--pass NAME:PACKAGE:VAR=VALUE[,VAR=VALUE]` runs PACKAGE's binaries once more
with those variables (e.g. the recipe suite against another server backend).

Exit status: 0 when every binary passed, 1 otherwise (after all ran, as --no-fail-fast), with
the failing binaries and their commands listed last.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

# Binaries known to take longest (a first run, before any times are recorded, starts these).
SLOW_FIRST = [
    "campaign", "tls", "review8d", "tree_cache", "review8", "lock", "review9", "differential",
    "churn", "review8c", "async_api", "review8b", "core_defects", "partitioner",
    "semaphore_election", "interop_queue", "watch", "expiry", "interop_curator", "queue",
]


def package_name(binary):
    """The package's name: from cargo's package id (`path+file:///dir#name@1.0` or
    `path+file:///dir/name#1.0`), else the package directory's name."""
    pid = binary["pkg"]
    frag = pid.rsplit("#", 1)[1] if "#" in pid else ""
    if "@" in frag:
        return frag.split("@", 1)[0]
    return Path(binary["pkg_dir"]).name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("TEST_JOBS", "3")))
    ap.add_argument("--pass", dest="passes", action="append", default=[],
                    metavar="NAME:PACKAGE:VAR=VALUE[,VAR=VALUE]")
    args = ap.parse_args()
    if args.jobs < 1:
        sys.exit("run-tests: TEST_JOBS must be at least 1")

    cargo = os.environ.get("CARGO", "cargo")
    base = [cargo, "test", "--workspace", "--no-fail-fast"]
    if args.features:
        base += ["--features", args.features]

    print(f"== building the test binaries: {' '.join(base)} --no-run", flush=True)
    build = subprocess.run(base + ["--no-run", "--message-format=json-render-diagnostics"],
                           stdout=subprocess.PIPE, text=True)
    binaries = []
    target_dir = None
    for line in build.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        exe = msg.get("executable")
        if not exe or not msg.get("profile", {}).get("test"):
            continue
        target = msg["target"]
        pkg_dir = str(Path(msg["manifest_path"]).parent)
        src = os.path.relpath(target["src_path"], pkg_dir)
        binaries.append({
            "name": target["name"], "kind": target["kind"][0], "src": src, "exe": exe,
            "pkg_dir": pkg_dir, "pkg": msg["package_id"],
        })
        if target_dir is None:
            target_dir = Path(exe).parent.parent.parent
    if build.returncode != 0:
        sys.exit(f"run-tests: building the test binaries failed (exit {build.returncode})")
    if not binaries:
        sys.exit("run-tests: cargo built no test binaries")

    times_file = (target_dir or Path("target")) / "run-tests-times.json"
    try:
        last = json.loads(times_file.read_text())
    except (OSError, ValueError):
        last = {}

    jobs = []
    for b in binaries:
        jobs.append(dict(b, label=f"{b['src']} ({b['exe']})", env={}, key=b["name"] + "@" + b["src"]))
    for spec in args.passes:
        try:
            name, package, assignments = spec.split(":", 2)
            extra = dict(a.split("=", 1) for a in assignments.split(","))
        except ValueError:
            sys.exit(f"run-tests: bad --pass {spec!r}: expected NAME:PACKAGE:VAR=VALUE[,VAR=VALUE]")
        mine = [b for b in binaries if package_name(b) == package]
        if not mine:
            sys.exit(f"run-tests: --pass {name}: no test binaries of package {package}")
        for b in mine:
            jobs.append(dict(b, label=f"{b['src']} [{name}] ({b['exe']})", env=extra,
                             key=b["name"] + "@" + b["src"] + "@" + name))
    doc = {"label": "doc tests", "key": "@doc", "doc": True, "env": {}}
    jobs.append(doc)

    def weight(job):
        if job["key"] in last:
            return last[job["key"]]
        name = job.get("name", "")
        if name in SLOW_FIRST:
            return 1000 - SLOW_FIRST.index(name)
        return 0

    jobs.sort(key=weight, reverse=True)

    lock = threading.Lock()
    queue = list(jobs)
    results = []
    times = dict(last)
    started = time.monotonic()

    def run(job):
        t0 = time.monotonic()
        if job.get("doc"):
            cmd = base + ["--doc"]
            cwd = None
            env = dict(os.environ)
        else:
            cmd = [job["exe"]]
            cwd = job["pkg_dir"]
            env = dict(os.environ)
            env["CARGO_MANIFEST_DIR"] = job["pkg_dir"]
            env.setdefault("CARGO", cargo)
            env.update(job["env"])
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        took = time.monotonic() - t0
        out = proc.stdout.decode("utf-8", "replace")
        with lock:
            setting = "".join(f"{k}={v} " for k, v in job["env"].items())
            print(f"     Running {setting}{job['label']}  [{took:.1f} s, exit {proc.returncode}]")
            sys.stdout.write(out)
            if not out.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()
            results.append((job, proc.returncode, took, cmd, cwd, setting))
            times[job["key"]] = round(took, 1)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop(0)
            run(job)

    print(f"== running {len(jobs)} test jobs, {args.jobs} at a time", flush=True)
    threads = [threading.Thread(target=worker) for _ in range(args.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    try:
        times_file.write_text(json.dumps(times, indent=1, sort_keys=True))
    except OSError:
        pass
    wall = time.monotonic() - started
    busy = sum(r[2] for r in results)
    failed = [r for r in results if r[1] != 0]
    print(f"== test jobs: {len(results)} ran in {wall:.0f} s of wall time ({busy:.0f} s summed); "
          f"{len(failed)} with failures")
    for job, rc, took, cmd, cwd, setting in failed:
        where = f"(cd {cwd} && {setting}{' '.join(cmd)})" if cwd else " ".join(cmd)
        print(f"FAILED: {job['label']}: exit {rc}; rerun: {where}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
