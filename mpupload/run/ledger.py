"""The ledger: where every outcome is written down. It takes the messages of the planner and the workers
(results, skips decided by the planner, found counts, notices, fatal conditions) and turns them into the
counts (stats.py), the journal's record of what is stored, the sink (observe/sinks.py) and the failures file.

It runs in the coordinator's main thread only, so it needs no locks; it sends nothing and starts nothing,
so it is tested by feeding it messages.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import IO

from mpupload.core.errors import FatalError
from mpupload.core.keys import has_undecodable, printable_name
from mpupload.core.messages import (
    FAILED,
    SKIPPED,
    UPLOADED,
    Fatal,
    Notice,
    ScanProgress,
    Skips,
    UploadResult,
    WorkerReport,
)
from mpupload.observe.eventlog import EventLog
from mpupload.observe.sinks import Sink
from mpupload.observe.stats import Stats
from mpupload.state.journal import Journal, StoredFile

# Said once per run; --log-file names each file (its "source_path" field).
_SOURCE_PATH_NOTICE = ("some paths do not fit S3's 2 KB of user metadata percent-encoded: their source-path is "
                       "stored as RFC 2047 encoded words (base64 of the UTF-8), or left out where even that does "
                       "not fit (the key names the file); --log-file lists which")


class Ledger:
    def __init__(self, *, journal: Journal, stats: Stats, sink: Sink, source: str = "",
                 failures_file: IO[str] | None = None, log: EventLog | None = None):
        self.journal, self.stats, self.sink = journal, stats, sink
        self.log = log  # --log-file: one line per file, written here alone
        self.source = source
        self.failures_file = failures_file
        self.fatal: FatalError | None = None
        self._noticed: set[str] = set()
        self._to_journal: list[StoredFile] = []

    def take(self, msg) -> bool:
        """Record one message; True when the run must stop (a fatal condition)."""
        if isinstance(msg, WorkerReport):
            self.stats.sent(msg.bytes_sent)
            self.stats.transport_counts(msg.transport)
            if msg.inflight >= 0:
                self.stats.inflight[msg.worker] = msg.inflight
            for r in msg.results:
                self.result(r)
            self.flush()
        elif isinstance(msg, Skips):
            self.stats.skipped_many(msg.reason, files=msg.files, nbytes=msg.nbytes, partition=msg.partition)
            self._to_journal.extend(StoredFile(*row) for row in msg.stored)
            if msg.listed:
                self._logged(lambda log: log.skipped(msg.reason, msg.listed))
            self.flush()
        elif isinstance(msg, ScanProgress):
            self.stats.found(msg.files, msg.nbytes, msg.partitions)
            if msg.done:
                self.stats.scan_done = True
                if msg.error:
                    self._fail(FatalError("scan", f"scanning {self.source} failed: {msg.error}"))
        elif isinstance(msg, Notice):
            self.warn(msg.text)
        elif isinstance(msg, Fatal):
            self._fail(FatalError(msg.kind, msg.message))
        return self.fatal is not None

    def warn(self, text: str) -> None:
        """Every worker process may say the same thing: say it once."""
        if text not in self._noticed:
            self._noticed.add(text)
            self.sink.warn(text)

    def result(self, r: UploadResult) -> None:
        if not r.rel.isascii() and has_undecodable(r.rel):
            # Undecodable bytes of a name (surrogate escapes) would break every writer below: from here on
            # the name is text (byte 0xFF as backslash-x-f-f); the key holds it reversibly (keyorder.py).
            r = replace(r, rel=printable_name(r.rel))
        if r.source_path:
            self.warn(_SOURCE_PATH_NOTICE)
        self.stats.add(r)
        if r.digest and r.status in (UPLOADED, SKIPPED):
            # Only what S3 confirmed (or a digest match proved) goes in the journal.
            self._to_journal.append(StoredFile(key=r.key, rel=r.rel, size=r.size, mtime_ns=r.mtime_ns,
                                               inode=r.inode, digest=r.digest, etag=r.etag))
        self.sink.result(r)
        self._logged(lambda log: log.result(r))
        if r.status == FAILED and self.failures_file is not None:
            self._write_failure(r)

    def _write_failure(self, r: UploadResult) -> None:
        try:
            self.failures_file.write(json.dumps({"path": r.rel, "key": r.key, "reason": r.reason, "size": r.size,
                                                 "attempts": r.attempts}, ensure_ascii=False) + "\n")
            self.failures_file.flush()
        except OSError as exc:
            name = getattr(self.failures_file, "name", "--failures-file")
            self.failures_file = None
            # The list of failures is what the user asked for: without it, stop.
            self._fail(FatalError("failures-file", f"cannot write the failures file {name}: {exc}"))

    def tick(self) -> None:
        self._logged(lambda log: log.flush_if_due())

    def flush_log(self) -> None:
        """The log's buffered lines to disk before the run's outcome is decided: a log that cannot take them
        is fatal like any write of it during the run, not a warning after a run that ended within one flush
        interval (exit 0 with every file line lost)."""
        self._logged(lambda log: log.flush())

    def _logged(self, write) -> None:
        if self.log is None:
            return
        try:
            write(self.log)
        except OSError as exc:
            path, self.log = self.log.path, None
            # The record the user asked for: without it, stop (the rerun resumes).
            self._fail(FatalError("log-file", f"cannot write the log file {path}: {exc}"))

    def _fail(self, exc: FatalError) -> None:
        if self.fatal is None:
            self.fatal = exc

    def flush(self) -> bool:
        """Journal what S3 confirmed, one transaction per message. A journal that cannot be written (disk
        full, read-only) stops the run: False."""
        if not self._to_journal:
            return True
        try:
            self.journal.record_stored(self._to_journal)
        except FatalError as exc:
            self._fail(exc)
            return False
        finally:
            self._to_journal.clear()  # on failure: the next run finds these at the destination
        return True
