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


_PEER_COLORS = ("tab:blue", "tab:green", "tab:olive", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
                "tab:cyan")


def wan(rows: list[dict], out: Path) -> Path | None:
    """Per data set: median files/s against the round trip added, one line per tool."""
    plt = _pyplot()
    if plt is None:
        return None
    rs = [r for r in rows if r.get("rtt_ms") is not None and r["ok_runs"]]
    datasets = list(dict.fromkeys(r["dataset"] for r in rs))
    if not datasets:
        return None
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.4 * len(datasets), 4.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        metric, label = ("mb_per_s", "MB/s") if ds == "large" else ("files_per_s", "files/s")
        peers, colors = iter(_PEER_COLORS), {}
        for tool in dict.fromkeys(r["tool"] for r in rs if r["dataset"] == ds):
            line = sorted((r for r in rs if r["dataset"] == ds and r["tool"] == tool), key=lambda r: r["rtt_ms"])
            mine = tool.startswith("mpupload")
            base = tool.split("-")[0]
            if base not in colors:
                colors[base] = "tab:orange" if mine else next(peers, "black")
            # mpupload stands out in orange; one colour per peer, its tuned run dashed.
            ax.plot([r["rtt_ms"] for r in line], [r[metric] for r in line], marker="o", label=tool,
                    linewidth=2.5 if mine else 1.3, color=colors[base],
                    linestyle="--" if tool.endswith("-tuned") else "-")
        ticks = sorted({r["rtt_ms"] for r in rs if r["dataset"] == ds})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("round trip added (ms)")
        ax.set_ylabel(f"{label} (median)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{ds} through bench/relay.py")
    fig.tight_layout()
    path = out / "wan.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
