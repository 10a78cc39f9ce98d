"""Scale: N tiny files (default 200,000) through every step a migration takes, against a local SeaweedFS:
dry run, upload, rerun with the journal, rerun without it (a new machine: the destination listing and a
digest check per file), verify of everything, and verify of one year (the memory baseline: verify must
not grow with the number of objects). Wall time, files/s, client CPU and peak RSS of the process tree per
step; a table (results.md, results.json) and a plot (scale.png). The 10-million-file column is a linear
extrapolation of the measured rates, stated as such, not a measurement.

    PYTHONPATH=. python bench/scale.py --files 200000 --out bench/results/scale
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import run_measured

REPO = Path(__file__).resolve().parents[1]
TEN_MILLION = 10_000_000
PER_FOLDER = 500  # files per issue folder: a year of 5,000 is 10 folders, as a newspaper archive has


def make_tree(root: Path, *, files: int, per_year: int) -> None:
    """files tiny files (16-250 bytes), per_year in each year folder; cached: a marker holds the spec."""
    marker = root.with_name(root.name + ".complete")  # beside the tree: inside, it would be uploaded
    spec = json.dumps({"files": files, "per_year": per_year})
    if marker.exists() and marker.read_text() == spec:
        return
    shutil.rmtree(root, ignore_errors=True)
    for i in range(files):
        year, rest = 1900 + i // per_year, i % per_year
        folder = root / str(year) / f"issue-{rest // PER_FOLDER:03d}"
        if rest % PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"page-{rest % PER_FOLDER:04d}.txt").write_bytes(f"{year} {rest}\n".encode() * (1 + i % 16))
    marker.write_text(spec)


def steps(src: Path, dest: str, journal: Path, fresh_journal: Path, first_year: str) -> list[tuple[str, list[str]]]:
    up = ["upload", str(src), dest, "--json", "--progress-interval", "10"]
    return [
        ("dry run", [*up, "--dry-run"]),
        ("upload", [*up, "--journal", str(journal)]),
        ("rerun, journal", [*up, "--journal", str(journal)]),
        ("rerun, no journal", [*up, "--journal", str(fresh_journal)]),
        ("verify all", ["verify", str(src), dest, "--json"]),
        (f"verify {first_year}", ["verify", str(src / first_year), f"{dest}/{first_year}", "--json"]),
    ]


def _summary(log: Path) -> dict:
    for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith("{") and json.loads(line).get("event") in ("summary", "verify_summary", "plan"):
            return json.loads(line)
    return {}


def run(*, files: int, per_year: int, work: Path, out: Path, timeout: float, only: set[str] | None = None,
        bucket: str | None = None) -> list[dict]:
    from mpupload import localserver

    src = work / f"tree-{files}"
    make_tree(src, files=files, per_year=per_year)
    server = localserver.start(work / "server")
    rows = []
    try:
        if bucket is None:
            bucket = f"scale-{int(time.time())}"
            server.client().create_bucket(Bucket=bucket)
        env = {**os.environ, **server.env(), "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(work / "state")}
        state = Path(tempfile.mkdtemp(dir=work, prefix="journals-"))
        for name, args in steps(src, f"s3://{bucket}/archive", state / "j.sqlite", state / "fresh.sqlite", "1900"):
            if only and name not in only:
                continue
            log = out / f"log-{name.replace(' ', '-').replace(',', '')}.txt"
            m = run_measured([sys.executable, "-m", "mpupload", *args, "--endpoint-url", server.endpoint_url],
                             env=env, timeout=timeout, server_pid=server.process.pid, log_path=str(log))
            n = per_year if name.startswith("verify 1") else files
            s = _summary(log)
            rows.append({"step": name, "files": n, "exit": m.returncode, "wall_s": round(m.wall_s, 2),
                         "files_per_s": round(n / m.wall_s, 1), "client_cpu_s": round(m.cpu_s, 1),
                         "server_cpu_s": round(m.server_cpu_s, 1), "peak_rss_mb": round(m.peak_rss / 1e6, 1),
                         "summary": {k: s[k] for k in ("uploaded", "skipped", "failed", "ok", "missing", "extra",
                                                       "match", "files") if k in s}})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    return rows


def write(rows: list[dict], out: Path, *, files: int) -> None:
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    lines = [f"# Scale: {files:,} tiny files, SeaweedFS on 127.0.0.1, 2 shared cores", "",
             "| step | files | exit | wall s | files/s | client CPU s | server CPU s | peak RSS MB | "
             "10M files, extrapolated h |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        # Only steps over the whole tree extrapolate; one year's verify is the memory baseline.
        extra = TEN_MILLION / r["files_per_s"] / 3600 if r["files"] == files else float("nan")
        lines.append(f"| {r['step']} | {r['files']:,} | {r['exit']} | {r['wall_s']} | {r['files_per_s']} | "
                     f"{r['client_cpu_s']} | {r['server_cpu_s']} | {r['peak_rss_mb']} | {extra:.1f} |")
    base = next((r for r in rows if r["step"].startswith("verify 1")), None)
    full = next((r for r in rows if r["step"] == "verify all"), None)
    lines += ["", "The last column is an extrapolation, not a measurement: 10,000,000 / the measured files/s, "
              "assuming the rate holds (the server, not the client, sets it here; a real S3 endpoint scales "
              "differently)."]
    if base and full:
        lines.append(f"Verify memory: {full['peak_rss_mb']} MB for {full['files']:,} objects vs "
                     f"{base['peak_rss_mb']} MB for {base['files']:,} "
                     f"(ratio {full['peak_rss_mb'] / base['peak_rss_mb']:.2f}).")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    _plot(rows, out)


def _plot(rows: list[dict], out: Path) -> None:
    from bench.plots import _pyplot

    plt = _pyplot()
    if plt is None:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8))
    names = [r["step"] for r in rows]
    a.bar(names, [r["files_per_s"] for r in rows], color="tab:orange")
    a.set_ylabel("files/s")
    a.set_yscale("log")
    b.bar(names, [r["peak_rss_mb"] for r in rows], color="tab:blue")
    b.set_ylabel("peak RSS of the process tree, MB")
    for ax in (a, b):
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
    fig.suptitle(f"{rows[0]['files']:,} tiny files: each step of a migration")
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200_000)
    ap.add_argument("--per-year", type=int, default=5_000)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mpupload-scale"),
                    help="where the tree, the server's data and the journals go")
    ap.add_argument("--out", default="bench/results/scale")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--steps", help="only these steps (comma-separated names, e.g. 'verify all,verify 1900')")
    ap.add_argument("--bucket", help="an existing bucket of an earlier session: its server data are kept")
    a = ap.parse_args()
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    if not a.bucket:
        shutil.rmtree(work / "server", ignore_errors=True)
    rows = run(files=a.files, per_year=a.per_year, work=work, out=out, timeout=a.timeout, bucket=a.bucket,
               only=set(a.steps.split(",")) if a.steps else None)
    write(rows, out, files=a.files)


if __name__ == "__main__":
    main()
