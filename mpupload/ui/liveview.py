"""The live view on a terminal: one frame drawn from a Snapshot, laid out for the terminal's width and height.

    mpupload  0:42  2 processes  s3://archive/atlanta
    ━━━━━━━━━━━━━━━━━━━━━━━━━━──────────────  61%  1834/3000 files  1.2 GiB/2.0 GiB
    812 files/min  11.9 MB/s (now 12.4, run 10.8)  ETA 1:06
    up 1790  skipped 40  failed 4  retries 2  left 1166 files, 0.8 GiB
    1921 ━━━━━━━━━━━━━──────  340/500  120.1 MiB/200.0 MiB
    ... one row per partition, those under way first; "+7 more: 5 done, 2 waiting"
    coordinator 12% 81.2 MiB  worker-1 96% 112.0 MiB  worker-2 91% 110.3 MiB
    net 12.6 MB/s  in flight 31 (<=16/process)  throttles 0  outage holds 0  requests lean 1790 botocore 3 declined 0
    failed 1950/x.jp2: SlowDown: ...

Every line is cut to the width (never wrapped), the partition rows to what fits the height, so the frame
stays readable from 80 columns to 200. Drawing happens only when the coordinator's main thread asks (no
refresh thread of rich's own): the one writer to the terminal.
"""

from __future__ import annotations

import sys
from collections import deque

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.text import Text

from mpupload.core.messages import ROUTINE_SKIPS, UPLOADED, UploadResult
from mpupload.core.units import format_size
from mpupload.observe.sinks import RunStart
from mpupload.observe.stats import PartitionRow, Snapshot, busiest_first
from mpupload.ui.text import HumanSummary, eta_text, printable

REDRAW_EVERY = 0.25  # seconds: a steady 4 frames a second
_NOW_SPAN = 2.0  # seconds the "now" rate covers (the smoothed one covers stats' 10 s window)
_LIVE_LINES = 50  # per-file lines printed above the frame; the summary lists them all
_FAILURES_SHOWN = 3
_MIN_PARTITION_ROWS = 2


def _mb(bps: float) -> str:
    return f"{bps / 1e6:.1f}"


def _bar(fraction: float, width: int) -> Text:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return Text.assemble(("━" * filled, "green"), ("─" * (width - filled), "grey37"))


def _fit(text: Text | str, width: int) -> Text:
    t = Text(text) if isinstance(text, str) else text
    t.no_wrap = True
    t.truncate(width, overflow="ellipsis")
    return t


def _flow(tokens: list[str], width: int) -> list[str]:
    """Tokens packed into lines of at most `width` (a token longer than that is cut by _fit)."""
    lines: list[str] = []
    for token in tokens:
        if lines and len(lines[-1]) + 2 + len(token) <= width:
            lines[-1] += "  " + token
        else:
            lines.append(token)
    return lines


class Frame:
    """One frame: a rich renderable that lays itself out for the console's size when drawn."""

    def __init__(self, snap: Snapshot, *, now_rate: float, title: str, spinner: str = ""):
        self.snap, self.now_rate, self.title, self.spinner = snap, now_rate, title, spinner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or console.size.height
        yield Group(*(_fit(line, width) for line in self.lines(width=width, height=height)))

    # -- the parts -----------------------------------------------------------------------------------------
    def lines(self, *, width: int, height: int) -> list[Text | str]:
        head = [self._header(), self._overall(width), self._rates(), self._counts()]
        tail = self._resources(width) + self._failures()
        room = max(_MIN_PARTITION_ROWS, height - len(head) - len(tail) - 1)  # -1: the cursor's line
        return head + self._partitions(width, room) + tail

    def _header(self) -> Text:
        s = self.snap
        return Text.assemble(("mpupload", "bold"), f" {self.spinner} {eta_text(s.elapsed)}  ", self.title)

    def _overall(self, width: int) -> Text:
        s = self.snap
        total = f"{s.total_files}" + ("" if s.total_known else "+")
        done_bytes = s.bytes_uploaded + s.bytes_skipped
        fraction = done_bytes / s.total_bytes if s.total_bytes else (s.done / s.total_files if s.total_files else 0)
        pct = f"{fraction * 100:3.0f}%" if s.total_known else "  ?%"
        right = f" {pct}  {s.done}/{total} files  {format_size(done_bytes)}/{format_size(s.total_bytes)}"
        bar_width = max(10, min(60, width - len(right) - 1))
        return _bar(fraction if s.total_known else 0.0, bar_width) + Text(right)

    def _rates(self) -> str:
        s = self.snap
        run = s.bytes_uploaded / s.elapsed if s.elapsed > 0 else 0.0
        return (f"{s.files_per_min:.0f} files/min  {_mb(s.bytes_per_s)} MB/s (now {_mb(self.now_rate)}, "
                f"run {_mb(run)})  ETA {eta_text(s.eta_seconds)}")

    def _counts(self) -> str:
        s = self.snap
        left_files = max(0, s.total_files - s.done)
        left_bytes = max(0, s.total_bytes - s.bytes_uploaded - s.bytes_skipped)
        more = "" if s.total_known else "+"
        return (f"up {s.uploaded}  skipped {s.skipped}  failed {s.failed}  retries {s.retries}  "
                f"left {left_files}{more} files, {format_size(left_bytes)}{more}")

    def _partitions(self, width: int, room: int) -> list[Text | str]:
        rows = busiest_first(self.snap.partitions)
        if not rows:
            return []
        shown = rows if len(rows) <= room else rows[:room - 1]
        name_w = max(4, *(len(r.name or "-") for r in shown))
        rights = [self._partition_counts(r) for r in shown]
        bar_width = max(5, min(40, width - name_w - 1 - max(len(t) for t in rights)))  # one width: bars align
        out: list[Text | str] = [self._partition(r, right, name_w, bar_width) for r, right in zip(shown, rights, strict=True)]
        hidden = rows[len(shown):]
        if hidden:
            complete = sum(r.complete for r in hidden)
            waiting = sum(not r.started for r in hidden)
            out.append(f"+{len(hidden)} more partitions: {len(hidden) - complete - waiting} under way, "
                       f"{waiting} waiting, {complete} done")
        return out

    @staticmethod
    def _partition_counts(r: PartitionRow) -> str:
        total = f"{r.files}" + ("" if r.known else "+")
        right = f"  {r.done}/{total}  {format_size(r.done_bytes)}/{format_size(r.bytes)}"
        return right + (f"  {r.failed} failed" if r.failed else "")

    @staticmethod
    def _partition(r: PartitionRow, right: str, name_w: int, bar_width: int) -> Text:
        fraction = r.done_bytes / r.bytes if r.bytes else (r.done / r.files if r.files else 1.0)
        name = Text(f"{(r.name or '-'):<{name_w}} ", style="bold" if r.started and not r.complete else "")
        return name + _bar(fraction if r.known or r.started else 0.0, bar_width) + Text(right)

    def _resources(self, width: int) -> list[Text | str]:
        s = self.snap
        res = s.resources
        procs = [f"{name} {p.get('cpu_percent', 0):.0f}% {format_size(p.get('rss', 0))}"
                 for name, p in (res.get("processes") or {}).items()]
        limit = res.get("inflight_limit")
        req = s.transport
        link = [f"net {_mb(res.get('net_sent_per_s', 0))} MB/s",
                f"in flight {res.get('inflight_now', 0)} (<={limit}/process)" if limit else "in flight ?",
                f"throttles {res.get('throttles', 0)}", f"outage holds {res.get('outages', 0)}"]
        if res.get("limit_waits"):
            link.append(f"limit waits {res.get('limit_waits')}")
        link.append(f"requests lean {req.lean} botocore {req.botocore} declined {sum(req.declined.values())}")
        return _flow(procs, width) + _flow(link, width)

    def _failures(self) -> list[Text | str]:
        out: list[Text | str] = []
        for path, reason in list(self.snap.recent_failures)[-_FAILURES_SHOWN:]:
            out.append(Text.assemble(("failed ", "red"), f"{printable(path)}: {printable(reason)}"))
        return out


class RichReporter(HumanSummary):
    """The live view: a frame redrawn in place every REDRAW_EVERY seconds by the coordinator's main thread,
    the files that need a look printed above it, and a last frame left on screen before the summary."""

    redraw_every = REDRAW_EVERY
    _SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, *, out=sys.stdout, console: Console | None = None):
        from rich.live import Live

        self.out = out
        self.console = console or Console(file=sys.stderr)
        self._live = Live(console=self.console, auto_refresh=False, transient=False, redirect_stdout=False,
                          redirect_stderr=False)
        self._title = ""
        self._recent: deque[tuple[float, int]] = deque()  # (elapsed, bytes sent) for the "now" rate
        self._frames = 0
        self._shown = 0
        self._started = False
        self._last: Snapshot | None = None

    def start(self, run: RunStart) -> None:
        self.console.print(run.text, markup=False, highlight=False)
        self._title = f"{run.destination}  {run.pool}, {run.concurrency}"  # the frame's title
        self._live.start()
        self._started = True

    def _now_rate(self, snap: Snapshot) -> float:
        self._recent.append((snap.elapsed, snap.bytes_sent))
        while len(self._recent) > 2 and snap.elapsed - self._recent[0][0] > _NOW_SPAN:
            self._recent.popleft()
        t0, b0 = self._recent[0]
        return (snap.bytes_sent - b0) / (snap.elapsed - t0) if snap.elapsed - t0 > 0.2 else 0.0

    def frame(self, snap: Snapshot) -> Frame:
        self._frames += 1
        return Frame(snap, now_rate=self._now_rate(snap), title=self._title,
                     spinner=self._SPINNER[self._frames % len(self._SPINNER)])

    def progress(self, snap: Snapshot) -> None:
        self._last = snap
        if self._started:
            self._live.update(self.frame(snap), refresh=True)

    def result(self, r: UploadResult) -> None:
        # Lines for what needs a look (failures, odd entries), not for routine skips, and bounded.
        if r.status == UPLOADED or not r.reason or r.reason in ROUTINE_SKIPS:
            return
        self._shown += 1
        if self._shown > _LIVE_LINES:
            if self._shown == _LIVE_LINES + 1:
                self.console.print(f"(more than {_LIVE_LINES} files need a look: the summary lists them)")
            return
        from rich.markup import escape

        # A file may be named "[/x]": escaped, or rich would read it as markup (and raise).
        self.console.print(f"[{'red' if r.status == 'failed' else 'yellow'}]{r.status}[/] "
                           f"{escape(printable(r.rel))}: {escape(printable(r.reason))}", markup=True, highlight=False)

    def warn(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]warning:[/] {escape(text)}", markup=True, highlight=False)

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool, fatal: str | None) -> None:
        self.progress(snap)  # the last frame shows the final counts
        super().finish(snap, failures, interrupted=interrupted, fatal=fatal)

    def close(self) -> None:
        if self._started:
            self._live.stop()
            self._started = False
