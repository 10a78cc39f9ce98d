#!/usr/bin/env python3
"""The Dask path's overhead (issue 12): the same data set through the local pool and through Dask clusters of
the same size on the same machine, in paired rounds.

    PYTHONPATH=. python bench/dask_overhead.py --files 2000 --runs 5 --out bench/results/dask

Variants (each uploads every file to a fresh prefix with a fresh state folder; a run counts only if it exits
0 and every object is listed):
- local:            --processes P (the local worker pool)
- dask-localcluster: --executor dask --processes P (the run starts and stops its own LocalCluster of P worker
                     processes: what `--executor dask` alone costs, cluster start-up included)
- dask-scheduler:   --executor dask --scheduler ADDR (a LocalCluster of P worker processes this script keeps
                     running: the per-batch cost of the Dask path, without the start-up)
Each round runs every variant once, in a rotating order; the verdict is the median over rounds of the ratio
to `local` within a round (the machine is shared: single times mean little). CPU is the process tree's
(wait4), plus, for dask-scheduler, what the kept cluster's worker processes and this script (its scheduler)
spent meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.startup import _env, run_once  # noqa: E402
from mpupload import localserver  # noqa: E402

BUCKET = "dask-overhead"
BASELINE = "local"


def make_files(root: Path, n: int, size: int) -> None:
    rnd = os.urandom(size + n)
    for i in range(n):
        p = root / str(1900 + i % 40) / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd[i:i + size])


def measure(*, files: int, size: int, runs: int, processes: int, threads: int, scratch: Path, echo):
    import psutil
    from distributed import Client, LocalCluster

    src = scratch / "src"
    make_files(src, files, size)
    server = localserver.start(scratch / "seaweedfs")
    # The kept cluster's workers find the credentials as any Dask worker does: in their own environment.
    os.environ.update(_env(server, scratch))
    cluster = LocalCluster(n_workers=processes, threads_per_worker=2, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", memory_limit=0)
    kept = Client(cluster, set_as_default=False)
    worker_pids = list(kept.run(os.getpid).values())
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        base_env = _env(server, scratch)
        common = ["--endpoint-url", server.endpoint_url, "--processes", str(processes), "--threads", str(threads)]
        variants = {
            "local": common,
            "dask-localcluster": [*common, "--executor", "dask"],
            "dask-scheduler": [*common, "--executor", "dask", "--scheduler", cluster.scheduler_address],
        }
        names = list(variants)
        records = []
        load_before = os.getloadavg()[0]
        for rnd in range(-1, runs):  # round -1: unmeasured (first runs after a server start are slower)
            order = names[rnd % len(names):] + names[:rnd % len(names)] if rnd >= 0 else names
            for name in order:
                prefix = f"r{rnd}-{secrets.token_hex(3)}"
                env = {**base_env, "XDG_STATE_HOME": str(scratch / "state" / prefix)}
                argv = [sys.executable, "-m", "mpupload", "upload", str(src), f"s3://{BUCKET}/{prefix}",
                        *variants[name]]
                outside = _cpu([psutil.Process(p) for p in worker_pids]) + time.process_time()
                code, wall, cpu, tail = run_once(argv, env)
                if name == "dask-scheduler":
                    cpu += _cpu([psutil.Process(p) for p in worker_pids]) + time.process_time() - outside
                listed = sum(page.get("KeyCount", 0) for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=BUCKET, Prefix=f"{prefix}/"))
                ok = code == 0 and listed == files
                if rnd < 0:
                    continue
                records.append({"round": rnd, "variant": name, "ok": ok, "exit": code, "wall_s": round(wall, 3),
                                "cpu_s": round(cpu, 3), "error": "" if ok else tail})
                echo(f"round {rnd} {name:<18} {'ok ' if ok else 'BAD'} wall {wall:6.2f} s  cpu {cpu:6.2f} s")
        info = {"command": shlex.join(["python", "bench/dask_overhead.py", *sys.argv[1:]]),
                "files": files, "file_bytes": size, "processes": processes, "threads": threads,
                "dask_threads_per_worker": 2, "runs": runs, "argv": variants,
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                "python": platform.python_version(), "platform": platform.platform(terse=True),
                "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
        return records, info
    finally:
        kept.close()
        cluster.close()
        server.stop()


def _cpu(procs) -> float:
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def summarize(records: list[dict]) -> list[dict]:
    names = list(dict.fromkeys(r["variant"] for r in records))
    base = {r["round"]: r for r in records if r["variant"] == BASELINE and r["ok"]}
    rows = []
    for name in names:
        ok = [r for r in records if r["variant"] == name and r["ok"]]
        row = {"variant": name, "ok_runs": len(ok), "runs": sum(r["variant"] == name for r in records)}
        for m in ("wall_s", "cpu_s"):
            row[f"median_{m}"] = round(statistics.median(r[m] for r in ok), 3) if ok else None
            ratios = [r[m] / base[r["round"]][m] for r in ok if r["round"] in base]
            row[f"{m}_ratio_to_local"] = round(statistics.median(ratios), 3) if ratios else None
        rows.append(row)
    return rows


def write(out: Path, records: list[dict], info: dict, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"info": info, "summary": rows, "runs": records}, indent=1) + "\n")
    lines = [f"# The Dask path's overhead ({info['when']})", "",
             f"`{info['command']}`", "",
             f"{info['files']} files of {info['file_bytes'] // 1024} KiB, {info['processes']} worker processes x "
             f"{info['threads']} threads (Dask: {info['dask_threads_per_worker']} batch tasks per worker process), "
             f"SeaweedFS on the same {info['cpus']}-core machine, {info['runs']} paired rounds in rotating order "
             f"(load average {info['load_average'][0]} before, {info['load_average'][1]} after).", "",
             "| variant | ok runs | median wall s | wall / local (paired median) | median CPU s | CPU / local |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['ok_runs']}/{r['runs']} | {r['median_wall_s']} | {r['wall_s_ratio_to_local']} "
                     f"| {r['median_cpu_s']} | {r['cpu_s_ratio_to_local']} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256 * 1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dask")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mpupload-dask-bench-") as tmp:
        records, info = measure(files=a.files, size=a.size, runs=a.runs, processes=a.processes, threads=a.threads,
                                scratch=Path(tmp), echo=lambda m: print(m, flush=True))
    rows = summarize(records)
    write(a.out, records, info, rows)
    print((a.out / "README.md").read_text())


if __name__ == "__main__":
    main()
