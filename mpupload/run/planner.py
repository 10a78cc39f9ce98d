"""The planner: source -> tasks -> skip decisions -> batches, in the coordinator's feeder thread.

What a rerun already knows is settled here, without a worker round trip and without a message per file:
the journal is asked about a chunk of keys at once, and unchanged files only add to a count (`Skips`).
For a file the journal does not know, the destination is looked up lazily (listing.py). An object of the
same size whose ETag has no "-" was stored by one PUT, and (without SSE-KMS / SSE-C) that ETag is the MD5
of its bytes: the planner reads the file once, and a matching MD5 is a skip journaled with the file's
xxh3-128, with no HEAD. Only what the listing cannot decide (multipart ETags, an MD5 that differs, which
may be an encrypted object's ETag, a failed listing) goes to a worker, which compares the `xxh3-128`
metadata by HEAD before uploading.

`decide` is pure; `Planner` is tested with a fake journal and a fake destination, without processes.
At ~300 lines it is one concern: source to batches.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Protocol

from mpupload.core.errors import FatalError
from mpupload.core.hashing import xxh3_bytes
from mpupload.core.messages import (
    FAILED,
    SKIP_JOURNAL,
    SKIP_SAME_MD5,
    SKIP_SAME_SIZE,
    SKIPPED,
    Batch,
    Fatal,
    FileTask,
    Notice,
    ScanProgress,
    Skips,
    UploadResult,
    WorkerReport,
)
from mpupload.run.plan import Batcher, key_problem, size_problem, task_for, year_of
from mpupload.s3.listing import UNKNOWN
from mpupload.settings.config import Settings
from mpupload.source.scan import FileEntry, Skipped, open_regular
from mpupload.source.sources import iter_source
from mpupload.state.journal import StoredRow

CHUNK = 512  # keys asked of the journal at once, and files per message to the ledger

# What the planner decided for one file.
UPLOAD = "upload"  # nothing at the key (or something else): send it
CHECK = "check"  # same size at the key, undecided: the worker compares the xxh3-128 metadata (HEAD)
MD5 = "md5"  # same size, single-PUT ETag: compare the file's MD5 here
STORED = "stored"  # the journal says it is there, unchanged
SAME_SIZE = "same-size"  # --skip-existing size


def source_entries(s: Settings) -> Iterator[FileEntry | Skipped]:
    """The one place the source is read: the planner and the census walk this (the folder, or the list of
    --files-from: sources.py)."""
    return iter_source(s)


def count_source(s: Settings, *, on_count: Callable[..., None], stop: threading.Event) -> None:
    """The census: count what the run covers, ahead of the planner, so the progress view has a total and
    an ETA early. Metadata only; an estimate (the planner's own walk reports real trouble)."""
    files = nbytes = 0
    rx = re.compile(s.year_pattern) if s.year_pattern else None
    parts: dict[str, tuple[int, int]] = {}  # partition -> (files, bytes), for the rows of the live view
    try:
        for item in source_entries(s):
            if stop.is_set():
                return
            size = getattr(item, "size", 0)
            files += 1
            nbytes += size
            name = year_of(item.rel, item.mtime_ns, rx) if isinstance(item, FileEntry) else ""
            n, b = parts.get(name, (0, 0))
            parts[name] = (n + 1, b + size)
            if files % 10_000 == 0:
                on_count(files, nbytes, done=False, partitions=dict(parts))
        on_count(files, nbytes, done=True, partitions=parts)
    except Exception:
        return


def is_single_put_etag(etag: str) -> bool:
    return len(etag) == 32 and "-" not in etag


def decide(task: FileTask, *, mode: str, stored: StoredRow | None, remote: tuple[int, str] | None,
           md5_limit: int) -> str:
    """What to do with `task`, from its journal row and what the destination listing holds at its key
    (None: nothing; listing.UNKNOWN: the listing failed)."""
    if mode == "never":
        return UPLOAD
    if stored is not None and (stored.size, stored.mtime_ns, stored.inode) == (task.size, task.mtime_ns, task.inode):
        return STORED
    if remote is None:
        return UPLOAD
    if remote == UNKNOWN:
        return CHECK
    size, etag = remote
    if size != task.size:
        return UPLOAD
    if mode == "size":
        return SAME_SIZE
    if is_single_put_etag(etag) and task.size <= md5_limit:
        return MD5
    return CHECK


def same_bytes_by_md5(task: FileTask, etag: str) -> str | None:
    """The file's xxh3-128 when its bytes hash to `etag` (MD5) and it is unchanged since the scan, else None."""
    try:
        f, st = open_regular(task.path)
        with f:
            data = f.read(task.size + 1)
    except OSError:
        return None  # the worker meets the same trouble and reports it
    if len(data) != task.size or (st.st_size, st.st_mtime_ns) != (task.size, task.mtime_ns):
        return None
    if hashlib.md5(data).hexdigest() != etag:
        return None
    return xxh3_bytes(data)


class JournalReader(Protocol):
    def stored_many(self, keys: list[str]) -> dict[str, StoredRow]: ...
    def count_stored(self) -> int: ...
    def forget_everything_stored(self) -> None: ...
    def close(self) -> None: ...


class Destination(Protocol):
    def is_empty(self) -> bool: ...
    def lookup(self, key: str) -> tuple[int, str] | None: ...
    def close(self) -> None: ...


class Planner:
    def __init__(self, settings: Settings, *, open_journal: Callable[[], JournalReader],
                 open_destination: Callable[[], Destination] | None,
                 entries: Callable[[], Iterator[FileEntry | Skipped]] | None = None):
        """`open_*` run in the planner's own thread (an SQLite connection belongs to one thread).
        `open_destination` None: the destination is never looked at."""
        self.s = settings
        self._open_journal, self._open_destination = open_journal, open_destination
        self._entries = entries or (lambda: source_entries(settings))
        self._rx = re.compile(settings.year_pattern) if settings.year_pattern else None
        self.md5_checked = 0  # files the planner hashed to compare with a single-PUT ETag

    def run(self, *, post: Callable[[object], None], hand_out: Callable[[Batch], bool],
            stop: threading.Event) -> None:
        """Plan the whole source: `post` gets the ledger's messages (found, skips, local results), `hand_out`
        the batches (blocking: backpressure). Never raises: trouble ends the run through a message."""
        journal = destination = None
        try:
            journal = self._open_journal()
            destination = self._destination(journal, post)
            self._plan(journal, destination, post=post, hand_out=hand_out, stop=stop)
        except FatalError as exc:  # e.g. the journal cannot be written
            post(Fatal(worker=-1, kind=exc.kind, message=exc.message))
        except Exception as exc:  # the source vanished, a bug: stop the run with the reason
            post(ScanProgress(files=0, nbytes=0, done=True, error=f"{type(exc).__name__}: {exc}"))
        finally:
            if destination is not None:
                destination.close()
            if journal is not None:
                journal.close()

    def _destination(self, journal: JournalReader, post: Callable[[object], None]) -> Destination | None:
        """The destination, when it can matter: a skip mode that looks at it, and a destination that is not
        empty. An empty one also means the journal's record of stored objects is void."""
        if self.s.skip_existing == "never" or self._open_destination is None:
            return None
        destination = self._open_destination()
        if destination.is_empty():
            destination.close()
            stored = journal.count_stored()
            if stored:
                # The journal remembers objects that are not there (the bucket was emptied, or the endpoint
                # is another server by the same name): trusting it would skip everything and lose it all.
                post(Notice(f"the journal lists {stored} stored objects but the destination is empty: the "
                            "journal was reset and everything is uploaded"))
                journal.forget_everything_stored()
            return None
        if self.s.skip_existing == "journal":
            destination.close()
            return None
        return destination

    def _plan(self, journal: JournalReader, destination: Destination | None, *, post, hand_out, stop) -> None:
        # With --partition-pause, runs of one partition: one pause per year, not one per stray batch.
        batcher = Batcher(max_files=self.s.batch_files, max_bytes=self.s.batch_bytes, group=self.s.partition_pause > 0)
        out = _Outbox(post, itemize=bool(self.s.log_file))
        chunk: list[FileTask] = []
        for item in self._entries():
            if stop.is_set():
                return
            if isinstance(item, Skipped):
                out.found(getattr(item, "size", 0), "")
                # `failed`: two files whose names give one key, a listed file that is missing, ...
                out.local(UploadResult(rel=item.rel, key="", status=FAILED if item.failed else SKIPPED,
                                       reason=item.reason))
                continue
            task = task_for(item, prefix=self.s.prefix, year_pattern=self._rx, key_template=self.s.key_template,
                            normalization=self.s.key_normalization)
            out.found(task.size, task.partition)
            problem = key_problem(task.key) or size_problem(task.size)
            if problem:
                out.local(UploadResult(rel=task.rel, key=task.key, status=FAILED, reason=problem, size=task.size,
                                       partition=task.partition))
                continue
            chunk.append(task)
            if len(chunk) >= CHUNK:
                if not self._settle(chunk, journal, destination, batcher, out, hand_out):
                    return
                chunk = []
        if not self._settle(chunk, journal, destination, batcher, out, hand_out):
            return
        for batch in batcher.flush():
            out.send()  # counts go out before the batch so "found" never trails "done"
            if not hand_out(batch):
                return
        out.send()
        post(ScanProgress(files=0, nbytes=0, done=True))

    def _settle(self, chunk: list[FileTask], journal: JournalReader, destination: Destination | None,
                batcher: Batcher, out: _Outbox, hand_out) -> bool:
        """Decide a chunk of files: skips are counted, the rest batched. False once stopping."""
        mode = self.s.skip_existing
        rows = journal.stored_many([t.key for t in chunk]) if chunk and mode != "never" else {}
        for task in chunk:
            stored = rows.get(task.key)
            remote = None
            if destination is not None and not (stored and _unchanged(stored, task)):
                remote = destination.lookup(task.key)
            verdict = decide(task, mode=mode, stored=stored, remote=remote, md5_limit=self.s.multipart_threshold)
            if verdict == MD5:
                self.md5_checked += 1
                digest = same_bytes_by_md5(task, remote[1])
                if digest is not None:
                    out.skip(SKIP_SAME_MD5, task, stored=(task.key, task.rel, task.size, task.mtime_ns, task.inode,
                                                          digest, remote[1]))
                    continue
                verdict = CHECK  # another file, or an ETag that is not an MD5 (SSE-KMS): the worker decides
            if verdict == STORED:
                out.skip(SKIP_JOURNAL, task)
            elif verdict == SAME_SIZE:
                out.skip(SKIP_SAME_SIZE, task)
            else:
                if verdict == CHECK:
                    task = replace(task, remote_size=task.size)
                for batch in batcher.add(task):
                    out.send()
                    if not hand_out(batch):
                        return False
        out.send()
        return True


def _unchanged(row: StoredRow, task: FileTask) -> bool:
    return (row.size, row.mtime_ns, row.inode) == (task.size, task.mtime_ns, task.inode)


class _Outbox:
    """What the planner tells the ledger, gathered per chunk: counts, not a message per file."""

    def __init__(self, post: Callable[[object], None], *, itemize: bool = False):
        """itemize: name each skipped file too (for --log-file), not only count them."""
        self._post, self._itemize = post, itemize
        self._files = self._bytes = 0
        self._found: dict[str, list[int]] = {}  # partition -> [files, bytes]
        self._local: list[UploadResult] = []
        # (reason, partition) -> [files, bytes, rows to journal, files named]
        self._skips: dict[tuple[str, str], list] = {}

    def found(self, nbytes: int, partition: str) -> None:
        self._files += 1
        self._bytes += nbytes
        counts = self._found.setdefault(partition, [0, 0])
        counts[0] += 1
        counts[1] += nbytes

    def local(self, r: UploadResult) -> None:
        self._local.append(r)

    def skip(self, reason: str, task: FileTask, *, stored: tuple | None = None) -> None:
        entry = self._skips.setdefault((reason, task.partition), [0, 0, [], []])
        entry[0] += 1
        entry[1] += task.size
        if stored is not None:
            entry[2].append(stored)
        if self._itemize:
            entry[3].append((task.rel, task.key, task.size, task.partition))

    def send(self) -> None:
        if self._files or self._bytes:
            self._post(ScanProgress(files=self._files, nbytes=self._bytes,
                                    partitions=tuple((p, n, b) for p, (n, b) in self._found.items())))
            self._files = self._bytes = 0
            self._found = {}
        for (reason, partition), (files, nbytes, rows, named) in self._skips.items():
            self._post(Skips(reason=reason, files=files, nbytes=nbytes, stored=tuple(rows), listed=tuple(named),
                             partition=partition))
        self._skips.clear()
        if self._local:
            self._post(WorkerReport(worker=-1, results=tuple(self._local), bytes_sent=0))
            self._local = []
