"""The run's progress, written beside its journal for `mpupload status` in another terminal.

The journal holds what is stored, not what is left: only the run knows its census (files and bytes found),
its counts and its rate. So the run that holds the journal's lock writes a small JSON document,
`JOURNAL.progress.json`, every few seconds and once more when it ends: totals, done / skipped / failed,
bytes, a rate history of the last ten minutes, per-partition progress, the last failures, its pid, when it
started and, at the end, how it ended.

Why a file and not a table in the journal: writing it never waits for the journal's write lock (held by the
ledger and by workers around multipart uploads), reading it never touches the journal's WAL, a script reads
it with `jq`, and the journal's schema (which older versions refuse when it is newer) stays as it is.
It is replaced atomically (a reader sees the old document or the new one, never half) and is 0600 like the
journal: it names files."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from mpupload.observe.sinks import Sink
from mpupload.observe.stats import Snapshot
from mpupload.observe.summary import summary_dict

PROGRESS_FORMAT = 1
WRITE_EVERY = 2.0  # seconds between writes while the run goes on
HISTORY_EVERY = 5.0  # seconds between the rate samples kept
HISTORY_SPAN = 600.0  # seconds of rate samples kept: what "the rate over the last minutes" can cover

RUNNING, FINISHED = "running", "finished"


def progress_path(journal: str | os.PathLike) -> Path:
    return Path(f"{journal}.progress.json")


def outcome_of(exit_code: int) -> str:
    if exit_code == 0:
        return "ok"
    if exit_code == 1:
        return "failures"
    if exit_code == 3:
        return "fatal"
    return "interrupted" if exit_code >= 128 else "error"


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp makes it 0600
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_progress(path: str | os.PathLike) -> dict | None:
    """The document, or None when there is none (or it is not one of ours)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "mpupload_progress" in doc else None


class ProgressWriter:
    """Fed the run's snapshots (every progress tick); writes at most every WRITE_EVERY seconds, and at the end."""

    def __init__(self, *, settings, wall=time.time, every: float = WRITE_EVERY):
        self.s = settings
        self.path = progress_path(settings.journal)
        self._wall, self.every = wall, every
        self.started_at = wall()
        self._last_write = float("-inf")
        self._history: deque[tuple[float, int, int, int]] = deque()
        self._latest: tuple[float, int, int, int] | None = None
        self.error: OSError | None = None  # the first write that failed; then it stops trying

    def _sample(self, snap: Snapshot, now: float) -> None:
        row = (round(now, 2), snap.done, snap.bytes_uploaded + snap.bytes_skipped, snap.bytes_sent)
        self._latest = row
        if not self._history or now - self._history[-1][0] >= HISTORY_EVERY:
            self._history.append(row)
        while now - self._history[0][0] > HISTORY_SPAN:
            self._history.popleft()

    def _history_rows(self) -> list[list]:
        """The spaced samples, and the newest one however close it is to the last of them."""
        rows = [list(h) for h in self._history]
        if self._latest is not None and (not rows or self._latest[0] > rows[-1][0]):
            rows.append(list(self._latest))
        return rows

    def update(self, snap: Snapshot) -> None:
        now = self._wall()
        self._sample(snap, now)
        if now - self._last_write >= self.every:
            self._write(self.document(snap, now=now))

    def starting(self) -> None:
        """Before the first snapshot: status can already say which run holds the journal."""
        self._write(self.document(None, now=self._wall()))

    def ended(self, snap: Snapshot, *, exit_code: int, interrupted: str | bool = False,
              fatal: str | None = None) -> None:
        now = self._wall()
        self._sample(snap, now)
        doc = self.document(snap, now=now)
        doc.update(state=FINISHED, finished_at=round(now, 3), exit_code=exit_code, outcome=outcome_of(exit_code),
                   signal=interrupted if isinstance(interrupted, str) else None, message=fatal)
        self._write(doc)

    def document(self, snap: Snapshot | None, *, now: float) -> dict:
        s = self.s
        doc = {
            "mpupload_progress": PROGRESS_FORMAT,
            "state": RUNNING, "pid": os.getpid(), "host": socket.gethostname(), "run_id": s.run_id,
            "started_at": round(self.started_at, 3), "updated_at": round(now, 3), "finished_at": None,
            "exit_code": None, "outcome": None, "signal": None, "message": None,
            "source": s.source, "destination": f"s3://{s.bucket}/{s.prefix}".rstrip("/"),
            "endpoint": s.endpoint_url or "aws", "journal": str(s.journal),
        }
        if snap is None:
            return doc
        res = snap.resources
        doc.update({
            "total": {"files": snap.total_files, "bytes": snap.total_bytes, "known": snap.total_known},
            "found": {"files": snap.found_files, "bytes": snap.found_bytes, "scan_done": snap.scan_done},
            "uploaded": snap.uploaded, "skipped": snap.skipped, "failed": snap.failed,
            "bytes_uploaded": snap.bytes_uploaded, "bytes_skipped": snap.bytes_skipped,
            "bytes_sent": snap.bytes_sent, "retries": snap.retries,
            "throttles": res.get("throttles", 0), "outages": res.get("outages", 0),
            # [wall time, files done, bytes done (uploaded + skipped), bytes sent], oldest first
            "history": self._history_rows(),
            "partitions": [{"name": p.name, "files": p.files, "bytes": p.bytes, "done": p.done,
                            "done_bytes": p.done_bytes, "failed": p.failed, "known": p.known}
                           for p in snap.partitions],
            "recent_failures": [{"path": path, "reason": reason} for path, reason in snap.recent_failures],
            "failures_by_reason": summary_dict(snap)["failures_by_reason"],
        })
        return doc

    def _write(self, doc: dict) -> None:
        if self.error is not None:
            return
        self._last_write = doc["updated_at"]
        try:
            write_atomic(self.path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        except OSError as exc:
            self.error = exc


class ProgressSink(Sink):
    """Feeds every snapshot to a ProgressWriter; says once (through `warn`: the operator's view) when the file
    cannot be written."""

    def __init__(self, writer: ProgressWriter, *, warn: Callable[[str], None]):
        self.writer, self._warn = writer, warn
        self._warned = False

    def _check(self) -> None:
        if self.writer.error is not None and not self._warned:
            self._warned = True
            self._warn(f"cannot write {self.writer.path} ({self.writer.error.strerror or self.writer.error}): "
                       "`mpupload status` will not see this run's progress; the upload goes on")

    def start(self, run) -> None:
        self._check()

    def progress(self, snap: Snapshot) -> None:
        self.writer.update(snap)
        self._check()
