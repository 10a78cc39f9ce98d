"""What a worker says back: results and byte counts batched into one WorkerReport per flush (by count or
by time, so that ~4 messages a second per worker cross the process boundary, not one per file)."""

from __future__ import annotations

import threading
import time

from mpupload.core.messages import Notice, UploadResult, WorkerReport

FLUSH_SECONDS = 0.25  # results cross the process boundary at most ~4 times a second per worker
_FLUSH_COUNT = 256


class ResultSender:
    """Collects results and byte counts from the upload threads; sends them as one message per flush."""

    def __init__(self, out, worker_id: int):
        self._out, self._worker = out, worker_id
        self.counters = None  # a callable giving the transport's counts since the last call
        self.inflight = None  # a callable giving the files in flight now (WorkerKit's gate)
        self._inflight_said = -1
        self._lock = threading.Lock()
        self._results: list[UploadResult] = []
        self._bytes = 0
        self._last = time.monotonic()

    def add(self, result: UploadResult) -> None:
        with self._lock:
            self._results.append(result)
            due = len(self._results) >= _FLUSH_COUNT
        if due:
            self.flush()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            results, sent = tuple(self._results), self._bytes
            self._results, self._bytes = [], 0
            self._last = time.monotonic()
        counts = self.counters() if self.counters is not None else ()
        inflight = self.inflight() if self.inflight is not None else -1
        if results or sent or counts or inflight != self._inflight_said:
            self._inflight_said = inflight
            self._out.put(WorkerReport(worker=self._worker, results=results, bytes_sent=sent, transport=counts,
                                       inflight=inflight))

    def notice(self, text: str) -> None:
        """A line for the user, drawn by the coordinator's one writer (which says each text once)."""
        self._out.put(Notice(text))
