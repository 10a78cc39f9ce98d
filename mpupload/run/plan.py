"""Pure planning: which partition (year) a file belongs to, what its object key is, and how files are cut
into batches.

Why batches in one shared queue rather than whole years per worker: years are very uneven (a 1945 folder
may hold ten times a 1921 one), so a static year-to-worker assignment leaves workers idle at the end.
Each batch holds files of one year (so a worker's connections and the listing it may need stay on one
prefix), is capped in files and bytes, and any idle worker takes the next one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from mpupload.core.keys import DEFAULT_TEMPLATE, normalize
from mpupload.core.keys import render as render_key
from mpupload.core.messages import Batch, FileTask
from mpupload.core.s3limits import key_problem  # noqa: F401 - planner, dry run and tests import it from here
from mpupload.core.units import format_size
from mpupload.settings.config import MAX_OBJECT_SIZE
from mpupload.source.scan import FileEntry

YEAR_MIN, YEAR_MAX = 1800, 2100
_YEAR_DIR = re.compile(r"^\d{4}$")


def year_of(rel: str, mtime_ns: int, year_pattern: re.Pattern | None = None) -> str:
    """Partition key: the first folder named like a plausible year, else the pattern's first group,
    else the year of the file's mtime (UTC)."""
    for part in rel.split("/")[:-1]:
        if _YEAR_DIR.match(part) and YEAR_MIN <= int(part) <= YEAR_MAX:
            return part
    if year_pattern is not None:
        m = year_pattern.search(rel)
        if m and m.group(1) and m.group(1).isdigit() and YEAR_MIN <= int(m.group(1)) <= YEAR_MAX:
            return m.group(1)
    return str(time.gmtime(mtime_ns / 1e9).tm_year)


def object_key(prefix: str, rel: str) -> str:
    """PREFIX/rel, with no doubled or leading slash."""
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


def size_problem(size: int) -> str | None:
    """Why a file of `size` bytes cannot be one S3 object, or None. Decided before any hashing or request:
    a 6 TiB file would otherwise be hashed for hours and then refused at CompleteMultipartUpload.
    (10,000 parts of at most 5 GiB hold more than 5 TiB, so the object limit is the only one that bites.)"""
    if size > MAX_OBJECT_SIZE:
        return f"file is {format_size(size)}; S3 objects can be at most {format_size(MAX_OBJECT_SIZE)}"
    return None


@dataclass
class _Pending:
    tasks: list[FileTask]
    size: int = 0


class Batcher:
    """Groups tasks by partition into batches capped at `max_files` files and `max_bytes` bytes."""

    def __init__(self, *, max_files: int, max_bytes: int, group: bool = False):
        """group: hand out a partition's partly filled batch as soon as a file of another partition comes,
        so batches leave in runs of one partition (for --partition-pause) instead of the leftovers of
        every partition at the end."""
        self.max_files, self.max_bytes, self.group = max_files, max_bytes, group
        self._pending: dict[str, _Pending] = {}
        self._next_id = 0
        self._last: str | None = None

    def add(self, task: FileTask) -> Iterator[Batch]:
        """Add one task; yields a batch when its partition's batch is full."""
        if self.group and task.partition != self._last:
            self._last = task.partition
            for other in [k for k in self._pending if k != task.partition]:
                yield self._make(other, self._pending.pop(other).tasks)
        p = self._pending.setdefault(task.partition, _Pending([]))
        p.tasks.append(task)
        p.size += task.size
        if len(p.tasks) >= self.max_files or p.size >= self.max_bytes:
            del self._pending[task.partition]
            yield self._make(task.partition, p.tasks)

    def flush(self) -> Iterator[Batch]:
        """Every partly filled batch, in partition order."""
        for partition in sorted(self._pending):
            yield self._make(partition, self._pending[partition].tasks)
        self._pending.clear()

    def _make(self, partition: str, tasks: list[FileTask]) -> Batch:
        self._next_id += 1
        return Batch(batch_id=self._next_id, partition=partition, tasks=tuple(tasks))


def task_for(entry: FileEntry, *, prefix: str, year_pattern: re.Pattern | None,
             key_template: str = DEFAULT_TEMPLATE, normalization: str = "nfc") -> FileTask:
    """The task for one file. Its key is NFC-normalised unless `normalization` is "none" (keyorder.py) and
    laid out by `key_template` (keys.py); its `rel` (and the source-path metadata) keeps the name as it is
    on disk."""
    year = year_of(entry.rel, entry.mtime_ns, year_pattern)
    rel = normalize(entry.rel, normalization)
    key = object_key(prefix, rel) if key_template == DEFAULT_TEMPLATE else \
        render_key(key_template, prefix=prefix, year=year, rel=rel)
    return FileTask(path=entry.path, rel=entry.rel, key=key, size=entry.size, mtime_ns=entry.mtime_ns,
                    inode=entry.inode, partition=year)
