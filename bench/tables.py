"""The Markdown of a bench session: per setting (data set, round trip) a table of every measure, and over
a delayed link first the WAN table (throughput, paired ratio to s5cmd at its defaults and client CPU per
file, at each round trip side by side)."""

from __future__ import annotations

WAN_REF = "s5cmd-default"


def _f(v, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _rtt(rtt: float | None) -> str:
    return "direct" if rtt is None else f"{rtt:g} ms"


def markdown(rows: list[dict], *, meta: dict) -> str:
    refs = [ref for ref in ("s5cmd", "s5cmd-default", "seed_v2") if any(r["tool"] == ref for r in rows)]
    lines = [f"Command: `{meta.get('command', '')}`  ", f"{meta.get('when', '')}, {meta.get('machine', '')}; "
             f"medians of successful runs; throughput ratios vs {', '.join(refs) or 'the references'} from the same "
             "session (and round trip): 'x' = ratio of the medians, 'paired' = median over rounds of the ratio "
             "within a round.", ""]
    if any(r.get("rtt_ms") is not None for r in rows):
        lines += wan(rows, meta=meta)
    settings = list(dict.fromkeys((r["dataset"], r.get("rtt_ms")) for r in rows))
    for ds, rtt in settings:
        lines += _detail(ds, rtt, [r for r in rows if (r["dataset"], r.get("rtt_ms")) == (ds, rtt)], meta=meta,
                         refs=refs)
    skipped = meta.get("skipped_tools")
    if skipped:
        lines.append("Skipped (not installed): " + ", ".join(skipped))
    return "\n".join(lines) + "\n"


def _dataset_line(ds: str, meta: dict) -> str:
    info = meta.get("datasets", {}).get(ds, {})
    return f"**{ds}** — {info.get('files', '?')} files, {info.get('bytes', 0) / 1e6:.0f} MB"


def _detail(ds: str, rtt: float | None, rows: list[dict], *, meta: dict, refs: list[str]) -> list[str]:
    relayed = rtt is not None
    head = ["tool", "ok/runs", "wall s", "files/s", "MB/s"]
    for ref in refs:
        head += [f"x {ref}", f"x {ref} paired"]
    head += ["client CPU ms/file", "CPU s/GB", *([f"CPU x {refs[0]}"] if refs else []), "server CPU s", "peak RSS MB"]
    if relayed:
        head += ["connections", "relay CPU s"]
    title = _dataset_line(ds, meta) + (f", {_rtt(rtt)} round trip added (bench/relay.py)" if relayed else "")
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        fps = ".2f" if (r["files_per_s"] or 0) < 10 else ".0f"  # a few large files: keep the digits
        cells = [r["tool"], f"{r['ok_runs']}/{r['runs']}", _f(r["wall_s"], ".2f"), _f(r["files_per_s"], fps),
                 _f(r["mb_per_s"], ".1f")]
        for ref in refs:
            k = ref.replace("-", "_")
            cells += [_f(r.get(f"x_{k}"), ".2f"), _f(r.get(f"px_{k}"), ".2f")]
        cells += [_f(r["cpu_ms_per_file"], ".2f"), _f(r["cpu_s_per_gb"], ".2f")]
        if refs:
            cells.append(_f(r.get(f"cpu_x_{refs[0].replace('-', '_')}"), ".2f"))
        cells += [_f(r["server_cpu_s"], ".1f"),
                  _f(r["peak_rss_mb_max"], ".0f")]
        if relayed:
            cells += [_f(r.get("relay_conns"), ".0f"), _f(r.get("relay_cpu_s"), ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def wan(rows: list[dict], *, meta: dict) -> list[str]:
    """Per data set: one row per tool, and for each round trip its median files/s, the paired ratio to
    s5cmd at its defaults, client CPU ms per file and the connections it opened (median per run)."""
    lines: list[str] = []
    for ds in dict.fromkeys(r["dataset"] for r in rows if r.get("rtt_ms") is not None):
        mine = [r for r in rows if r["dataset"] == ds]
        rtts = sorted({r.get("rtt_ms") for r in mine}, key=lambda x: -1 if x is None else x)  # "direct" first
        tools = list(dict.fromkeys(r["tool"] for r in mine))
        head = ["tool"]
        for rtt in rtts:
            head += [f"{_rtt(rtt)}: files/s", f"x {WAN_REF}", "CPU ms/file", "conns"]
        lines += [f"### WAN table — {_dataset_line(ds, meta)}, round trip added by bench/relay.py", "",
                  f"x {WAN_REF} = paired ratio (median over rounds of the ratio within a round); CPU = client "
                  "CPU per file (whole process tree); conns = connections opened per run (median).", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        key = f"px_{WAN_REF.replace('-', '_')}"
        for tool in tools:
            cells = [tool]
            for rtt in rtts:
                r = next((x for x in mine if x["tool"] == tool and x.get("rtt_ms") == rtt), None)
                if r is None or not r["ok_runs"]:
                    cells += ["—" if r is None else f"failed {r['runs'] - r['ok_runs']}/{r['runs']}", "—", "—", "—"]
                    continue
                fps = _f(r["files_per_s"], ".0f") + ("" if r["ok_runs"] == r["runs"] else f" ({r['ok_runs']}/{r['runs']} ok)")
                cells += [fps, _f(r.get(key), ".2f"), _f(r["cpu_ms_per_file"], ".2f"), _f(r.get("relay_conns"), ".0f")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines
