"""What a rerun costs: `--dry-run`, the first upload, a rerun with the journal, a rerun with the journal lost
(and the rerun after it, answered by the rebuilt journal) of a tree of many 0-1 KiB files, against a
throwaway SeaweedFS (mpupload/localserver.py).

    python -m bench.rerun --files 200000 --data /tmp/rerun-data

Prints one line per step (wall seconds, files uploaded / skipped, skip reasons) and the journal's bytes per
file; the tree is generated once into --data (never into the repository) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mpupload import localserver  # noqa: E402


def make_tree(root: Path, files: int, *, seed: int = 7) -> None:
    """100 year folders, 250 files per sub-folder, 0-1 KiB each; a `.complete` marker when whole."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(files):
        return
    rng = random.Random(seed)
    per_year = max(1, files // 100)
    for i in range(files):
        d = root / str(1900 + i // per_year % 100) / f"b{i // 250 % 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"p{i:07d}.txt").write_bytes(rng.randbytes(rng.randint(0, 1024)))
    marker.write_text(str(files))


def timed(args: list[str], env: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mpupload", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    summary = next((json.loads(line) for line in done.stdout.splitlines() if '"event": "summary"' in line), {})
    if done.returncode != 0:
        raise SystemExit(f"mpupload {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, summary


def journal_bytes_per_file(state: Path) -> float | None:
    paths = list((state / "mpupload" / "journals").glob("*.sqlite"))
    if not paths:
        return None
    db = sqlite3.connect(paths[0])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = db.execute("SELECT count(*) FROM stored").fetchone()[0]
    db.close()
    return os.path.getsize(paths[0]) / max(1, n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=200_000)
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "mpupload-rerun-data")
    a = p.parse_args(argv)
    tree = a.data / f"tree-{a.files}"
    make_tree(tree, a.files)
    with tempfile.TemporaryDirectory(prefix="mpupload-rerun-") as scratch:
        server = localserver.start(Path(scratch) / "seaweedfs")
        try:
            server.client().create_bucket(Bucket="rerun")
            env = {**os.environ, **server.env(), "XDG_STATE_HOME": str(Path(scratch) / "state")}
            dest = f"s3://rerun/t{a.files}"
            base = ["upload", str(tree), dest, "--endpoint-url", server.endpoint_url]
            steps = [("dry run", [*base, "--dry-run"], None), ("first upload", [*base, "--json"], None),
                     ("rerun, journal", [*base, "--json"], None),
                     ("rerun, journal lost", [*base, "--json"], "lose"), ("rerun, rebuilt journal", [*base, "--json"], None)]
            for name, args, action in steps:
                if action == "lose":
                    env["XDG_STATE_HOME"] = str(Path(scratch) / "state-lost")
                seconds, s = timed(args, env)
                print(f"{name:>24}: {seconds:7.1f} s  uploaded {s.get('uploaded', '-')}  skipped {s.get('skipped', '-')}"
                      f"  {s.get('skips_by_reason', '')}", flush=True)
            print(f"journal: {journal_bytes_per_file(Path(env['XDG_STATE_HOME'])):.0f} bytes per file")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
