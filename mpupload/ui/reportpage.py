"""report.html: one self-contained page drawn from report.json (inline CSS and SVG, no script, no fetch),
to open in any browser or attach to a ticket."""

from __future__ import annotations

from html import escape

from mpupload.core.units import format_size
from mpupload.ui.charts import bar_chart, empty_chart, line_chart

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px;margin-bottom:4px} h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums} .ok{color:#2a7d2a} .bad{color:#b00020}
.muted{color:#666;font-size:12px} .charts svg{display:block;margin:12px 0;max-width:100%;height:auto}
code{background:#f4f4f4;padding:1px 4px}
"""


def _mb(v: float) -> str:
    return f"{v:g}" if v < 10 else f"{v:.0f}"


def _outcome(doc: dict) -> tuple[str, str]:
    run, summ = doc.get("run", {}), doc.get("summary", {})
    if run.get("fatal"):
        return "bad", f"stopped: {run['fatal']}"
    if run.get("interrupted"):
        return "bad", f"interrupted{' by ' + run['signal'] if run.get('signal') else ''}: run the same command again"
    if summ.get("failed") or summ.get("not_done"):
        return "bad", f"{summ.get('failed', 0)} file(s) failed, {summ.get('not_done', 0)} not done"
    return "ok", "every file found was uploaded or skipped"


def _rates(samples: list[dict]) -> list[tuple[float, float]]:
    """MB/s between consecutive samples, from bytes put on the wire: the average over each interval, so a
    thinned-out long run still shows what was sent, not a few instants."""
    out: list[tuple[float, float]] = [(0.0, 0.0)] if samples else []
    samples = [{"t": 0.0, "bytes_sent": 0}, *samples]  # the run starts at zero bytes
    for a, b in zip(samples, samples[1:], strict=False):
        span = b["t"] - a["t"]
        if span > 0:
            out.append((b["t"], max(0, b["bytes_sent"] - a["bytes_sent"]) / span / 1e6))
    return out


def charts(doc: dict) -> list[str]:
    samples = doc.get("samples", [])
    limits = doc.get("limits", {})
    bw = limits.get("max_bandwidth")
    out = [line_chart(title="Throughput over time", unit="MB/s (bytes sent per interval)",
                      series=[("sent", _rates(samples))], limit=bw / 1e6 if bw else None,
                      limit_label=f"--max-bandwidth: {bw / 1e6:.1f} MB/s" if bw else "", fmt=_mb)]
    cpu = [("all processes", [(s["t"], s["cpu_percent"] or 0) for s in samples if s.get("cpu_percent") is not None])]
    names = sorted({n for s in samples for n in (s.get("processes") or {})})
    if 1 < len(names) <= 6:
        cpu += [(n, [(s["t"], (s.get("processes") or {}).get(n) or 0) for s in samples]) for n in names]
    out.append(line_chart(title="CPU over time", unit="% of one core", series=cpu))
    parts = doc.get("partitions", {})
    out.append(bar_chart(title="Files per partition (year)", unit="files",
                         bars=[(p, c.get("files", 0)) for p, c in parts.items()]))
    out.append(bar_chart(title="Bytes per partition (year)", unit="MB",
                         bars=[(p, c.get("bytes", 0) / 1e6) for p, c in parts.items()], fmt=_mb))
    reasons = (doc.get("summary") or {}).get("failures_by_reason") or {}
    if reasons:
        out.append(bar_chart(title="Failure reasons", unit="files", horizontal=True,
                             bars=sorted(reasons.items(), key=lambda kv: -kv[1])[:8]))
    else:
        out.append(empty_chart("Failure reasons", "no failures"))
    return out


def _table(rows: list[tuple], head: tuple[str, ...], numeric: set[int] = frozenset()) -> str:
    th = "".join(f'<th{" class=n" if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{escape(str(v))}</td>'
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render(doc: dict) -> str:
    run, summ = doc.get("run", {}), doc.get("summary", {})
    cls, outcome = _outcome(doc)
    secs = summ.get("seconds") or run.get("seconds") or 0
    key_rows = [
        ("files found", summ.get("found", 0)), ("uploaded", summ.get("uploaded", 0)),
        ("skipped", summ.get("skipped", 0)), ("failed", summ.get("failed", 0)), ("not done", summ.get("not_done", 0)),
        ("bytes uploaded", format_size(summ.get("bytes", 0))), ("bytes skipped", format_size(summ.get("bytes_skipped", 0))),
        ("bytes sent (parts, retries)", format_size(summ.get("bytes_sent", 0))), ("seconds", f"{secs:.1f}"),
        ("files/min", summ.get("files_per_min", 0)), ("MB/s", summ.get("mb_per_s", 0)),
        ("peak RSS", format_size(summ.get("peak_rss", 0))), ("throttles", summ.get("throttles", 0)),
        ("outage holds", summ.get("outages", 0)), ("round trip (ms)", summ.get("latency_ms")),
        ("exit code", run.get("exit_code")),
    ]
    lim = doc.get("limits", {})
    lim_rows = [(k, v) for k, v in lim.items() if v]
    parts = doc.get("partitions", {})
    part_rows = [(p, c.get("files", 0), c.get("uploaded", 0), c.get("skipped", 0), c.get("failed", 0),
                  format_size(c.get("bytes", 0))) for p, c in parts.items()]
    reasons = [(r, n) for r, n in (summ.get("failures_by_reason") or {}).items()]
    skips = [(r, n) for r, n in (summ.get("skips_by_reason") or {}).items()]
    settings = [(k, v) for k, v in sorted((doc.get("settings") or {}).items())]
    title = f"mpupload run {run.get('started_at', '')}: {run.get('source', '')} → {run.get('destination', '')}"
    parts_html = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        # No fetch of any kind: the page must look the same offline, attached to a ticket.
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="{cls}" id="outcome"><b>{escape(outcome)}</b></p>',
        f'<p class="muted">run {escape(str(run.get("run_id", "")))} · {escape(str(run.get("started_at", "")))} to '
        f'{escape(str(run.get("ended_at", "")))} · host {escape(str(run.get("host", "")))} · endpoint '
        f'{escape(str(run.get("endpoint", "")))} · journal <code>{escape(str(run.get("journal", "")))}</code> · '
        f'mpupload {escape(str(doc.get("version", "")))}</p>',
        '<h2>Charts</h2><div class="charts">', *charts(doc), "</div>",
        "<h2>Totals</h2>", _table(key_rows, ("", "value"), {1}),
    ]
    if lim_rows:
        parts_html += ["<h2>Limits</h2>", _table(lim_rows, ("limit", "value"), {1})]
    parts_html += ["<h2>Partitions</h2>",
                   _table(part_rows, ("partition", "files", "uploaded", "skipped", "failed", "bytes"), {1, 2, 3, 4, 5}),
                   "<h2>Failures by reason</h2>", _table(reasons, ("reason", "files"), {1}) if reasons else "<p>none</p>",
                   "<h2>Skips by reason</h2>", _table(skips, ("reason", "files"), {1}) if skips else "<p>none</p>",
                   "<h2>Settings</h2>", _table(settings, ("setting", "value")),
                   f'<p class="muted">command: <code>{escape(" ".join(run.get("command") or []))}</code></p>',
                   "</body></html>"]
    return "\n".join(parts_html)
