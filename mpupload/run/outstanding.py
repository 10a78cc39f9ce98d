"""The dead-worker bookkeeping both executors share: the files handed out and not yet settled, by batch (what
an executor hands on when a worker dies, and how it knows every batch came back), and the report that fails
what cannot go out again. One for the local pool (supervisor.py) and one for a Dask cluster
(cluster/supervisor.py); neither locks it: its owner holds its own lock around every call."""

from __future__ import annotations

from collections.abc import Iterable

from mpupload.core.messages import FAILED, FileTask, UploadResult, WorkerReport


class Outstanding:
    def __init__(self):
        self._by_batch: dict[int, dict[str, FileTask]] = {}

    def add(self, batch_id: int, tasks: Iterable[FileTask]) -> None:
        self._by_batch[batch_id] = {t.rel: t for t in tasks}

    def settle(self, results: Iterable[UploadResult]) -> None:
        """These files are finished (uploaded, skipped or failed); a batch with none left is complete."""
        for r in results:
            remaining = self._by_batch.get(r.batch_id) if r.batch_id else None
            if remaining is not None:
                remaining.pop(r.rel, None)
                if not remaining:
                    del self._by_batch[r.batch_id]

    def take(self, batch_id: int) -> list[FileTask]:
        """The batch's unsettled files, no longer outstanding here (they go out again, or fail)."""
        return list(self._by_batch.pop(batch_id, {}).values())

    def holds(self, batch_id: int, rel: str) -> bool:
        return rel in self._by_batch.get(batch_id, ())

    def batches(self) -> set[int]:
        return set(self._by_batch)

    def __bool__(self) -> bool:
        return bool(self._by_batch)


def failed_report(tasks: Iterable[FileTask], *, worker: int, reason: str) -> WorkerReport:
    """Files a dead worker left that will not go out again (the worker died too often, or the run stops):
    failed, each with the reason, as one report into the ledger."""
    return WorkerReport(worker=worker, bytes_sent=0, results=tuple(
        UploadResult(rel=t.rel, key=t.key, status=FAILED, size=t.size, partition=t.partition, reason=reason)
        for t in tasks))
