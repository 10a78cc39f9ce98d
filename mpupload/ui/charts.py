"""Charts as inline SVG strings, drawn in Python: the run report must open anywhere (a ticket, a laptop
offline), so it fetches nothing and needs no plotting library at run time. Two shapes cover the report:
lines over time and bars by category."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

_W, _H = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 36
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def nice_ticks(top: float, *, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2, 2.5 or 5 times a power of ten apart)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:g}" if abs(v) >= 1 else f"{v:.2g}"


def _frame(title: str, label: str, *, height: int = _H) -> list[str]:
    return [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {_W} {height}" '
            f'width="{_W}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">',
            f'<title>{escape(title)}</title>',
            f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
            f'<text x="{_W - _RIGHT}" y="16" text-anchor="end" fill="#555">{escape(label)}</text>']


def _y_axis(ticks: list[float], y_of: Callable[[float], float], fmt: Callable[[float], str]) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#333">{escape(fmt(t))}</text>')
    return out


def empty_chart(title: str, why: str) -> str:
    """A placeholder with the reason, so the page says why a chart has nothing to show."""
    return "".join(_frame(title, "", height=60) + [f'<text class="empty" x="{_LEFT}" y="42" '
                                         f'fill="#777">{escape(why)}</text>', "</svg>"])


def line_chart(*, title: str, unit: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
               limit: float | None = None, limit_label: str = "limit",
               fmt: Callable[[float], str] = _num) -> str:
    """Lines over time: `series` is (name, [(seconds, value), ...]); `limit` draws a dashed level."""
    points = [p for _, pts in series for p in pts]
    if len(points) < 2:
        return empty_chart(title, "not enough samples (the run was too short)")
    t_max = max(t for t, _ in points) or 1.0
    v_max = max(max(v for _, v in points), limit or 0.0) * 1.05
    ticks = nice_ticks(v_max)
    top = ticks[-1] or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x_of(t: float) -> float:
        return _LEFT + t / t_max * plot_w

    def y_of(v: float) -> float:
        return _TOP + plot_h - v / top * plot_h

    out = _frame(title, unit) + _y_axis(ticks, y_of, fmt)
    for t in nice_ticks(t_max, count=6):
        if t <= t_max:
            x = x_of(t)
            out.append(f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" fill="#333">{_num(t)} s</text>')
    out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_H - _BOTTOM}" y2="{_H - _BOTTOM}" stroke="#999"/>')
    if limit:
        y = y_of(limit)
        out.append(f'<line class="limit" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#d62728" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{_W - _RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#d62728">'
                   f'{escape(limit_label)}</text>')
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in pts)
        out.append(f'<polyline class="series" data-name="{escape(name)}" fill="none" stroke="{color}" '
                   f'stroke-width="1.6" points="{path}"/>')
        lx = _LEFT + 8 + i * 130
        out.append(f'<rect x="{lx}" y="{_H - 14}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="{_H - 5}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(*, title: str, unit: str, bars: Sequence[tuple[str, float]],
              fmt: Callable[[float], str] = _num, horizontal: bool = False) -> str:
    """One bar per category; horizontal for long labels (failure reasons)."""
    if not bars:
        return empty_chart(title, "nothing to show")
    ticks = nice_ticks(max(v for _, v in bars) * 1.05)
    top = ticks[-1] or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    out = _frame(title, unit)
    if horizontal:
        label_w = 260
        row = min(24.0, plot_h / len(bars))
        for i, (name, v) in enumerate(bars):
            y = _TOP + i * row
            w = v / top * (_W - _RIGHT - label_w - 60)
            short = name if len(name) <= 42 else name[:41] + "…"
            out.append(f'<text x="{label_w - 6}" y="{y + row * 0.65:.1f}" text-anchor="end"><title>{escape(name)}</title>'
                       f'{escape(short)}</text>')
            out.append(f'<rect class="bar" x="{label_w}" y="{y + 2:.1f}" width="{max(w, 1):.1f}" '
                       f'height="{row - 4:.1f}" fill="{COLORS[1]}"/>')
            out.append(f'<text x="{label_w + max(w, 1) + 4:.1f}" y="{y + row * 0.65:.1f}">{escape(fmt(v))}</text>')
        out.append("</svg>")
        return "".join(out)

    def y_of(v: float) -> float:
        return _TOP + plot_h - v / top * plot_h

    out += _y_axis(ticks, y_of, fmt)
    slot = plot_w / len(bars)
    label_every = max(1, math.ceil(len(bars) * 40 / plot_w))  # no overlapping labels with 100 years
    for i, (name, v) in enumerate(bars):
        x = _LEFT + i * slot
        y = y_of(v)
        out.append(f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{y:.1f}" width="{max(slot * 0.8, 1):.1f}" '
                   f'height="{_H - _BOTTOM - y:.1f}" fill="{COLORS[0]}"><title>{escape(name)}: {escape(fmt(v))}'
                   f'</title></rect>')
        if i % label_every == 0:
            out.append(f'<text x="{x + slot / 2:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
