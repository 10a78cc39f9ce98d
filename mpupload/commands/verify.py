"""`mpupload verify`: prove the destination matches the source.

For every local file: the object exists, has the same size, and its `xxh3-128` metadata equals the file's
current digest. `--deep` downloads every object (streaming, in parallel across processes) and hashes the
bytes themselves, which catches an object changed behind our back with its metadata kept. Objects under the
prefix that no local file accounts for are reported as extra.

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
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO

import xxhash

from mpupload.core.hashing import META_DIGEST, xxh3_file
from mpupload.core.keys import DEFAULT_TEMPLATE, normalize
from mpupload.core.shard import Shard
from mpupload.run.plan import object_key, task_for
from mpupload.s3.client import make_client
from mpupload.s3.listing import iter_listing
from mpupload.s3.probekeys import is_probe
from mpupload.settings.config import Settings, transfer_config
from mpupload.source import extsort
from mpupload.source.filters import Filtered, Filters
from mpupload.source.scan import FileEntry, Skipped
from mpupload.source.sources import iter_source

OK, MISSING, SIZE, CHECKSUM, EXTRA, ERROR = "ok", "missing", "size_mismatch", "checksum_mismatch", "extra", "error"
_CHUNK = 64  # objects per task sent to a pool process
_IN_FLIGHT = 2  # chunks per pool process queued or running: keeps every process busy, memory bounded


@dataclass(frozen=True)
class Finding:
    status: str
    path: str
    key: str
    detail: str = ""


_client = None  # one client and one TransferManager per verifying process, built after spawn
_transfers = None


class _HashingSink:
    """A write-only, non-seekable file for s3transfer: it hands over ranged GETs in order (holding at most
    its in-memory chunk limit), and each write goes into the digest; nothing touches the disk."""

    def __init__(self):
        self.hash = xxhash.xxh3_128()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def _init_pool_process(settings: Settings) -> None:
    from mpupload.core.stopping import become_worker

    become_worker()  # the parent alone decides when to stop; no worker outlives it
    _init_process(settings)


def _init_process(settings: Settings) -> None:
    global _client, _transfers
    from s3transfer.manager import TransferManager

    _client = make_client(settings)
    _transfers = TransferManager(_client, transfer_config(settings))


def _check_one(bucket: str, item: tuple[str, str, str], deep: bool) -> Finding:
    rel, path, key = item
    try:
        local = xxh3_file(path)[0]
        meta = _client.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(META_DIGEST)
        if deep:
            # Large objects come down as parallel ranged GETs; the bytes are hashed, not stored.
            sink = _HashingSink()
            _transfers.download(bucket, key, sink).result()
            if sink.hash.hexdigest() != local:
                return Finding(CHECKSUM, rel, key, "the object's bytes differ from the file")
        if meta is None:
            return Finding(CHECKSUM, rel, key, "the object has no xxh3-128 metadata")
        if meta != local:
            return Finding(CHECKSUM, rel, key, "xxh3-128 metadata differs from the file's digest")
        return Finding(OK, rel, key)
    except Exception as exc:  # one object's trouble is reported, not fatal to the whole check
        return Finding(ERROR, rel, key, f"{type(exc).__name__}: {exc}")


def _check_chunk(bucket: str, items: list[tuple[str, str, str]], deep: bool, threads: int) -> list[Finding]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda it: _check_one(bucket, it, deep), items))


class _Checks:
    """HEADs (and --deep downloads) in chunks of `_CHUNK`: in this process for a job of one chunk or with
    --processes 0, else in a spawned pool with at most `_IN_FLIGHT` chunks per process outstanding."""

    def __init__(self, s: Settings, *, deep: bool):
        self.s, self.deep = s, deep
        self.nproc = 0 if s.processes == 0 else s.effective_processes
        self.chunk: list[tuple[str, str, str]] = []
        self.held: list[tuple[str, str, str]] | None = None  # a job of one chunk needs no pool
        self.pool: ProcessPoolExecutor | None = None
        self.running: set[Future] = set()
        self.ready_here = False

    def add(self, item: tuple[str, str, str]) -> list[Finding]:
        """Queue one (rel, path, key); returns the findings of chunks that finished meanwhile."""
        self.chunk.append(item)
        if len(self.chunk) < _CHUNK:
            return []
        chunk, self.chunk = self.chunk, []
        if not self.nproc:
            return self._here(chunk)
        if self.pool is None:
            if self.held is None:
                self.held = chunk
                return []
            self.pool = ProcessPoolExecutor(max_workers=self.nproc, mp_context=mp.get_context("spawn"),
                                            initializer=_init_pool_process, initargs=(self.s,))
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

    def _submit(self, chunk: list[tuple[str, str, str]]) -> None:
        self.running.add(self.pool.submit(_check_chunk, self.s.bucket, chunk, self.deep, self.s.threads))

    def _collect(self, *, most: int) -> list[Finding]:
        """Wait until at most `most` chunks are outstanding."""
        found: list[Finding] = []
        while len(self.running) > most:
            done, self.running = wait(self.running, return_when=FIRST_COMPLETED)
            for fut in done:
                found.extend(fut.result())
        return found

    def _here(self, chunk: list[tuple[str, str, str]]) -> list[Finding]:
        if not self.ready_here:
            _init_process(self.s)
            self.ready_here = True
        return _check_chunk(self.s.bucket, chunk, self.deep, self.s.threads)


class _Output:
    """Writes each problem as it is found (human lines or JSON lines) and counts every finding."""

    def __init__(self, out: IO[str], *, json_output: bool):
        self.out, self.json_output = out, json_output
        self.counts: Counter[str] = Counter()

    def add(self, found: Iterator[Finding] | list[Finding]) -> None:
        for f in found:
            self.counts[f.status] += 1
            if f.status == OK:
                continue
            if self.json_output:
                self.out.write(json.dumps({"event": f.status, "path": f.path, "key": f.key, "detail": f.detail},
                                          ensure_ascii=False) + "\n")
            else:
                self.out.write(f"{f.status:18} {f.key or f.path}: {f.detail}\n")

    def summary(self, *, deep: bool) -> None:
        c = self.counts
        match = set(c) <= {OK}
        if self.json_output:
            self.out.write(json.dumps({"event": "verify_summary", "deep": deep, "ok": c[OK], "missing": c[MISSING],
                                       "size_mismatch": c[SIZE], "checksum_mismatch": c[CHECKSUM],
                                       "extra": c[EXTRA], "errors": c[ERROR], "match": match}) + "\n")
            return
        self.out.write(f"{'MATCH' if match else 'MISMATCH'}: {c[OK]} ok, {c[MISSING]} missing, {c[SIZE]} size "
                       f"mismatches, {c[CHECKSUM]} checksum mismatches, {c[EXTRA]} extra, {c[ERROR]} errors"
                       f" ({'deep: bytes hashed' if deep else 'metadata checked; --deep hashes the bytes'}).\n")


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
            yield from checks.add((item.rel, item.path, key))
    while remote is not None:
        yield from extra(*remote)
        remote = next(listing, None)
    yield from checks.finish()


def _listing_bytes(rec: bytes) -> bytes:
    return rec[rec.index(b" ") + 1:]  # "SIZE KEY": the key's UTF-8 bytes are S3's order


def sorted_listing(s: Settings) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under the prefix, in S3's key order whatever the server's order."""
    listing = iter_listing(make_client(s), bucket=s.bucket, prefix=s.prefix)
    records = (b"%d %s" % (size, key.encode("utf-8", "surrogateescape")) for key, size in listing)
    for rec in extsort.read(extsort.sort_to_file(records, key=_listing_bytes)):
        size, _, key = rec.partition(b" ")
        yield key.decode("utf-8", "surrogateescape"), int(size)


def verify(s: Settings, *, deep: bool, out: IO[str]) -> int:
    """Run the check; write findings (human or JSON lines); return the exit code (0 only if all match)."""
    output = _Output(out, json_output=s.json_output)
    checks = _Checks(s, deep=deep)
    try:
        output.add(_merge(s, sorted_listing(s), checks))
    except BaseException:
        checks.close(wait=False)  # stopped (a signal, an error): chunks still running are not waited for
        raise
    checks.close()
    output.summary(deep=deep)
    return 0 if set(output.counts) <= {OK} else 1
