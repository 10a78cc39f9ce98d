"""Turning run records into results.json, results.csv and the Markdown table (medians and ratios)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

MB = 1_000_000
CSV_FIELDS = ["dataset", "tool", "run", "order", "ok", "error", "files", "bytes", "wall_s", "files_per_s", "mb_per_s",
              "cpu_s", "cpu_ms_per_file", "cpu_s_per_gb", "cpu_sampled_s", "server_cpu_s", "peak_rss_mb"]


def derive(rec: dict) -> dict:
    """Add rates and per-unit CPU to a raw run record (files, bytes, wall_s, cpu_s, peak_rss)."""
    wall, files, nbytes = rec["wall_s"], rec["files"], rec["bytes"]
    rec["files_per_s"] = files / wall if wall else 0.0
    rec["mb_per_s"] = nbytes / MB / wall if wall else 0.0
    rec["cpu_ms_per_file"] = 1000 * rec["cpu_s"] / files if files else 0.0
    rec["cpu_s_per_gb"] = rec["cpu_s"] / (nbytes / 1e9) if nbytes else 0.0
    rec["peak_rss_mb"] = rec["peak_rss"] / MB
    return rec


_METRICS = ("wall_s", "files_per_s", "mb_per_s", "cpu_ms_per_file", "cpu_s_per_gb", "server_cpu_s", "peak_rss_mb")


TOOL_ORDER = ("mpupload", "mpupload-botocore", "s5cmd", "rclone", "aws", "seed_v2")


def _order(key: tuple[str, str], datasets: list[str]) -> tuple:
    ds, tool = key
    # Tables and plots list tools in one fixed order, whatever order the rotation ran them in.
    return datasets.index(ds), TOOL_ORDER.index(tool) if tool in TOOL_ORDER else len(TOOL_ORDER), tool


def summarize(runs: list[dict]) -> list[dict]:
    """Medians per (dataset, tool) over the successful runs, with throughput and CPU ratios to s5cmd
    and to seed_v2 measured in the same session."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["tool"]), []).append(r)
    datasets = list(dict.fromkeys(ds for ds, _ in groups))
    groups = dict(sorted(groups.items(), key=lambda kv: _order(kv[0], datasets)))
    rows = []
    for (ds, tool), rs in groups.items():
        ok = [r for r in rs if r["ok"]]
        row = {"dataset": ds, "tool": tool, "runs": len(rs), "ok_runs": len(ok)}
        row.update({k: rs[0][k] for k in ("processes", "threads", "chunk_mib") if k in rs[0]})  # matrix knobs
        for m in _METRICS:
            row[m] = statistics.median(r[m] for r in ok) if ok else None
        row["peak_rss_mb_max"] = max((r["peak_rss_mb"] for r in ok), default=None)
        rows.append(row)
    for row in rows:
        for ref in ("s5cmd", "seed_v2"):
            base = next((r for r in rows if r["dataset"] == row["dataset"] and r["tool"] == ref), None)
            ok = base and base["ok_runs"] and row["ok_runs"]
            row[f"x_{ref}"] = row["files_per_s"] / base["files_per_s"] if ok and base["files_per_s"] else None
            row[f"cpu_x_{ref}"] = (row["cpu_ms_per_file"] / base["cpu_ms_per_file"]
                                   if ok and base["cpu_ms_per_file"] else None)
            row[f"px_{ref}"] = _paired(groups, row["dataset"], row["tool"], ref)
    return rows


def _paired(groups: dict, ds: str, tool: str, ref: str) -> float | None:
    """Median over rounds of this tool's throughput over the reference's in the same round. Runs of one
    round are seconds apart, so load from other tenants of the machine hits both: sturdier than a ratio
    of medians when the machine is noisy."""
    mine = {r["run"]: r["files_per_s"] for r in groups.get((ds, tool), []) if r["ok"]}
    theirs = {r["run"]: r["files_per_s"] for r in groups.get((ds, ref), []) if r["ok"]}
    ratios = [mine[k] / theirs[k] for k in mine.keys() & theirs.keys() if theirs[k]]
    return statistics.median(ratios) if ratios else None


def write_all(out: Path, *, meta: dict, runs: list[dict]) -> list[dict]:
    rows = summarize(runs)
    (out / "results.json").write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1))
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in runs:
            w.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    (out / "results.md").write_text(markdown(rows, meta=meta))
    return rows


def _f(v, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def markdown(rows: list[dict], *, meta: dict) -> str:
    lines = [f"Command: `{meta.get('command', '')}`  ", f"{meta.get('when', '')}, {meta.get('machine', '')}; "
             "medians of successful runs; throughput ratios vs s5cmd and seed_v2 from the same session: "
             "'x' = ratio of the medians, 'paired' = median over rounds of the ratio within a round.", ""]
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        info = meta.get("datasets", {}).get(ds, {})
        lines += [f"**{ds}** — {info.get('files', '?')} files, {info.get('bytes', 0) / 1e6:.0f} MB", "",
                  "| tool | ok/runs | wall s | files/s | MB/s | x s5cmd | x s5cmd paired | x seed_v2 | "
                  "x seed_v2 paired | client CPU ms/file | CPU s/GB | CPU x s5cmd | server CPU s | peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["dataset"] == ds):
            fps = ".2f" if (r["files_per_s"] or 0) < 10 else ".0f"  # a few large files: keep the digits
            lines.append(
                f"| {r['tool']} | {r['ok_runs']}/{r['runs']} | {_f(r['wall_s'], '.2f')} | {_f(r['files_per_s'], fps)} | "
                f"{_f(r['mb_per_s'], '.1f')} | {_f(r['x_s5cmd'], '.2f')} | {_f(r['px_s5cmd'], '.2f')} | "
                f"{_f(r['x_seed_v2'], '.2f')} | {_f(r['px_seed_v2'], '.2f')} | "
                f"{_f(r['cpu_ms_per_file'], '.2f')} | {_f(r['cpu_s_per_gb'], '.2f')} | {_f(r['cpu_x_s5cmd'], '.2f')} | "
                f"{_f(r['server_cpu_s'], '.1f')} | {_f(r['peak_rss_mb_max'], '.0f')} |")
        lines.append("")
    skipped = meta.get("skipped_tools")
    if skipped:
        lines.append("Skipped (not installed): " + ", ".join(skipped))
    return "\n".join(lines) + "\n"
