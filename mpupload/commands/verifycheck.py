"""Checking objects, in a verifying process (a pool process, or verify's own for a small job): one client,
the lean HEAD (s3/lean.py, botocore when it does not answer 200), the run's SSE-C key for every HEAD and GET,
and the check of each object: its xxh3-128 metadata, the checksum S3 keeps (--mode checksum), its bytes
(--mode deep). commands/verify.py walks the source and the listing and hands these checks out in chunks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import xxhash

from mpupload.commands.storedsum import DIFFERS, UNAVAILABLE, compare_stored
from mpupload.core.hashing import META_DIGEST, xxh3_file
from mpupload.s3.client import make_client
from mpupload.s3.clientconfig import transfer_config
from mpupload.settings.config import Settings

OK, MISSING, SIZE, CHECKSUM, EXTRA, ERROR = "ok", "missing", "size_mismatch", "checksum_mismatch", "extra", "error"
# --mode checksum, an object S3 keeps no comparable checksum for: its metadata matched (not a failure).
METADATA_ONLY = "metadata_only"
MODES = ("metadata", "checksum", "deep")


@dataclass(frozen=True)
class Finding:
    status: str
    path: str
    key: str
    detail: str = ""


_client = None  # one client and one TransferManager per verifying process, built after spawn
_transfers = None
_chunksize = 0  # the run's --multipart-chunksize: a composite checksum's part sizes, when the server does not say
_lean = None  # the lean path (s3/lean.py) for HEADs: signed here, ~4x less CPU than botocore's; None: botocore
_read_params: dict = {}  # an SSE-C key (read from its file in this process), for every HEAD and GET


class _HashingSink:
    """A write-only, non-seekable file for s3transfer: it hands over ranged GETs in order (holding at most
    its in-memory chunk limit), and each write goes into the digest; nothing touches the disk."""

    def __init__(self):
        self.hash = xxhash.xxh3_128()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def init_pool_process(settings: Settings) -> None:
    from mpupload.core.stopping import become_worker

    become_worker()  # the parent alone decides when to stop; no worker outlives it
    init_process(settings)


def init_process(settings: Settings) -> None:
    global _client, _transfers, _chunksize, _lean, _read_params
    import threading

    from s3transfer.manager import TransferManager

    from mpupload.s3.objectparams import ObjectParams
    from mpupload.s3.transport import open_transport

    _chunksize = settings.multipart_chunksize
    _read_params = ObjectParams(settings).read()
    _client = make_client(settings)
    _transfers = TransferManager(_client, transfer_config(settings))
    # The upload's own route and signer (the same --fast-put switch turns it off); not with an SSE-C key,
    # whose headers the lean HEAD does not carry.
    _lean = None if _read_params else open_transport(client=_client, settings=settings, stop=threading.Event()).lean


def _head(bucket: str, key: str, *, checksums: bool) -> dict:
    """HeadObject's answer, botocore-shaped: lean when it answers 200, else botocore's own (which raises with
    the reason an error deserves)."""
    if _lean is not None:
        try:
            status, h = _lean.head(key=key, headers={"x-amz-checksum-mode": "ENABLED"} if checksums else None)
        except Exception:  # noqa: BLE001 - no answer: botocore tries, and says why if it fails too
            status, h = 0, {}
        if status == 200:
            return _as_botocore(h)
    if checksums:
        return _client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **_read_params)
    return _client.head_object(Bucket=bucket, Key=key, **_read_params)


_CHECKSUM_NAMES = {"crc32": "CRC32", "crc32c": "CRC32C", "crc64nvme": "CRC64NVME", "sha1": "SHA1",
                   "sha256": "SHA256", "xxhash128": "XXHASH128"}


def _as_botocore(h: dict[str, str]) -> dict:
    out: dict = {"Metadata": {k[len("x-amz-meta-"):]: v for k, v in h.items() if k.startswith("x-amz-meta-")},
                 "ContentLength": int(h.get("content-length", 0)), "ETag": h.get("etag", "")}
    for name, value in h.items():
        if name.startswith("x-amz-checksum-") and name[len("x-amz-checksum-"):] in _CHECKSUM_NAMES:
            out["Checksum" + _CHECKSUM_NAMES[name[len("x-amz-checksum-"):]]] = value
    if "x-amz-checksum-type" in h:
        out["ChecksumType"] = h["x-amz-checksum-type"]
    return out


def _check_one(bucket: str, item: tuple[str, str, str, int], mode: str) -> Finding:
    rel, path, key, size = item
    try:
        if mode == "checksum":
            head = _head(bucket, key, checksums=True)
            stored = compare_stored(_client, bucket=bucket, key=key, path=path, head=head, size=size,
                                    chunksize=_chunksize)
            if stored.status == DIFFERS:
                return Finding(CHECKSUM, rel, key, stored.detail)
            local = stored.xxh3 or xxh3_file(path)[0]
        else:
            local = xxh3_file(path)[0]
            head = _head(bucket, key, checksums=False)
        meta = head.get("Metadata", {}).get(META_DIGEST)
        if mode == "deep":
            # Large objects come down as parallel ranged GETs; the bytes are hashed, not stored.
            sink = _HashingSink()
            _transfers.download(bucket, key, sink, extra_args=_read_params or None).result()
            if sink.hash.hexdigest() != local:
                return Finding(CHECKSUM, rel, key, "the object's bytes differ from the file")
        if meta is None:
            return Finding(CHECKSUM, rel, key, "the object has no xxh3-128 metadata")
        if meta != local:
            return Finding(CHECKSUM, rel, key, "xxh3-128 metadata differs from the file's digest")
        if mode == "checksum" and stored.status == UNAVAILABLE:
            return Finding(METADATA_ONLY, rel, key, stored.detail)
        return Finding(OK, rel, key)
    except Exception as exc:  # one object's trouble is reported, not fatal to the whole check
        return Finding(ERROR, rel, key, f"{type(exc).__name__}: {exc}")


_threads: ThreadPoolExecutor | None = None  # one per verifying process, kept from chunk to chunk
_threads_size = 0


def check_chunk(bucket: str, items: list[tuple[str, str, str, int]], mode: str, threads: int) -> list[Finding]:
    """Check a chunk of objects on this process's threads (made once: dozens of threads per chunk, made anew
    each time, cost more than the HEADs of a small chunk over loopback)."""
    global _threads, _threads_size
    if _threads is None or _threads_size != threads:
        _threads, _threads_size = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify"), threads
    return list(_threads.map(lambda it: _check_one(bucket, it, mode), items))
