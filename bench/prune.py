#!/usr/bin/env python3
"""What an excluded folder costs a dry run: pruned (not walked) against walked and filtered file by file.

    python bench/prune.py [--excluded 100000] [--data 2000] [--runs 5] [--out bench/results/prune]

Builds, in a temporary folder, a source of `--data` small files in year folders and a `.snapshot` folder of
`--excluded` empty files (100 folders of 1,000, as NAS snapshot folders hold hourly copies), then times
`mpupload upload SOURCE s3://bench/prune --dry-run --exclude '.snapshot/*'` as a user runs it (a fresh
process; no request is sent by a dry run, so no server is needed):
- without: the same source without the .snapshot folder (the floor);
- pruned: with it, excluded by `.snapshot/*` (the folder is not walked);
- walked: with it, excluded by `.snapshot/*.dat` (a glob that names its files: the folder is walked and
  each file dropped one by one; what every --exclude cost before folders were pruned).
Each round runs every variant once in a rotating order (a shared, busy machine); medians over rounds.
--processes and --threads are given, so the autotune's sample walk is not part of what is timed.
The goal (issue 19): pruned - without < 0.25 s for 100,000 excluded files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 0.25


def build(root: Path, *, data: int, excluded: int) -> tuple[Path, Path]:
    """(source with the .snapshot folder, the same source without it): the data files are shared by links."""
    with_snap, without = root / "with", root / "without"
    for src in (with_snap, without):
        for i in range(data):
            folder = src / str(1900 + i % 50)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"page-{i:06}.jp2").write_bytes(b"x" * 100)
    per_folder = 1000
    for i in range(excluded):
        folder = with_snap / ".snapshot" / f"hourly.{i // per_folder:04}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:07}.dat").touch()
    return with_snap, without


def mpupload() -> list[str]:
    script = Path(sys.executable).parent / "mpupload"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mpupload"]


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True)
    took = time.perf_counter() - started
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--excluded", type=int, default=100_000)
    ap.add_argument("--data", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, help="folder for results.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mpupload-prune-") as tmp:
        with_snap, without = build(Path(tmp), data=args.data, excluded=args.excluded)
        common = ["s3://bench/prune", "--dry-run", "--processes", "2", "--threads", "8", "--json"]
        variants = {
            "without": [*mpupload(), "upload", str(without), *common, "--exclude", ".snapshot/*"],
            "pruned": [*mpupload(), "upload", str(with_snap), *common, "--exclude", ".snapshot/*"],
            "walked": [*mpupload(), "upload", str(with_snap), *common, "--exclude", ".snapshot/*.dat"],
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        timed(variants["walked"])  # warm the page cache and the interpreter's bytecode once
        for rnd in range(args.runs):
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                times[name].append(timed(variants[name]))
    med = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "excluded_files": args.excluded, "data_files": args.data, "runs": args.runs,
        "median_seconds": {k: round(v, 3) for k, v in med.items()},
        "pruned_adds_seconds": round(med["pruned"] - med["without"], 3),
        "walked_adds_seconds": round(med["walked"] - med["without"], 3),
        "goal_seconds": GOAL_SECONDS, "met": med["pruned"] - med["without"] < GOAL_SECONDS,
        "times": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
