"""Turning run records into results.json, results.csv and the Markdown table (medians and ratios)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from bench.tables import markdown

MB = 1_000_000
CSV_FIELDS = ["dataset", "rtt_ms", "tool", "run", "order", "ok", "error", "files", "bytes", "wall_s", "files_per_s",
              "mb_per_s", "cpu_s", "cpu_ms_per_file", "cpu_s_per_gb", "cpu_sampled_s", "server_cpu_s", "peak_rss_mb",
              "relay_conns", "relay_peak_open", "relay_cpu_s"]


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
_RELAY_METRICS = ("relay_conns", "relay_peak_open", "relay_cpu_s")  # only in runs through bench/relay.py


TOOL_ORDER = ("mpupload", "mpupload-botocore", "s5cmd", "s5cmd-default", "rclone", "rclone-default", "rclone-tuned",
              "aws", "aws-tuned", "seed_v2")
# Ratios are to these, when the session ran them; "s5cmd-default" is the WAN table's reference.
REFS = ("s5cmd", "s5cmd-default", "seed_v2")


def ref_key(ref: str) -> str:
    return ref.replace("-", "_")


def _order(key: tuple[str, float | None, str], datasets: list[str]) -> tuple:
    ds, rtt, tool = key
    # Tables and plots list tools in one fixed order, whatever order the rotation ran them in.
    return (datasets.index(ds), -1 if rtt is None else rtt,
            TOOL_ORDER.index(tool) if tool in TOOL_ORDER else len(TOOL_ORDER), tool)


def summarize(runs: list[dict]) -> list[dict]:
    """Medians per (dataset, round trip, tool) over the successful runs, with throughput and CPU ratios
    to the reference tools measured in the same session at the same round trip."""
    groups: dict[tuple[str, float | None, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r.get("rtt_ms"), r["tool"]), []).append(r)
    datasets = list(dict.fromkeys(ds for ds, _, _ in groups))
    groups = dict(sorted(groups.items(), key=lambda kv: _order(kv[0], datasets)))
    rows = []
    for (ds, rtt, tool), rs in groups.items():
        ok = [r for r in rs if r["ok"]]
        row = {"dataset": ds, "rtt_ms": rtt, "tool": tool, "runs": len(rs), "ok_runs": len(ok)}
        row.update({k: rs[0][k] for k in ("processes", "threads", "chunk_mib") if k in rs[0]})  # matrix knobs
        for m in _METRICS:
            row[m] = statistics.median(r[m] for r in ok) if ok else None
        for m in _RELAY_METRICS:
            vals = [r[m] for r in ok if r.get(m) is not None]
            row[m] = statistics.median(vals) if vals else None
        row["peak_rss_mb_max"] = max((r["peak_rss_mb"] for r in ok), default=None)
        rows.append(row)
    for row in rows:
        for ref in REFS:
            base = next((r for r in rows if (r["dataset"], r["rtt_ms"], r["tool"]) == (row["dataset"], row["rtt_ms"], ref)),
                        None)
            ok = base and base["ok_runs"] and row["ok_runs"]
            k = ref_key(ref)
            row[f"x_{k}"] = row["files_per_s"] / base["files_per_s"] if ok and base["files_per_s"] else None
            row[f"cpu_x_{k}"] = (row["cpu_ms_per_file"] / base["cpu_ms_per_file"]
                                 if ok and base["cpu_ms_per_file"] else None)
            row[f"px_{k}"] = _paired(groups, (row["dataset"], row["rtt_ms"]), row["tool"], ref)
    return rows


def _paired(groups: dict, setting: tuple[str, float | None], tool: str, ref: str) -> float | None:
    """Median over rounds of this tool's throughput over the reference's in the same round. Runs of one
    round are seconds apart, so load from other tenants of the machine hits both: sturdier than a ratio
    of medians when the machine is noisy."""
    mine = {r["run"]: r["files_per_s"] for r in groups.get((*setting, tool), []) if r["ok"]}
    theirs = {r["run"]: r["files_per_s"] for r in groups.get((*setting, ref), []) if r["ok"]}
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
