"""Multipart upload ids on a Dask run. A Dask worker may run on a machine where the journal is not (and
SQLite must not be shared over a network filesystem anyway), so the coordinator alone writes the journal:

- what a task needs to resume, the coordinator reads from its journal and sends with the batch (the
  in-progress upload of each large file); a batch handed out again after a worker died carries what the
  dead worker journaled meanwhile, since its messages came first on the same queue;
- what the multipart uploader writes (an upload started, a part stored, resumed, ended, aborted) goes to the coordinator
  as a `JournalOp` message, sent synchronously before the uploader goes on (a create is announced before
  it is made, as locally), and the coordinator applies it to the journal.

Stored files are journaled as on one machine, by the ledger, from the results: only what S3 confirmed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

from mpupload.core.messages import FileTask, JournalOp
from mpupload.state.journal import Journal, MultipartRow, PartRecord

# The journal methods a worker may ask the coordinator to call: nothing else crosses.
RELAYED = frozenset({"upload_started", "part_stored", "upload_resumed", "upload_ended", "upload_aborted"})


def rows_for(journal: Journal, tasks: Iterable[FileTask], *, threshold: int) -> tuple[MultipartRow, ...]:
    """The journaled in-progress uploads of a batch's large files (small files never have one)."""
    rows = []
    for task in tasks:
        if task.size >= threshold:
            row = journal.upload_in_progress(task.key)
            if row is not None:
                rows.append(row)
    return tuple(rows)


def apply(journal: Journal, op: JournalOp) -> None:
    """In the coordinator: one relayed write."""
    if op.op not in RELAYED:
        raise ValueError(f"not a relayed journal write: {op.op}")
    getattr(journal, op.op)(*op.args)


class RelayedJournal:
    """The multipart uploader's journal in a Dask worker process: reads from the rows the batches brought
    (kept per process and run, updated by its own writes), writes to the coordinator through `send`."""

    def __init__(self, send: Callable[[object], None]):
        self._send = send
        self._rows: dict[str, MultipartRow] = {}
        self._lock = threading.Lock()

    def learn(self, rows: Iterable[MultipartRow]) -> None:
        """A batch's rows: the coordinator's journal when it handed the batch out."""
        with self._lock:
            for row in rows:
                self._rows[row.key] = row

    def upload_in_progress(self, key: str) -> MultipartRow | None:
        with self._lock:
            return self._rows.get(key)

    def upload_started(self, m: MultipartRow) -> None:
        self._send(JournalOp("upload_started", (m,)))
        with self._lock:
            self._rows[m.key] = m

    def part_stored(self, key: str, upload_id: str, part: PartRecord) -> None:
        self._send(JournalOp("part_stored", (key, upload_id, part)))
        with self._lock:
            row = self._rows.get(key)
            if row is not None and row.upload_id == upload_id:
                kept = tuple(p for p in row.parts if p.number != part.number)
                self._rows[key] = replace(row, parts=tuple(sorted((*kept, part))))

    def upload_resumed(self, key: str, run_id: str) -> None:
        self._send(JournalOp("upload_resumed", (key, run_id)))

    def upload_ended(self, key: str, upload_id: str) -> None:
        self._send(JournalOp("upload_ended", (key, upload_id)))
        with self._lock:
            row = self._rows.get(key)
            if row is not None and row.upload_id == upload_id:
                del self._rows[key]

    def upload_aborted(self, key: str, upload_id: str) -> None:
        self._send(JournalOp("upload_aborted", (key, upload_id)))
