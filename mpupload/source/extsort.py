"""Sorting more records than memory should hold: runs of at most `RUN_RECORDS` sorted in memory and
written to a temporary folder, then merged a `FAN_IN` at a time. Input that is already in order (an S3
listing) or nearly so (a server that lists folder by folder) is written once, as long runs: a sorted
chunk that starts at or after the end of the current run is appended to it instead of starting a new one.

Records are bytes without NUL (the separator on disk). The files live until the process exits.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

RUN_RECORDS = 50_000  # ~10 MB of records in memory while sorting; 10 million make 200 runs at most
FAN_IN = 128  # runs merged at once (open files); 128 x 128 runs are 800 million records
_BLOCK = 1 << 20

_tmpdir: str | None = None


def _temp_dir() -> str:
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="mpupload-sort-")
        atexit.register(shutil.rmtree, _tmpdir, True)
    return _tmpdir


def _new_run() -> tuple[str, Any]:
    fd, name = tempfile.mkstemp(dir=_temp_dir(), suffix=".run")
    return name, os.fdopen(fd, "wb")


def _write(records: Iterable[bytes]) -> str:
    name, f = _new_run()
    with f:
        for rec in records:
            f.write(rec + b"\0")
    return name


def read(name: str) -> Iterator[bytes]:
    """The records of a file written here, in order."""
    with open(name, "rb") as f:
        tail = b""
        while block := f.read(_BLOCK):
            *recs, tail = (tail + block).split(b"\0")
            yield from recs


def sort_to_file(records: Iterable[bytes], *, key: Callable[[bytes], Any]) -> str:
    """A temporary file holding `records` sorted by `key` (stable within a run, not across runs)."""
    runs: list[str] = []
    current, last = None, None
    records = iter(records)
    try:
        while chunk := list(itertools.islice(records, RUN_RECORDS)):
            chunk.sort(key=key)  # timsort: linear on input already in order
            first = key(chunk[0])
            if current is None or first < last:
                if current is not None:
                    current.close()
                name, current = _new_run()
                runs.append(name)
            for rec in chunk:
                current.write(rec + b"\0")
            last = key(chunk[-1])
    finally:
        if current is not None:
            current.close()
    if not runs:
        return _write(())
    while len(runs) > 1:
        merged = [_write(heapq.merge(*map(read, group), key=key))
                  for group in (runs[i:i + FAN_IN] for i in range(0, len(runs), FAN_IN))]
        for name in runs:
            os.unlink(name)
        runs = merged
    return runs[0]
