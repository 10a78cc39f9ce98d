"""One file's upload, in a worker's thread: read, hash, send (small files whole, large ones through the
resumable multipart uploader), retry what another try can fix, and say what happened as an UploadResult.

Small files (below the multipart threshold) are read once into memory; the same bytes are hashed and
sent, so the digest in the metadata is the digest of exactly what was sent. Large files are hashed
streaming, then sent in parts by the resumable multipart uploader (multipart.py).

When the destination already holds an object of the same size at the key (from the coordinator's listing),
the uploader compares the object's xxh3-128 metadata with the file's digest and skips the upload on a match.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mpupload.core.errors import (
    FATAL,
    PERMANENT,
    Conflict,
    FatalError,
    FileChanged,
    classify,
    http_status,
    is_connection_error,
    retried_by_botocore,
)
from mpupload.core.hashing import META_DIGEST, META_MTIME, xxh3_bytes, xxh3_stream
from mpupload.core.messages import (
    FAILED,
    SKIP_SAME_DIGEST,
    SKIPPED,
    UPLOADED,
    FileTask,
    UploadResult,
)
from mpupload.core.s3limits import fit_metadata
from mpupload.pace.pacing import Pace, Stopped
from mpupload.s3.audit import Stored
from mpupload.s3.multipart import MultipartUploader
from mpupload.s3.transport import Transport
from mpupload.settings.config import Settings
from mpupload.settings.objects import parse_metadata
from mpupload.source.scan import open_regular

if TYPE_CHECKING:
    from mpupload.worker.results import ResultSender

INTERRUPTED = "interrupted before it finished"
# Who retries what (README, Retries): botocore retries each request (throttling, 5xx, dropped connections,
# timeouts; --retries); a file is tried again (--file-attempts) only for what another request cannot fix:
# the file changed while read, a body the server found corrupt (BadDigest), a fault outside botocore.
# While the pool holds for an outage, tries do not count; this bounds them anyway (the outage timeout stops
# the run long before).
_MAX_OUTAGE_RETRIES = 50
_CONFLICT = "an object with other content is already at this key; --no-overwrite leaves it as it is"


class _SameObject(Exception):
    """--no-overwrite: the PUT was refused (412) because the object at the key is this very file."""

    def __init__(self, stored: Stored):
        self.stored = stored


def user_metadata(settings: Settings) -> dict[str, str]:
    """The --metadata pairs of the run (settings/objects.py parses them; Settings.validated checked that they
    fit beside mpupload's own keys, s3limits.check_object_limits)."""
    return dict(parse_metadata(settings.metadata))


def source_metadata(task: FileTask, digest: str, mtime_ns: int,
                    user: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """User metadata: the end-to-end digest and where the object came from (the path's bytes, undecodable
    ones included, percent-encoded since header values must be ASCII; a compact form or none where that
    would break S3's 2 KB, s3limits.fit_metadata), beside `user`'s pairs; and the form source-path took."""
    own = {META_DIGEST: digest, META_MTIME: f"{mtime_ns // 1_000_000_000}.{mtime_ns % 1_000_000_000:09d}"}
    return fit_metadata(own, os.fsencode(task.rel), user)


@dataclass(frozen=True)
class _Done:
    status: str
    reason: str
    digest: str
    stored: Stored  # the ETag (and, for an upload, S3's checksum, version id, storage class)
    size: int
    mtime_ns: int
    parts_reused: int = 0
    source_path: str = ""


class FileUploader:
    """Uploads one file with per-file retries. Thread-safe: one instance serves all threads of a worker."""

    def __init__(self, *, client, parts_pool: ThreadPoolExecutor, settings: Settings, sender: ResultSender,
                 stop: threading.Event, pace: Pace | None = None, transport: Transport | None = None):
        self.client, self.s = client, settings
        self.sender, self.stop, self.pace = sender, stop, pace
        # Every PutObject and UploadPart goes through the transport (lean first, botocore when declined).
        self.transport = transport or Transport(client=client, settings=settings, stop=stop, pace=pace)
        self._user_metadata = user_metadata(settings)  # parsed once per process, not per file
        self.multipart = MultipartUploader(client=client, settings=settings, transport=self.transport,
                                           pool=parts_pool, on_bytes=sender.add_bytes, stop=stop)

    def upload(self, task: FileTask, batch_id: int) -> UploadResult:
        started = time.monotonic()
        reason = ""
        attempt = 0
        for _ in range(self.s.file_attempts + _MAX_OUTAGE_RETRIES):
            if self.stop.is_set():
                reason = INTERRUPTED
                break
            attempt += 1
            try:
                done = self._attempt(task)
                st = done.stored
                return UploadResult(rel=task.rel, key=task.key, status=done.status, reason=done.reason,
                                    size=done.size, mtime_ns=done.mtime_ns, inode=task.inode, digest=done.digest,
                                    etag=st.etag, attempts=attempt, seconds=time.monotonic() - started,
                                    batch_id=batch_id, parts_reused=done.parts_reused,
                                    partition=task.partition, checksum=st.checksum, version_id=st.version_id,
                                    storage_class=st.storage_class, source_path=done.source_path)
            except (CancelledError, Stopped):
                reason = INTERRUPTED
                break
            except FatalError:  # e.g. the journal cannot be written: no file can succeed
                raise
            except Exception as exc:  # sorted below: fatal / retryable / permanent
                kind, reason = classify(exc)
                if kind == FATAL:
                    raise FatalError("credentials", reason) from None
                if self._outage_held(exc):
                    attempt -= 1  # the endpoint failed, not this file: the try is free
                    continue
                if kind == PERMANENT or attempt >= self.s.file_attempts or retried_by_botocore(exc):
                    break
                self._backoff(attempt)
        return UploadResult(rel=task.rel, key=task.key, status=FAILED, reason=reason, size=task.size,
                            mtime_ns=task.mtime_ns, inode=task.inode, attempts=attempt,
                            seconds=time.monotonic() - started, batch_id=batch_id, partition=task.partition)

    def _outage_held(self, exc: BaseException) -> bool:
        """After a connection error: if the endpoint is marked down, wait (bounded) until it is back."""
        if self.pace is None or not is_connection_error(exc):
            return False
        return self.pace.wait_outage(self.stop, limit=self.s.outage_timeout + self.s.backoff_cap)

    def _backoff(self, attempt: int) -> None:
        # Exponential with full jitter, capped; waits on the stop event so Ctrl-C is not delayed.
        delay = min(self.s.backoff_cap, self.s.backoff_base * 2 ** (attempt - 1))
        self.stop.wait(delay * (0.5 + random.random() / 2))

    def _attempt(self, task: FileTask) -> _Done:
        f, st = open_regular(task.path)
        with f:
            if st.st_size < self.s.multipart_threshold:
                data = f.read(st.st_size + 1)  # one byte more reveals a file that grew
                if len(data) != st.st_size:
                    raise FileChanged(f"size went from {st.st_size} to at least {len(data)} bytes")
                digest = xxh3_bytes(data)
            else:
                data = None
                digest, n = xxh3_stream(f)
                if n != st.st_size:
                    raise FileChanged(f"size went from {st.st_size} to {n} bytes while hashing")
        if task.remote_size == st.st_size or (self.s.no_overwrite and (task.remote_size >= 0 or data is None)):
            # (--no-overwrite: any object at the key is looked at; a large file is looked at before its parts go.)
            etag = self._matching_object_etag(task, digest)
            if etag is not None:
                return _Done(SKIPPED, SKIP_SAME_DIGEST, digest, Stored(etag), st.st_size, st.st_mtime_ns)
            if self.s.no_overwrite and self._exists(task):
                raise Conflict(_CONFLICT)
        meta, path_form = source_metadata(task, digest, st.st_mtime_ns, self._user_metadata)
        reused = 0
        if data is not None:
            try:
                stored = self._put_small(task, data, meta)
            except _SameObject as same:
                return _Done(SKIPPED, SKIP_SAME_DIGEST, digest, same.stored, st.st_size, st.st_mtime_ns)
        else:
            stored, reused = self.multipart.upload(path=task.path, key=task.key, size=st.st_size,
                                                   mtime_ns=st.st_mtime_ns, inode=st.st_ino, digest=digest,
                                                   extra=self._extra(task, meta, st.st_size))
        after = os.stat(task.path)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise FileChanged("size or modification time changed during the upload")
        return _Done(UPLOADED, "", digest, stored, st.st_size, st.st_mtime_ns, reused, path_form)

    def _exists(self, task: FileTask) -> bool:
        try:
            self.client.head_object(Bucket=self.s.bucket, Key=task.key)
        except Exception as exc:
            if http_status(exc) == 404:
                return False
            raise
        return True

    def _matching_object_etag(self, task: FileTask, digest: str) -> str | None:
        """The ETag of the object at the key if it carries this digest, else None."""
        params = self.transport.object_params
        try:
            head = self.client.head_object(Bucket=self.s.bucket, Key=task.key, **params.read())
        except Exception as exc:
            # With SSE-C, S3 answers 400 for an object stored without this key (another key, or none): it is
            # not stored as this run asks, so it is uploaded again.
            if http_status(exc) == 404 or (params.sse_c and http_status(exc) == 400):
                return None
            raise
        if head.get("Metadata", {}).get(META_DIGEST) == digest:
            return head.get("ETag", "").strip('"')
        return None

    def _extra(self, task: FileTask, meta: dict[str, str], size: int) -> dict:
        """Every object setting (s3/objectparams.py) with this file's metadata, content type and class."""
        return self.transport.object_params.write(name=task.rel, size=size, metadata=meta)

    def _put_small(self, task: FileTask, data: bytes, meta: dict[str, str]) -> Stored:
        params = self._extra(task, meta, len(data))
        checksum = self.transport.checksum
        if checksum.enabled:
            # XXHASH128 is the digest already in the metadata: no second pass over the bytes.
            params[checksum.param] = checksum.of_digest(meta[META_DIGEST]) if checksum.is_digest else checksum.of(data)
        if self.s.no_overwrite:
            params["IfNoneMatch"] = "*"  # the server refuses (412) if anyone wrote the key meanwhile
        try:
            stored = self.transport.put_object(key=task.key, body=data, params=params)
        except Exception as exc:
            if not self.s.no_overwrite or http_status(exc) != 412:
                raise
            etag = self._matching_object_etag(task, meta[META_DIGEST])
            if etag is None:
                raise Conflict(_CONFLICT) from None
            raise _SameObject(Stored(etag)) from None
        self.sender.add_bytes(len(data))
        return stored
