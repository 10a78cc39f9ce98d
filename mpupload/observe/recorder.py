"""What a run leaves behind to read later: samples over time and totals per partition, kept by a
`RunRecorder` the coordinator feeds (one sample per progress tick, one call per result, one at the end),
turned into the report's JSON document (runreport.py writes it and draws the page).

Memory is bounded whatever the run's length: samples are thinned (every other one dropped, and from then
on only every second tick kept) when they pass `max_samples`, and partitions past `max_partitions` are
counted together under "other"."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from dataclasses import asdict

from mpupload.core.messages import FAILED, SKIPPED, UPLOADED, UploadResult
from mpupload.observe.stats import Snapshot
from mpupload.settings.config import Settings
from mpupload.settings.objects import describe_object_settings

REPORT_FORMAT = 1
NO_PARTITION = "-"  # entries that never got a partition (special files, unreadable names)
OTHER = "other"


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


class RunRecorder:
    def __init__(self, *, settings: Settings, max_samples: int = 720, max_partitions: int = 2000,
                 wall=time.time):
        self.s = settings
        self.started_wall = wall()
        self._wall = wall
        self.max_samples, self.max_partitions = max_samples, max_partitions
        self.samples: list[dict] = []
        self._stride, self._ticks = 1, 0
        self.partitions: dict[str, Counter[str]] = {}
        self.final: Snapshot | None = None
        self.outcome: dict = {}

    # -- what the coordinator feeds -----------------------------------------------------------------------
    def sample(self, snap: Snapshot) -> None:
        """One progress tick. Cheap: most ticks of a long run are thinned away."""
        self._ticks += 1
        if self._ticks % self._stride:
            return
        self.samples.append(self._row(snap))
        if len(self.samples) > self.max_samples:
            self.samples = self.samples[::2]
            self._stride *= 2

    def result(self, r: UploadResult) -> None:
        name = r.partition or NO_PARTITION
        if name not in self.partitions and len(self.partitions) >= self.max_partitions:
            name = OTHER
        c = self.partitions.setdefault(name, Counter())
        c["files"] += 1
        c[r.status] += 1
        c["bytes"] += r.size
        if r.status in (UPLOADED, SKIPPED, FAILED):
            c[f"bytes_{r.status}"] += r.size

    def finish(self, snap: Snapshot, *, interrupted: str | bool = False, fatal: str | None = None) -> None:
        self.final = snap
        if not self.samples or self.samples[-1]["t"] < round(snap.elapsed, 2):
            self.samples.append(self._row(snap))
        self.outcome = {"interrupted": bool(interrupted),
                        "signal": interrupted if isinstance(interrupted, str) else None, "fatal": fatal}

    # -- the document --------------------------------------------------------------------------------------
    @staticmethod
    def _row(snap: Snapshot) -> dict:
        res = snap.resources
        return {
            "t": round(snap.elapsed, 2), "done": snap.done, "uploaded": snap.uploaded, "skipped": snap.skipped,
            "failed": snap.failed, "bytes_uploaded": snap.bytes_uploaded, "bytes_skipped": snap.bytes_skipped,
            "bytes_sent": snap.bytes_sent, "bytes_per_s": round(snap.bytes_per_s),
            "files_per_min": round(snap.files_per_min, 1), "cpu_percent": res.get("cpu_percent"),
            "rss": res.get("rss"), "net_sent_per_s": round(res.get("net_sent_per_s") or 0),
            "throttles": res.get("throttles"), "outages": res.get("outages"),
            "inflight_limit": res.get("inflight_limit"), "limit_waits": res.get("limit_waits"),
            "processes": {name: p.get("cpu_percent") for name, p in (res.get("processes") or {}).items()},
        }

    def document(self, *, exit_code: int | None = None, summary: dict | None = None) -> dict:
        """The report as plain JSON values."""
        from mpupload import __version__
        from mpupload.ui.printers import summary_dict

        snap = self.final
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.s).items()}
        dest = f"s3://{self.s.bucket}/{self.s.prefix}".rstrip("/")
        ended = self._wall()
        return {
            "mpupload_report": REPORT_FORMAT,
            "version": __version__,
            "run": {
                "run_id": self.s.run_id, "started_at": _iso(self.started_wall), "ended_at": _iso(ended),
                "seconds": round(snap.elapsed, 3) if snap else round(ended - self.started_wall, 3),
                "source": self.s.source, "destination": dest, "endpoint": self.s.endpoint_url or "aws",
                "journal": self.s.journal, "command": sys.argv[:1] + [a for a in sys.argv[1:]],
                "host": socket.gethostname(), "pid": os.getpid(), "exit_code": exit_code, **self.outcome,
            },
            "summary": summary if summary is not None else (summary_dict(snap) if snap else {}),
            "limits": {"max_bandwidth": getattr(self.s, "max_bandwidth", None),
                       "max_requests_per_second": getattr(self.s, "max_requests_per_second", None),
                       "partition_pause": getattr(self.s, "partition_pause", None)},
            # What every object carried (an SSE-C key only as "set"): the settings a migration signs off.
            "object_settings": describe_object_settings(self.s),
            "partitions": {p: dict(c) for p, c in sorted(self.partitions.items())},
            "samples": self.samples,
            "sample_every_ticks": self._stride,
            "settings": settings,
        }


class RecordingReporter:
    """A Reporter that hands every tick, result and the final snapshot to a RunRecorder as well as to the
    view it wraps: the run report sees exactly what the user saw, with no second feed to keep in step."""

    def __init__(self, inner, recorder: RunRecorder):
        self.inner, self.recorder = inner, recorder

    @property
    def redraw_every(self) -> float | None:
        return getattr(self.inner, "redraw_every", None)

    def start(self, text: str) -> None:
        self.inner.start(text)

    def progress(self, snap: Snapshot) -> None:
        self.recorder.sample(snap)
        self.inner.progress(snap)

    def result(self, r: UploadResult) -> None:
        self.recorder.result(r)
        self.inner.result(r)

    def warn(self, text: str) -> None:
        self.inner.warn(text)

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool,
               fatal: str | None) -> None:
        self.recorder.finish(snap, interrupted=interrupted, fatal=fatal)
        self.inner.finish(snap, failures, interrupted=interrupted, fatal=fatal)

    def close(self) -> None:
        self.inner.close()
