"""What a run leaves behind to read later: samples over time and totals per partition, kept by a
`RunRecorder` the coordinator feeds (one sample per progress tick, one call per result, one at the end),
turned into the report's JSON document (runreport.py writes it and draws the page), with the audit trail
of the uploads (what S3 said it stored: totals by storage class and checksum, and the first MAX_OBJECTS
records).

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
from mpupload.observe.sinks import Sink
from mpupload.observe.stats import Snapshot
from mpupload.settings.config import Settings
from mpupload.settings.objects import describe_object_settings

REPORT_FORMAT = 1
# Uploads whose audit record (key, ETag, checksum, version id, storage class) report.json lists: enough for
# a sample or a small job, bounded for ten million files (--log-file keeps every one, streamed to disk).
MAX_OBJECTS = 10_000
NO_PARTITION = "-"  # entries that never got a partition (special files, unreadable names)
OTHER = "other"


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


class RunRecorder:
    def __init__(self, *, settings: Settings, max_samples: int = 720, max_partitions: int = 2000,
                 max_objects: int = MAX_OBJECTS, wall=time.time):
        self.s = settings
        self.started_wall = wall()
        self._wall = wall
        self.max_samples, self.max_partitions = max_samples, max_partitions
        self.samples: list[dict] = []
        self._stride, self._ticks = 1, 0
        self.partitions: dict[str, Counter[str]] = {}
        self.final: Snapshot | None = None
        self.outcome: dict = {}
        self.max_objects = max_objects
        self.objects: list[dict] = []  # the first `max_objects` uploads' audit records
        self.audit: dict[str, Counter[str]] = {"storage_class": Counter(), "checksum": Counter(),
                                               "source_path": Counter()}
        self.uploaded = self.versioned = 0

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
        if r.status == UPLOADED:
            self._audit(r)

    def _audit(self, r: UploadResult) -> None:
        """Totals for every upload; the record itself for the first `max_objects` (--log-file has all)."""
        self.uploaded += 1
        self.versioned += bool(r.version_id)
        self.audit["storage_class"][r.storage_class or "STANDARD"] += 1
        self.audit["checksum"][r.checksum.partition(":")[0] or "none"] += 1
        self.audit["source_path"][r.source_path or "percent-encoded"] += 1
        if len(self.objects) < self.max_objects:
            self.objects.append({"key": r.key, "size": r.size, "etag": r.etag, "checksum": r.checksum,
                                 "version_id": r.version_id, "storage_class": r.storage_class})

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
        from mpupload.observe.summary import summary_dict

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
            "audit": {"uploaded": self.uploaded, "versioned": self.versioned,
                      **{name: dict(c) for name, c in self.audit.items()},
                      "objects_listed": len(self.objects), "objects": self.objects},
            "samples": self.samples,
            "sample_every_ticks": self._stride,
            "settings": settings,
        }


class RecordingSink(Sink):
    """Hands every tick, result and the final snapshot to a RunRecorder: the run report sees exactly what the
    operator's view saw, from the same fan-out."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder

    def progress(self, snap: Snapshot) -> None:
        self.recorder.sample(snap)

    def result(self, r: UploadResult) -> None:
        self.recorder.result(r)

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool,
               fatal: str | None) -> None:
        self.recorder.finish(snap, interrupted=interrupted, fatal=fatal)
