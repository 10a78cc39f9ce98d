"""`mpupload verify`: prove the destination matches the source.

For every local file: the object exists, has the same size, and its `xxh3-128` metadata equals the file's
current digest (`--mode metadata`, the default). `--mode checksum` also compares the checksum S3 keeps for the
object (HEAD with checksum mode: a FULL_OBJECT CRC64NVME of mpupload's multipart uploads, a single PUT's
checksum, or a composite recomputed from the part sizes; storedsum.py) with the file's, which proves the bytes
without downloading them. `--deep` (`--mode deep`) downloads every object (streaming, in parallel across
processes) and hashes the bytes themselves. Both catch an object changed behind our back with its metadata
kept. Objects under the prefix that no local file accounts for are reported as extra.

Memory does not grow with the number of objects: the source comes out in S3's key order (sources.py,
keys.py), the listing is put in that same order on disk (extsort.py: written once when the server lists
in S3's order, as S3 does; SeaweedFS lists folder by folder), and the two are merged like two sorted
files, neither held. Objects to check go to the pool in chunks, a bounded number in flight, and findings
are written as they come; only their counts are kept.

With --key-template the keys are the template's (`{year}/{name}`), as the upload laid them out; they come in
another order than the walk, so the (key, file) pairs are sorted on disk before the merge.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import IO

from mpupload.commands.verifycheck import (
    CHECKSUM,
    ERROR,
    EXTRA,
    METADATA_ONLY,
    MISSING,
    OK,
    SIZE,
    Finding,
    check_chunk,
    init_pool_process,
    init_process,
)
from mpupload.core.keys import DEFAULT_TEMPLATE, normalize, printable_name
from mpupload.core.shard import Shard
from mpupload.run.plan import object_key, task_for
from mpupload.run.spawning import can_fork, warm_up
from mpupload.s3.client import make_client
from mpupload.s3.listing import sorted_listing
from mpupload.s3.probekeys import is_probe
from mpupload.settings.config import Settings
from mpupload.source import extsort
from mpupload.source.filters import Filtered, Filters
from mpupload.source.scan import FileEntry, Skipped
from mpupload.source.sources import iter_source

_CHUNK = 64  # objects per task sent to a pool process, at least (4 x its threads: the tail of a chunk idles)
_IN_FLIGHT = 2  # chunks per pool process queued or running: keeps every process busy, memory bounded


def _ready() -> None:
    """A pool process's first task: none (it starts the processes)."""


class _Checks:
    """HEADs (and --deep downloads) in chunks of `_CHUNK`: in this process for a job of one chunk or with
    --processes 0, else in a spawned pool with at most `_IN_FLIGHT` chunks per process outstanding."""

    def __init__(self, s: Settings, *, mode: str):
        self.s, self.mode = s, mode
        self.nproc = 0 if s.processes == 0 else s.effective_processes
        self.chunk: list[tuple[str, str, str, int]] = []
        self.held: list[tuple[str, str, str, int]] | None = None  # a job of one chunk needs no pool
        self.pool: ProcessPoolExecutor | None = None
        self.running: set[Future] = set()
        self.ready_here = False
        if self.nproc and can_fork():
            # Forked now, while this process has one thread (run/spawning.py): each pool process inherits boto3
            # and the S3 model instead of importing them afresh, and sets up its client and route while the
            # walk and the listing go on here. (Spawned later otherwise, once a job proves bigger than a chunk.)
            warm_up(s)
            self.pool = ProcessPoolExecutor(max_workers=self.nproc, mp_context=mp.get_context("fork"),
                                            initializer=init_pool_process, initargs=(s,))
            self.pool.submit(_ready)  # a fork context starts every process at the first submit: now

    def add(self, item: tuple[str, str, str, int]) -> list[Finding]:
        """Queue one (rel, path, key, size); returns the findings of chunks that finished meanwhile."""
        self.chunk.append(item)
        if len(self.chunk) < max(_CHUNK, 4 * self.s.threads):
            return []
        chunk, self.chunk = self.chunk, []
        if not self.nproc:
            return self._here(chunk)
        if self.pool is None:
            if self.held is None:
                self.held = chunk
                return []
            self.pool = ProcessPoolExecutor(max_workers=self.nproc, mp_context=mp.get_context("spawn"),
                                            initializer=init_pool_process, initargs=(self.s,))
            self._submit(self.held)
            self.held = None
        self._submit(chunk)
        return self._collect(most=_IN_FLIGHT * self.nproc - 1)

    def finish(self) -> list[Finding]:
        """Check what is left and wait for every chunk."""
        rest = [c for c in (self.held, self.chunk) if c]
        self.held, self.chunk = None, []
        if self.pool is None:
            return [f for c in rest for f in self._here(c)]
        for c in rest:
            self._submit(c)
        return self._collect(most=0)

    def close(self, *, wait: bool = True) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)

    def _submit(self, chunk: list[tuple[str, str, str, int]]) -> None:
        self.running.add(self.pool.submit(check_chunk, self.s.bucket, chunk, self.mode, self.s.threads))

    def _collect(self, *, most: int) -> list[Finding]:
        """Wait until at most `most` chunks are outstanding."""
        found: list[Finding] = []
        while len(self.running) > most:
            done, self.running = wait(self.running, return_when=FIRST_COMPLETED)
            for fut in done:
                found.extend(fut.result())
        return found

    def _here(self, chunk: list[tuple[str, str, str, int]]) -> list[Finding]:
        if not self.ready_here:
            init_process(self.s)
            self.ready_here = True
        return check_chunk(self.s.bucket, chunk, self.mode, self.s.threads)


class _Output:
    """Writes each problem as it is found (human lines or JSON lines) and counts every finding."""

    def __init__(self, out: IO[str], *, json_output: bool):
        self.out, self.json_output = out, json_output
        self.counts: Counter[str] = Counter()

    def add(self, found: Iterator[Finding] | list[Finding]) -> None:
        for f in found:
            self.counts[f.status] += 1
            if f.status in (OK, METADATA_ONLY):  # the latter are counted, and said once in the summary
                continue
            f = Finding(f.status, printable_name(f.path), f.key, f.detail)  # undecodable bytes as text
            if self.json_output:
                self.out.write(json.dumps({"event": f.status, "path": f.path, "key": f.key, "detail": f.detail},
                                          ensure_ascii=False) + "\n")
            else:
                self.out.write(f"{f.status:18} {f.key or f.path}: {f.detail}\n")

    def summary(self, *, mode: str) -> None:
        c = self.counts
        match = set(c) <= {OK, METADATA_ONLY}
        ok = c[OK] + c[METADATA_ONLY]
        if self.json_output:
            self.out.write(json.dumps({"event": "verify_summary", "mode": mode, "deep": mode == "deep", "ok": ok,
                                       "metadata_only": c[METADATA_ONLY], "missing": c[MISSING],
                                       "size_mismatch": c[SIZE], "checksum_mismatch": c[CHECKSUM],
                                       "extra": c[EXTRA], "errors": c[ERROR], "match": match}) + "\n")
            return
        how = {"deep": "deep: bytes hashed",
               "checksum": "checksums S3 keeps compared with the files'; --deep hashes the bytes",
               "metadata": "metadata checked; --mode checksum compares S3's checksums, --deep hashes the bytes"}[mode]
        self.out.write(f"{'MATCH' if match else 'MISMATCH'}: {ok} ok, {c[MISSING]} missing, {c[SIZE]} size "
                       f"mismatches, {c[CHECKSUM]} checksum mismatches, {c[EXTRA]} extra, {c[ERROR]} errors ({how}).\n")
        if c[METADATA_ONLY]:
            self.out.write(f"{c[METADATA_ONLY]} of them carry no checksum S3 keeps that could be compared (written "
                           "without one, or a composite whose part sizes are unknown): checked by metadata only.\n")


def _keyed_source(s: Settings, filters: Filters) -> Iterator[tuple[str, FileEntry | Filtered] | Finding]:
    """(key, file) in S3's key order, and findings for files the upload reports failed. With the default
    layout the walk is already in key order; a --key-template (`{year}/{name}`) puts keys in another order
    than their paths, so the pairs are sorted on disk first (extsort.py: memory stays flat). Files a size,
    age or file-system filter left out come as (key, Filtered): their objects are not extra."""
    if s.key_template == DEFAULT_TEMPLATE:
        for item in iter_source(s, filters=filters):
            if isinstance(item, Skipped):
                if item.failed:  # the upload reported it failed: not at the destination under its own key
                    yield Finding(ERROR, item.rel, "", item.reason)
                continue
            yield object_key(s.prefix, normalize(item.rel, s.key_normalization)), item
        return
    rx = re.compile(s.year_pattern) if s.year_pattern else None
    failed: list[Finding] = []

    def records() -> Iterator[bytes]:
        for item in iter_source(s, filters=filters):
            if isinstance(item, Filtered):
                continue  # under a template an active filter already keeps every object from being extra
            if isinstance(item, Skipped):
                if item.failed:
                    failed.append(Finding(ERROR, item.rel, "", item.reason))
                continue
            key = task_for(item, prefix=s.prefix, year_pattern=rx, key_template=s.key_template,
                           normalization=s.key_normalization).key
            # JSON (ASCII, escapes included) holds no NUL, the sort's record separator, whatever the names.
            yield json.dumps([key, item.path, item.rel, item.size, item.mtime_ns, item.inode]).encode("ascii")

    ordered = extsort.sort_to_file(records(), key=_record_key)
    yield from failed
    for rec in extsort.read(ordered):
        key, path, rel, size, mtime_ns, inode = json.loads(rec)
        yield key, FileEntry(path=path, rel=rel, size=size, mtime_ns=mtime_ns, inode=inode)


def _record_key(rec: bytes) -> bytes:
    return json.loads(rec)[0].encode("utf-8", "surrogateescape")


def _merge(s: Settings, listing: Iterator[tuple[str, int]], checks: _Checks) -> Iterator[Finding]:
    """The source and the listing, both in key order, walked side by side."""
    base = f"{s.prefix}/" if s.prefix else ""
    filters = Filters.from_settings(s, mark=True)
    # Under a key template an object's key is no relative path the selection could be asked about.
    laid_out = s.key_template != DEFAULT_TEMPLATE
    shard = Shard.parse(s.shard) if s.shard else None

    def extra(key: str, size: int) -> Iterator[Finding]:
        # An object the selection leaves out (filters.py: globs, size bounds, folders on another file
        # system; another machine's --shard) is not the source's to account for.
        rel = key[len(base):]
        if laid_out:
            wanted = not (filters.active or shard)
        else:
            wanted = not filters.leaves_out_object(rel, size) and (shard is None or shard.holds(rel, s.key_normalization))
        if not is_probe(key) and wanted:
            yield Finding(EXTRA, "", key, "no local file for this object")

    remote = next(listing, None)
    for item in _keyed_source(s, filters):
        if isinstance(item, Finding):
            yield item
            continue
        key, item = item
        while remote is not None and remote[0] < key:
            yield from extra(*remote)
            remote = next(listing, None)
        if isinstance(item, Filtered):  # a file the selection leaves out: its object, if any, is not extra
            if remote is not None and remote[0] == key:
                remote = next(listing, None)
            continue
        if remote is None or remote[0] != key:
            yield Finding(MISSING, item.rel, key, "no object at this key")
            continue
        size, remote = remote[1], next(listing, None)
        if size != item.size:
            yield Finding(SIZE, item.rel, key, f"object has {size} bytes, file has {item.size}")
        else:
            yield from checks.add((item.rel, item.path, key, item.size))
    while remote is not None:
        yield from extra(*remote)
        remote = next(listing, None)
    yield from checks.finish()


def verify(s: Settings, *, mode: str, out: IO[str]) -> int:
    """Run the check (`mode`: metadata, checksum or deep); write findings (human or JSON lines); return the exit
    code (0 only if all match)."""
    output = _Output(out, json_output=s.json_output)
    checks = _Checks(s, mode=mode)
    try:
        output.add(_merge(s, sorted_listing(make_client(s), bucket=s.bucket, prefix=s.prefix), checks))
    except BaseException:
        checks.close(wait=False)  # stopped (a signal, an error): chunks still running are not waited for
        raise
    checks.close()
    output.summary(mode=mode)
    return 0 if set(output.counts) <= {OK, METADATA_ONLY} else 1
