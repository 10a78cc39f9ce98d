"""`mpupload verify`: prove the destination matches the source.

For every local file: the object exists, has the same size, and its `xxh3-128` metadata equals the file's
current digest. `--deep` downloads every object (streaming, in parallel across processes) and hashes the
bytes themselves, which catches an object changed behind our back with its metadata kept. Objects under the
prefix that no local file accounts for are reported as extra.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

import xxhash

from .config import Settings, transfer_config
from .hashing import META_DIGEST, xxh3_file
from .plan import object_key
from .remote import PROBE_MARK, list_destination, make_client
from .scan import FileEntry, Matcher, scan

OK, MISSING, SIZE, CHECKSUM, EXTRA, ERROR = "ok", "missing", "size_mismatch", "checksum_mismatch", "extra", "error"
_CHUNK = 64


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
    from .stopping import become_worker

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


def verify(s: Settings, *, deep: bool, out: IO[str]) -> int:
    """Run the check; write findings (human or JSON lines); return the exit code (0 only if all match)."""
    client = make_client(s)
    remote = {key: size for key, size, _ in list_destination(client, bucket=s.bucket, prefix=s.prefix,
                                                             threads=s.threads)}
    findings: list[Finding] = []
    to_check: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for item in scan(s.source, follow_symlinks=s.follow_symlinks, matcher=Matcher(s.include, s.exclude)):
        if not isinstance(item, FileEntry):
            continue
        key = object_key(s.prefix, item.rel)
        seen.add(key)
        if key not in remote:
            findings.append(Finding(MISSING, item.rel, key, "no object at this key"))
        elif remote[key] != item.size:
            findings.append(Finding(SIZE, item.rel, key, f"object has {remote[key]} bytes, file has {item.size}"))
        else:
            to_check.append((item.rel, item.path, key))
    chunks = [to_check[i:i + _CHUNK] for i in range(0, len(to_check), _CHUNK)]
    nproc = 0 if s.processes == 0 else min(s.effective_processes, max(1, len(chunks)))
    if nproc and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=nproc, mp_context=mp.get_context("spawn"), initializer=_init_pool_process,
                                 initargs=(s,)) as pool:
            for found in pool.map(_check_chunk, [s.bucket] * len(chunks), chunks, [deep] * len(chunks),
                                  [s.threads] * len(chunks)):
                findings.extend(found)
    else:
        _init_process(s)
        for chunk in chunks:
            findings.extend(_check_chunk(s.bucket, chunk, deep, s.threads))
    for key in sorted(set(remote) - seen):
        if PROBE_MARK not in key:
            findings.append(Finding(EXTRA, "", key, "no local file for this object"))
    counts = Counter(f.status for f in findings)
    _write(out, findings, counts, json_output=s.json_output, deep=deep)
    return 0 if set(counts) <= {OK} else 1


def _write(out: IO[str], findings: list[Finding], counts: Counter, *, json_output: bool, deep: bool) -> None:
    problems = [f for f in findings if f.status != OK]
    if json_output:
        for f in problems:
            out.write(json.dumps({"event": f.status, "path": f.path, "key": f.key, "detail": f.detail},
                                 ensure_ascii=False) + "\n")
        out.write(json.dumps({"event": "verify_summary", "deep": deep, "ok": counts[OK], "missing": counts[MISSING],
                              "size_mismatch": counts[SIZE], "checksum_mismatch": counts[CHECKSUM],
                              "extra": counts[EXTRA], "errors": counts[ERROR], "match": not problems}) + "\n")
        return
    for f in problems:
        out.write(f"{f.status:18} {f.key}: {f.detail}\n")
    verdict = "MATCH" if not problems else "MISMATCH"
    out.write(f"{verdict}: {counts[OK]} ok, {counts[MISSING]} missing, {counts[SIZE]} size mismatches, "
              f"{counts[CHECKSUM]} checksum mismatches, {counts[EXTRA]} extra, {counts[ERROR]} errors"
              f" ({'deep: bytes hashed' if deep else 'metadata checked; --deep hashes the bytes'}).\n")
