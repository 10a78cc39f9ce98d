"""PNG plots of a bench session. matplotlib is optional: without it the bench still writes its tables."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def throughput(rows: list[dict], out: Path) -> Path | None:
    """One panel per dataset: median throughput per tool (files/s; MB/s for the large set)."""
    plt = _pyplot()
    if plt is None:
        return None
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        rs = [r for r in rows if r["dataset"] == ds and r["ok_runs"]]
        metric, label = ("mb_per_s", "MB/s") if ds == "large" else ("files_per_s", "files/s")
        names = [r["tool"] for r in rs]
        vals = [r[metric] for r in rs]
        colors = ["tab:orange" if n.startswith("mpupload") else "tab:blue" for n in names]
        ax.bar(names, vals, color=colors)
        ax.set_title(f"{ds} (median)")
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=35)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    path = out / "throughput.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def matrix(rows: list[dict], out: Path, *, dataset: str) -> Path | None:
    """Throughput and client CPU against processes x threads (one line per process count / chunk size)."""
    plt = _pyplot()
    if plt is None:
        return None
    rs = [r for r in rows if r["dataset"] == dataset and r.get("processes") and r["ok_runs"]]
    if not rs:
        return None
    metric, label = ("mb_per_s", "MB/s") if dataset == "large" else ("files_per_s", "files/s")
    cpu, cpu_label = ("cpu_s_per_gb", "client CPU s/GB") if dataset == "large" else ("cpu_ms_per_file", "client CPU ms/file")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key in sorted({(r["processes"], r.get("chunk_mib")) for r in rs}, key=lambda k: (k[0], k[1] or 0)):
        line = sorted((r for r in rs if (r["processes"], r.get("chunk_mib")) == key), key=lambda r: r["threads"])
        name = f"{key[0]} proc" + (f", {key[1]} MiB parts" if key[1] else "")
        a1.plot([r["threads"] for r in line], [r[metric] for r in line], marker="o", label=name)
        a2.plot([r["threads"] for r in line], [r[cpu] for r in line], marker="o", label=name)
    ticks = sorted({r["threads"] for r in rs})
    for ax, yl in ((a1, label), (a2, cpu_label)):
        ax.set_xlabel("threads per process")
        ax.set_ylabel(yl)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])  # 8, 16 rather than 2^3, 2^4
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    fig.suptitle(f"mpupload processes x threads on {dataset} (medians)")
    fig.tight_layout()
    path = out / f"matrix-{dataset}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
