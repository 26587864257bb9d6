#!/usr/bin/env python3
"""s360-sync benchmarks, each printed as ratios against reference tools measured in the same run.

Usage (from the repository root):

    python3 bench/bench.py [sync] [import] [reconcile] [--rows N] [--keep DIR] [--dev] [--simd] [--lto] [--repeat K] [--baseline BIN]

With no section named, all run. Installs its Python reference tools (duckdb,
polars, datacompy) with pip and `wrk` with apt-get when missing, builds
s360-sync with `cargo build --release` for x86-64-v3 (AVX2, the CPU level
the Polars wheel requires; in its own target folder; the first,
cold build of Polars took 17 minutes on 2 cores here), with `--lto` the
`release-lto` profile (fat LTO, one codegen unit: 20 to 40 minutes cold),
or, with `--dev`, uses the dev-profile build the tests use (dependencies at
opt-level 2, s360-sync at 1), and works in a temporary folder.
Absolute times on a shared 2-core machine mean little; the ratios, measured
side by side in one run, are the result.
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "s360-sync-target"))
# The release build for benchmarks targets x86-64-v3 (AVX2), the CPU level
# the Polars wheel it is compared with requires; it lives in its own folder
# so the test build's flags stay untouched.
BENCH_TARGET = Path(os.environ.get("S360_BENCH_TARGET_DIR", Path.home() / ".cache" / "s360-sync-bench-target"))
BENCH_RUSTFLAGS = "-C target-cpu=x86-64-v3"
BIN = BENCH_TARGET / "release" / "s360-sync"
# `--simd`: Polars' SIMD CSV splitting and kernels, as its Python wheels have.
SIMD_TARGET = Path(os.environ.get("S360_BENCH_SIMD_TARGET_DIR", Path.home() / ".cache" / "s360-sync-bench-simd-target"))
# `--lto`: the `release-lto` profile (fat LTO, one codegen unit), own folder.
LTO_TARGET = Path(os.environ.get("S360_BENCH_LTO_TARGET_DIR", Path.home() / ".cache" / "s360-sync-bench-lto-target"))


def log(msg):
    print(msg, flush=True)


def ensure_python(*packages):
    # Looked up, not imported: importing Python Polars sets
    # `_RJEM_MALLOC_CONF=dirty_decay_ms:500,muzzy_decay_ms:-1` in this
    # process's environment, which every tool started afterwards inherits,
    # s360-sync's jemalloc included (same symbol prefix): freed pages then
    # stay resident, and a 5M-row check measured 2,308 MiB instead of 1,585.
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        log(f"installing {' '.join(missing)} with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("installing wrk with apt-get")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def build(dev, simd, lto=False):
    cmd = ["cargo", "build", "--quiet", "--locked", "--bin", "s360-sync"]
    if dev:
        log("building s360-sync (dev profile, as the tests)")
        env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    elif lto:
        log(f"building s360-sync (release-lto profile, RUSTFLAGS={BENCH_RUSTFLAGS!r}; 20 to 40 minutes cold on 2 cores)")
        env = dict(os.environ, CARGO_TARGET_DIR=str(LTO_TARGET), RUSTFLAGS=BENCH_RUSTFLAGS)
        cmd += ["--profile", "release-lto"]
    else:
        log(f"building s360-sync (release profile, RUSTFLAGS={BENCH_RUSTFLAGS!r}{', --features simd' if simd else ''})")
        env = dict(os.environ, CARGO_TARGET_DIR=str(SIMD_TARGET if simd else BENCH_TARGET), RUSTFLAGS=BENCH_RUSTFLAGS)
        cmd.append("--release")
        if simd:
            # Polars' SIMD code uses `portable_simd`, a nightly feature; the
            # one toolchain here is stable, which RUSTC_BOOTSTRAP unlocks.
            cmd += ["--features", "simd"]
            env["RUSTC_BOOTSTRAP"] = "1"
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def measure_rss(cmd, cwd=None, env=None):
    """Run cmd under wait4 to get its own peak RSS; return (seconds, MiB, stdout, code)."""
    start = time.perf_counter()
    out_f = tempfile.TemporaryFile(mode="w+")
    err_f = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out_f, stderr=err_f, text=True)
    _, status, rusage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    if proc.returncode not in (0, 5, 6):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{err[-3000:]}")
    return elapsed, rusage.ru_maxrss / 1024.0, out, proc.returncode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def table(title, rows, header):
    log(f"\n## {title}\n")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    log(fmt.format(*header))
    for r in rows:
        log(fmt.format(*[str(c) for c in r]))


def gen(out, orders, days=1, extra=()):
    subprocess.run(
        [BIN, "gen", "--out", out, "--orders", str(orders), "--days", str(days), *extra],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_receiver(port):
    """The sandbox CRM in discard mode: answers 200 without storing."""
    proc = subprocess.Popen(
        [BIN, "sandbox-crm", "--listen", f"127.0.0.1:{port}", "--discard"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("receiver did not start")


SYNC_YAML = """version: 1
kind: sync
name: bench
source:
  location: exports/orders_*.csv
  csv: {{ delimiter: ";" }}
  key: orderId
  cursor: lastModDateTime
  columns: {{ orderId: int64, lastModDateTime: timestamp, creationDateTime: timestamp }}
sink:
  url: http://127.0.0.1:{port}/hooks/orders
  concurrency: 4
state:
  path: state/bench.db
  lookback: 1h
"""


def sync_history(work, rows_per_day, port):
    """A scheduled run's cost with 1 day vs 100 days of history; and
    detecting the changes of a new delta file among N rows of history, next to
    DuckDB running the equivalent query over the same files."""
    ensure_python("duckdb")
    import duckdb  # noqa: F401

    results = {}
    for days in (1, 100):
        d = work / f"history-{days}"
        d.mkdir()
        gen(d / "exports", rows_per_day * days, days=days)
        (d / "sync.yaml").write_text(SYNC_YAML.format(port=port))
        # Ingest the history (flag + import into the receiver), as production would have.
        subprocess.run([BIN, "import", "flag", "sync.yaml", "--from", "2000-01-01", "--to", "2100-01-01"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([BIN, "import", "run", "sync.yaml", "--json"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([BIN, "run", "sync.yaml"], cwd=d, stdout=subprocess.DEVNULL)
        # A new delta export with 500 changed orders, one second after the last one.
        last = sorted((d / "exports").glob("orders_*.csv"))[-1]
        lines = last.read_text().splitlines()
        header, body = lines[0], lines[-500:]
        newest = max(l.split(";")[7] for l in lines[1:])
        changed = []
        for l in body:
            c = l.split(";")
            c[1] = "CANCELLED"
            c[7] = newest
            changed.append(";".join(c))
        (d / "exports" / "orders_9999-12-31.csv").write_text(header + "\n" + "\n".join(changed) + "\n")
        secs, rss, out, _ = measure_rss([BIN, "run", "sync.yaml", "--json"], cwd=d)
        summary = json.loads(out)
        detected = summary["detection"]["queued"] + summary["detection"]["coalesced"]
        # DuckDB: the same question over every file: rows modified at or after
        # (cursor - lookback) whose content differs from what was sent before.
        # Its honest equivalent without a ledger is the scan that finds the
        # candidate rows; we give it that easier task.
        q = (
            "SELECT count(*) FROM read_csv('exports/orders_*.csv', delim=';', header=true, "
            "types={'lastModDateTime':'TIMESTAMP'}) "
            f"WHERE lastModDateTime >= TIMESTAMP '{newest}' - INTERVAL 1 HOUR"
        )
        dsecs, drss, dout, _ = measure_rss([sys.executable, "-c", f"import duckdb;duckdb.sql('SET enable_progress_bar=false');print(duckdb.sql(\"\"\"{q}\"\"\").fetchall()[0][0])"], cwd=d)
        results[days] = (secs, rss, detected, dsecs, drss, int(dout.strip().splitlines()[-1]))
    rows = []
    for days, (secs, rss, detected, dsecs, drss, dcount) in results.items():
        rows.append([f"{days} day(s), {days * rows_per_day} rows", f"{secs:.2f}", f"{rss:.0f}", detected, f"{dsecs:.2f}", f"{drss:.0f}", dcount, f"{dsecs / secs:.1f}x"])
    table(
        "sync: scheduled run with a 500-change delta over history",
        rows,
        ["history", "s360-sync s", "MiB", "detected", "duckdb s", "MiB", "rows scanned-in-window", "duckdb/s360-sync"],
    )
    r1, r100 = results[1][0], results[100][0]
    log(f"\nrun time with 100 days of history / with 1 day: {r100 / r1:.2f} (near 1: cost follows new data, not history)")


def import_bench(work, sizes, port):
    """Import throughput and peak RSS at two sizes, and the receiver's
    own ceiling measured with wrk posting the same payload size."""
    ensure_wrk()
    rows = []
    payload_bytes = None
    for n in sizes:
        d = work / f"import-{n}"
        d.mkdir()
        gen(d / "exports", n, days=1)
        (d / "sync.yaml").write_text(SYNC_YAML.format(port=port))
        subprocess.run([BIN, "import", "flag", "sync.yaml", "--from", "2000-01-01", "--to", "2100-01-01"], cwd=d, check=True, stdout=subprocess.DEVNULL)
        secs, rss, out, _ = measure_rss([BIN, "import", "run", "sync.yaml", "--json"], cwd=d)
        s = json.loads(out)
        acked = s["delivery"]["acknowledged"]
        requests = s["delivery"]["requests"]
        rows.append([n, acked, f"{secs:.1f}", f"{acked / secs:.0f}", f"{rss:.0f}", requests])
        if payload_bytes is None:
            dry = work / "payload.json"
            # One real 50-order payload, for the load generator.
            rec = subprocess.run([BIN, "preview", "sync.yaml", "--limit", "50", "--json"], cwd=d, check=True, capture_output=True, text=True).stdout
            orders = [json.loads(l) for l in rec.splitlines()]
            body = json.dumps({"type": "order.upserted", "timestamp": "2026-01-01T00:00:00Z", "data": {"orders": [{"id": str(o["orderId"]), "version": 1, "order": o} for o in orders]}})
            dry.write_text(body)
            payload_bytes = len(body)
    table("import run into a loopback receiver", rows, ["orders", "acknowledged", "seconds", "orders/s", "peak MiB", "requests"])
    lua = work / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f'local f = io.open("{work / "payload.json"}", "r")\n'
        "wrk.body = f:read(\"*a\")\nf:close()\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(["wrk", "-t2", "-c4", "-d10s", "-s", str(lua), f"http://127.0.0.1:{port}/hooks/orders"], capture_output=True, text=True, check=True).stdout
    rps = float([l for l in out.splitlines() if l.startswith("Requests/sec")][0].split()[1])
    ceiling = rps * 50
    best = max(float(r[3]) for r in rows)
    log(f"\nreceiver ceiling (wrk, 4 connections, same {payload_bytes}-byte payloads): {rps:.0f} requests/s = {ceiling:.0f} orders/s")
    log(f"s360-sync import throughput / receiver ceiling: {best / ceiling:.2f}")
    if len(rows) == 2:
        log(f"peak RSS at {rows[1][0]} orders / at {rows[0][0]} orders: {float(rows[1][4]) / float(rows[0][4]):.2f} (near 1: memory stays flat)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sections", nargs="*", default=[], help="sync, import, reconcile (default: all)")
    ap.add_argument("--rows", type=int, default=5_000_000, help="history rows (sync) and rows per side (reconcile)")
    ap.add_argument("--import-sizes", default="100000,1000000", help="orders per import run")
    ap.add_argument("--repeat", type=int, default=3,
                    help="reconcile: runs of s360-sync and DuckDB each, interleaved; medians are compared")
    ap.add_argument("--keep", help="work in this folder and keep it")
    ap.add_argument("--no-build", action="store_true", help="use the existing binary")
    ap.add_argument("--baseline", metavar="BIN",
                    help="reconcile: also run this s360-sync binary (an earlier build), interleaved, and print its ratios")
    ap.add_argument("--dev", action="store_true", help="benchmark the dev-profile build the tests use")
    ap.add_argument("--simd", action="store_true",
                    help="build with Polars' SIMD code (nightly features, unlocked with RUSTC_BOOTSTRAP=1; own target folder)")
    ap.add_argument("--lto", action="store_true",
                    help="benchmark the release-lto profile (fat LTO, one codegen unit; own target folder)")
    args = ap.parse_args()
    global BIN
    if args.dev:
        BIN = TARGET / "debug" / "s360-sync"
    elif args.simd:
        BIN = SIMD_TARGET / "release" / "s360-sync"
    elif args.lto:
        BIN = LTO_TARGET / "release-lto" / "s360-sync"
    log(f"binary: {BIN}")
    sections = args.sections or ["sync", "import", "reconcile"]
    if not args.no_build:
        build(args.dev, args.simd, args.lto)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="s360-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    receiver = start_receiver(port)
    try:
        if "sync" in sections:
            sync_history(work, max(args.rows // 100, 1000), port)
        if "import" in sections:
            import_bench(work, [int(x) for x in args.import_sizes.split(",")], port)
        if "reconcile" in sections:
            import reconcile_bench  # noqa: E402  (bench/reconcile_bench.py)

            reconcile_bench.run(BIN, work, args.rows, measure_rss, table, log, ensure_python, gen, args.repeat,
                                baseline=args.baseline)
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
