#!/usr/bin/env python3
"""Benchmark mpupload against s5cmd, rclone, the AWS CLI and the seed's V2 design on a local SeaweedFS.

    PYTHONPATH=. python bench/run.py --quick --out bench/results/quick
    PYTHONPATH=. python bench/run.py --out bench/results/latest            # 3 runs, full-size sets
    PYTHONPATH=. python bench/run.py --matrix --datasets small --out bench/results/matrix
    PYTHONPATH=. python bench/run.py --rtt 0,40,100 --datasets small --out bench/results/wan   # scripts/bench-wan.sh

Tools run interleaved (the order rotates every round), each run into a fresh prefix; after every run
the objects are counted and summed, and a run that did not land everything is recorded as failed, not
timed. One server per data set (fresh directory, one bucket), warmed up before the first timed run.
With --rtt every run goes through bench/relay.py (a fixed delay each way, in its own process, one per
run) in front of that server; each round runs every round trip, each with every tool.
The machine is shared and noisy: read the medians and the ratios, not single times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import plots  # noqa: E402
from bench.datasets import DEFAULT, Dataset, ensure, specs  # noqa: E402
from bench.link import link  # noqa: E402
from bench.measure import run_measured  # noqa: E402
from bench.results import derive, write_all  # noqa: E402
from bench.tools import DEFAULT_TOOLS, TOOLS, WAN_TOOLS, Target, Tool, clean_env, mpupload_variant  # noqa: E402
from mpupload import localserver  # noqa: E402

BUCKET = "bench"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data sets and 1 run: a whole session in < 5 minutes")
    p.add_argument("--out", type=Path, default=Path("bench/results/latest"), help="where results go")
    p.add_argument("--data", type=Path, default=None, help="where data sets are generated and cached "
                   "(default: bench/data, git-ignored)")
    p.add_argument("--tools", default=None, help="comma-separated, from: " + ", ".join(TOOLS) + " (default: "
                   + ",".join(DEFAULT_TOOLS) + "; with --rtt: " + ",".join(WAN_TOOLS) + ")")
    p.add_argument("--rtt", default=None, help="comma-separated round trips in ms, e.g. 0,40,100: every run goes "
                   "through bench/relay.py adding that much; 'direct' = no relay (default: direct only)")
    p.add_argument("--datasets", default=None, help="comma-separated: small, news, large, many (6000 small "
                   "files, the memory check) (default: small,news,large; with --matrix: small)")
    p.add_argument("--runs", type=int, default=None, help="runs per tool and data set (default 3; --quick 1)")
    p.add_argument("--matrix", action="store_true", help="sweep mpupload processes x threads (x part size "
                   "on large) instead of comparing tools")
    p.add_argument("--grid", default=None, help="matrix grid as PROCS:THREADS[:CHUNK_MIB], comma lists, e.g. "
                   "1,2:8,16:8,32 (default: 1,2,3,4:4,8,16,32[:8,32,64 on large]; --quick 1,2:8,16[:8,64])")
    p.add_argument("--timeout", type=float, default=None, help="seconds per tool invocation (default: from "
                   "the data set's size)")
    p.add_argument("--rewrite", action="store_true", help="only redraw results.md/csv and the plots in --out "
                   "from its results.json")
    p.add_argument("--budget-minutes", type=float, default=None, help="start no new run after this "
                   "(default 120; --quick 4.5)")
    a = p.parse_args(argv)
    a.runs = a.runs or (1 if a.quick else 3)
    # "direct" among them: runs straight to the server too, to see what the relay itself costs.
    a.rtts = [None if x.strip() == "direct" else float(x) for x in a.rtt.split(",") if x.strip()] if a.rtt else [None]
    a.tools = a.tools or ",".join(WAN_TOOLS if a.rtt else DEFAULT_TOOLS)
    a.budget_minutes = a.budget_minutes or (4.5 if a.quick else 120.0)
    return a


def _matrix_tools(dataset: str, *, quick: bool, grid: str | None) -> list[Tool]:
    procs = (1, 2) if quick else (1, 2, 3, 4)
    threads = (8, 16) if quick else (4, 8, 16, 32)
    chunks: tuple[int | None, ...] = ((8, 64) if quick else (8, 32, 64)) if dataset == "large" else (None,)
    if grid:
        parts = [tuple(int(x) for x in g.split(",")) for g in grid.split(":")]
        procs, threads = parts[0], parts[1]
        chunks = parts[2] if len(parts) > 2 else (None,)
    return [mpupload_variant(processes=p, threads=t, chunksize_mib=c) for c in chunks for p in procs for t in threads]


def _tool_version(tool: Tool, exe: str) -> str:
    flag = {"s5cmd": ["version"], "rclone": ["version"], "aws": ["--version"]}.get(tool.name)
    if not flag:
        return ""
    try:
        r = subprocess.run([exe, *flag], capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def _landed(client, prefix: str) -> tuple[int, int]:
    files = nbytes = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            files += 1
            nbytes += obj["Size"]
    return files, nbytes


def _warm_up(client, ds: Dataset) -> None:
    """The first uploads after a server start are slow (volumes being allocated, for large sets more of
    them): pay that untimed, with a quarter of the data set's bytes (at most 512 MiB)."""
    size = 256 * 1024 if ds.nbytes / max(ds.files, 1) < 8 * 2**20 else 8 * 2**20
    count = max(200, min(ds.nbytes // 4, 512 * 2**20) // size)
    body = os.urandom(size)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: client.put_object(Bucket=BUCKET, Key=f"warmup/{i}", Body=body), range(count)))


def _timeout_for(ds: Dataset, given: float | None, rtt_ms: float | None) -> float:
    # Generous: ~10x the slowest reference tool, so only a hang trips it; over a delayed link, as if
    # every file took a whole round trip on its own.
    return given or 60 + ds.nbytes / 4e6 + ds.files * (0.05 + (rtt_ms or 0) / 1000)


def _one_run(tool: Tool, exe: str, ds: Dataset, server, scratch: Path, *, rnd: int, order: int,
             timeout: float, logs: Path, rtt_ms: float | None) -> dict:
    slug = tool.name.replace(" ", "-")
    at = "" if rtt_ms is None else f"-{rtt_ms:g}ms"
    prefix = f"{ds.spec.name}{at}/{slug}/r{rnd}-{secrets.token_hex(3)}"
    with link(server.endpoint_url, rtt_ms=rtt_ms) as lnk:
        env = clean_env(server.env(), scratch)
        env["AWS_ENDPOINT_URL"] = lnk.url  # a tool that reads it crosses the same link
        inv = tool.build(Target(ds.root, BUCKET, prefix, lnk.url, env), exe)
        m = run_measured(inv.argv, env=inv.env, timeout=timeout, server_pid=server.process.pid,
                         log_path=str(logs / f"{ds.spec.name}{at}-{slug}-r{rnd}.log"))
    files, nbytes = _landed(server.client(), prefix)  # straight to the server: no delay to wait out
    error = ""
    if m.returncode is None:
        error = f"timed out after {timeout:.0f}s"
    elif m.returncode != 0:
        error = f"exit code {m.returncode}: {m.stderr_tail.strip().splitlines()[-1:] or ''}"
    elif (files, nbytes) != (ds.files, ds.nbytes):
        error = f"landed {files} files / {nbytes} bytes of {ds.files} / {ds.nbytes}"
    rec = {"dataset": ds.spec.name, "rtt_ms": rtt_ms, "tool": tool.name, "run": rnd, "order": order, "ok": not error,
           "error": error, "files": ds.files, "bytes": ds.nbytes, "wall_s": m.wall_s, "cpu_s": m.cpu_s,
           "cpu_sampled_s": m.cpu_sampled_s, "server_cpu_s": m.server_cpu_s, "peak_rss": m.peak_rss}
    if lnk.stats:
        rec.update(relay_conns=lnk.stats.get("accepted"), relay_peak_open=lnk.stats.get("peak_open"),
                   relay_cpu_s=lnk.stats.get("cpu_s"))
    if tool.name.startswith("mpupload p"):  # matrix variants: keep the knobs for the plots
        knobs = tool.name.split()[1][1:]
        p_, rest = knobs.split("t")
        t_, _, c_ = rest.partition("c")
        rec.update(processes=int(p_), threads=int(t_), chunk_mib=int(c_) if c_ else None)
    return derive(rec)


def _session(a: argparse.Namespace, tools: list[tuple[Tool, str]], datasets: list[Dataset], *,
             meta: dict, out: Path) -> list[dict]:
    deadline = time.monotonic() + a.budget_minutes * 60
    runs: list[dict] = []
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for di, ds in enumerate(datasets):
        scratch = Path(tempfile.mkdtemp(prefix=f"mpupload-bench-{ds.spec.name}-"))
        server = localserver.start(scratch / "seaweedfs")
        try:
            server.client().create_bucket(Bucket=BUCKET)
            _warm_up(server.client(), ds)
            for rnd, (ri, rtt) in ((r, x) for r in range(a.runs) for x in enumerate(a.rtts)):
                shift = (rnd + di + ri) % len(tools)
                for order, (tool, exe) in enumerate(tools[shift:] + tools[:shift]):
                    if time.monotonic() > deadline:
                        print(f"budget of {a.budget_minutes} min spent: stopping", file=sys.stderr)
                        return runs
                    rec = _one_run(tool, exe, ds, server, scratch, rnd=rnd, order=order, rtt_ms=rtt,
                                   timeout=_timeout_for(ds, a.timeout, rtt), logs=logs)
                    runs.append(rec)
                    at = "" if rtt is None else f"{rtt:g}ms"
                    print(f"{ds.spec.name:6} {at:>5} r{rnd} {tool.name:16} "
                          + (f"{rec['wall_s']:7.2f}s {rec['files_per_s']:7.1f} files/s {rec['mb_per_s']:7.1f} MB/s "
                             f"cpu {rec['cpu_ms_per_file']:6.2f} ms/file {rec['cpu_s_per_gb']:6.2f} s/GB "
                             f"rss {rec['peak_rss_mb']:5.0f} MB" if rec["ok"] else f"FAILED: {rec['error']}"),
                          flush=True)
                    write_all(out, meta=meta, runs=runs)  # partial results survive an interruption
        finally:
            server.stop()
            shutil.rmtree(scratch, ignore_errors=True)
    return runs


def _rewrite(out: Path, *, matrix_dataset: str | None) -> int:
    """Tables and plots again from a session's results.json (after a change to how they are drawn)."""
    saved = json.loads((out / "results.json").read_text())
    rows = write_all(out, meta=saved["meta"], runs=saved["runs"])
    _draw(rows, out, matrix_dataset=matrix_dataset)
    return 0


def _draw(rows: list[dict], out: Path, *, matrix_dataset: str | None) -> None:
    if matrix_dataset:
        plots.matrix(rows, out, dataset=matrix_dataset)
    if any(r.get("rtt_ms") is not None for r in rows):
        plots.wan(rows, out)
    else:
        plots.throughput(rows, out)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    out: Path = a.out
    if a.rewrite:
        return _rewrite(out, matrix_dataset=(a.datasets or "small").split(",")[0] if a.matrix else None)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = a.data or Path(__file__).resolve().parent / "data"
    all_specs = specs(quick=a.quick)
    names = (a.datasets or ("small" if a.matrix else ",".join(DEFAULT))).split(",")
    unknown = [n for n in names if n not in all_specs]
    if unknown:
        print(f"unknown data set(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    wanted = [t.strip() for t in a.tools.split(",") if t.strip()]
    if a.matrix:
        references = [TOOLS[t] for t in ("mpupload", "s5cmd") if t in wanted]
        candidates = _matrix_tools(names[0], quick=a.quick, grid=a.grid) + references
    else:
        if any(t not in TOOLS for t in wanted):
            print(f"unknown tool(s); choose from {', '.join(TOOLS)}", file=sys.stderr)
            return 2
        candidates = [TOOLS[t] for t in wanted]
    tools, skipped = [], []
    for t in candidates:
        exe = t.path()
        if exe is None:
            skipped.append(t.name)
            print(f"skipping {t.name}: not installed (pip install -e '.[bench]')", file=sys.stderr)
        else:
            tools.append((t, exe))
    if not tools:
        print("no tool to run", file=sys.stderr)
        return 2
    datasets = []
    for n in names:
        t0 = time.monotonic()
        datasets.append(ensure(all_specs[n], data_dir))
        print(f"data set {n}: {datasets[-1].files} files, {datasets[-1].nbytes / 1e6:.0f} MB "
              f"({time.monotonic() - t0:.1f}s)", flush=True)
    meta = {
        "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        "runs_per_tool": a.runs, "skipped_tools": skipped,
        "versions": {t.name: _tool_version(t, exe) for t, exe in tools if _tool_version(t, exe)},
        "datasets": {d.spec.name: {"files": d.files, "bytes": d.nbytes} for d in datasets},
        "server": "SeaweedFS weed mini on 127.0.0.1, one bucket, fresh per data set"
                  + ("" if a.rtt is None else "; every run through bench/relay.py (fixed delay, half each way, "
                     "a new connection charged one round trip for the TCP handshake)"),
        "rtts_ms": [r for r in a.rtts if r is not None],
    }
    runs = _session(a, tools, datasets, meta=meta, out=out)
    rows = write_all(out, meta=meta, runs=runs)
    _draw(rows, out, matrix_dataset=names[0] if a.matrix else None)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
