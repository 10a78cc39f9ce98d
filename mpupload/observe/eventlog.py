"""--log-file: one JSON line per file of a run, for the operator's records and for grep / jq afterwards.

    {"event": "start", "time": ..., "run_id": ..., "settings": {...}}
    {"event": "file", "time": ..., "status": "uploaded", "key": ..., "relpath": ..., "size": ..., "reason": "",
     "attempt": 1, "duration": 0.12, "partition": "1920", "parts_reused": 0,
     "etag": ..., "checksum": "CRC32C:...", "version_id": ..., "storage_class": "STANDARD",
     "source_path": "percent-encoded"}     (the audit fields: uploaded files only)
    ... one per file the run found: uploaded, skipped (with the reason, routine skips included) or failed ...
    {"event": "end", "time": ..., "run_id": ..., "exit_code": 0, "summary": {...}}

Written by the coordinator's ledger alone (every outcome passes through it, so no lock and no interleaving),
appended, so the runs of a resumed migration follow one another in one file. Buffered: flushed every
`FLUSH_EVERY` seconds and at the end, so a log on a slow disk costs the run nothing per file; a crash loses
at most those seconds of lines, which the next run's own lines make good. No credentials: settings carry
the AWS profile's name at most.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import asdict
from typing import Any

from mpupload.core.errors import FatalError
from mpupload.core.keys import printable_name
from mpupload.core.messages import SKIPPED, UPLOADED, UploadResult
from mpupload.settings.config import Settings

FLUSH_EVERY = 2.0  # seconds
_BUFFER = 1 << 20


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class EventLog:
    def __init__(self, path: str, *, clock=time.monotonic):
        """Opens (appends to) `path`; OSError when it cannot (the caller makes that a fatal error)."""
        self.path = path
        # A name that is not UTF-8 is shown with its bytes escaped (printable_name, as the ledger and the
        # skips below give it); backslashreplace keeps any other stray surrogate from ending the run.
        self._out = open(path, "a", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115 - closed by close()
                         buffering=_BUFFER)
        self._clock = clock
        self._flushed = clock()
        self.lines = 0
        if _cut_short(self._out.fileno(), path):
            # A run before this one was cut mid-line (a full disk, a kill between two writes of the buffer):
            # this run's lines start on a line of their own, so they are whole JSON whatever came before.
            self._out.write("\n")

    def _write(self, record: dict[str, Any]) -> None:
        self._out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.lines += 1
        if self._clock() - self._flushed >= FLUSH_EVERY:
            self.flush()

    def flush_if_due(self) -> None:
        """The coordinator's tick: lines of a quiet spell reach the disk too."""
        if self._clock() - self._flushed >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self._out.flush()
        self._flushed = self._clock()

    def start(self, s: Settings) -> None:
        self._write({"event": "start", "time": _now(), "run_id": s.run_id,
                     "settings": {k: v for k, v in asdict(s).items() if k != "adaptive"}})
        self.flush()  # the run's first line is there at once: `tail -f` shows the run has begun

    def result(self, r: UploadResult) -> None:
        line = {"event": "file", "time": _now(), "status": r.status, "key": r.key, "relpath": r.rel,
                "size": r.size, "reason": r.reason, "attempt": r.attempts, "duration": round(r.seconds, 4),
                "partition": r.partition, "parts_reused": r.parts_reused}
        if r.status == UPLOADED:
            # The audit trail: what S3 said it stored, and how source-path went into the metadata.
            line.update(etag=r.etag, checksum=r.checksum, version_id=r.version_id, storage_class=r.storage_class,
                        source_path=r.source_path or "percent-encoded")
        self._write(line)

    def skipped(self, reason: str, files: tuple[tuple[str, str, int, str], ...]) -> None:
        """Files the planner skipped without sending them to a worker: (relpath, key, size, partition) each."""
        now = _now()
        for rel, key, size, partition in files:
            self._write({"event": "file", "time": now, "status": SKIPPED, "key": key, "relpath": printable_name(rel),
                         "size": size,
                         "reason": reason, "attempt": 0, "duration": 0.0, "partition": partition,
                         "parts_reused": 0})

    def deleted(self, key: str) -> None:
        """An object --delete removed (no file under SOURCE maps to it)."""
        self._write({"event": "deleted", "time": _now(), "key": key})

    def end(self, *, run_id: str, exit_code: int | None, summary: dict[str, Any]) -> None:
        self._write({"event": "end", "time": _now(), "run_id": run_id, "exit_code": exit_code, "summary": summary})
        self.flush()

    def close(self) -> None:
        self._out.close()


def _cut_short(fd: int, path: str) -> bool:
    """Does the regular file at `path` (open as `fd`) end inside a line? (Not asked of pipes and devices.)"""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return False
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def open_log(s: Settings) -> EventLog | None:
    """The run's log with its start line, or None without --log-file; FatalError when it cannot be written."""
    if not s.log_file:
        return None
    try:
        log = EventLog(s.log_file)
        log.start(s)
    except OSError as exc:
        raise FatalError("log-file", f"cannot write the log file {s.log_file}: {exc}") from None
    return log


def close_log(log: EventLog | None, *, run_id: str, outcome, warn) -> None:
    """The run's last line: its summary and exit code (`outcome` None: the run ended by an error of its own,
    exit_code null). A log that cannot be written now is a warning: the run's outcome is already decided."""
    if log is None:
        return
    from mpupload.observe.summary import summary_dict

    try:
        if outcome is None:
            log.end(run_id=run_id, exit_code=None, summary={})
        else:
            log.end(run_id=run_id, exit_code=outcome.exit_code,
                    summary=summary_dict(outcome.snapshot, interrupted=outcome.interrupted,
                                         fatal=outcome.fatal.message if outcome.fatal else outcome.halted))
        log.close()
    except OSError as exc:
        warn(f"cannot write the log file {log.path}: {exc}")
