"""The views of a run on the terminal, each a Sink (observe/sinks.py) fed by the coordinator's main thread, the
one writer to the terminal: a live rich view on a terminal (liveview.py), plain periodic log lines otherwise,
--quiet's summary alone, and JSON lines with --json. make_reporter picks one."""

from __future__ import annotations

import json
import sys
import time
from typing import IO

from mpupload.core.messages import UPLOADED, UploadResult
from mpupload.observe.sinks import RunStart, Sink
from mpupload.observe.stats import Snapshot
from mpupload.observe.summary import summary_dict
from mpupload.ui.text import HumanSummary, progress_line


class PlainReporter(HumanSummary):
    """Log lines every `interval` seconds (not a TTY: a CI log, a nohup file)."""

    def __init__(self, *, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr, interval: float = 10.0):
        self.out, self.err, self.interval = out, err, interval
        self._last = 0.0

    def start(self, run: RunStart) -> None:
        self.err.write(run.text + "\n")
        self.err.flush()

    def progress(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.err.write(time.strftime("%H:%M:%S ") + progress_line(snap) + "\n")
            self.err.flush()


    def warn(self, text: str) -> None:
        self.err.write(f"mpupload: warning: {text}\n")
        self.err.flush()



class QuietReporter(HumanSummary):
    """--quiet: the summary alone (and warnings, on stderr: they say what to fix)."""

    def __init__(self, *, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr):
        self.out, self.err = out, err




    def warn(self, text: str) -> None:
        self.err.write(f"mpupload: warning: {text}\n")
        self.err.flush()



class JsonReporter(Sink):
    """JSON lines on stdout: one event per file not uploaded, periodic progress, a final summary."""

    def __init__(self, *, out: IO[str] = sys.stdout, interval: float = 5.0):
        self.out, self.interval = out, interval
        self._last = 0.0

    def _emit(self, obj: dict) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def start(self, run: RunStart) -> None:
        self._emit({"event": "start", "message": run.text, "source": run.source, "destination": run.destination})

    def progress(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._emit({"event": "progress", "done": snap.done, "found": snap.found_files,
                        "total_files": snap.total_files if snap.total_known else None,
                        "uploaded": snap.uploaded, "skipped": snap.skipped, "failed": snap.failed,
                        "bytes": snap.bytes_uploaded, "bytes_per_s": round(snap.bytes_per_s),
                        "eta_seconds": snap.eta_seconds, "cpu_percent": snap.resources.get("cpu_percent"),
                        "rss": snap.resources.get("rss")})

    def result(self, r: UploadResult) -> None:
        if r.status != UPLOADED:
            self._emit({"event": r.status, "path": r.rel, "key": r.key, "reason": r.reason, "size": r.size})

    def warn(self, text: str) -> None:
        self._emit({"event": "warning", "message": text})

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool, fatal: str | None) -> None:
        self._emit(summary_dict(snap, interrupted=interrupted, fatal=fatal))



def make_reporter(*, json_output: bool, interval: float, quiet: bool = False) -> Sink:
    if json_output:
        return JsonReporter(interval=max(interval, 5.0))
    if quiet:
        return QuietReporter()
    if sys.stderr.isatty():
        from mpupload.ui.liveview import RichReporter  # rich is imported only for a terminal

        return RichReporter()
    return PlainReporter(interval=max(interval, 10.0))
