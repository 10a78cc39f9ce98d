"""The worker: one process (or, with processes=0, one thread in the coordinator) that takes batches
from the shared work queue and uploads their files with its own client, TransferManager and threads.

Small files (below the multipart threshold) are read once into memory; the same bytes are hashed and
sent, so the digest in the metadata is the digest of exactly what was sent. Large files are hashed
streaming, then sent in parts (fastmultipart.py; s3transfer without --endpoint-url or with
--no-fast-put), then checked with a HEAD.
"""

from __future__ import annotations

import functools
import mimetypes
import os
import queue
import random
import signal
import stat
import threading
import time
from concurrent.futures import CancelledError, Executor, ThreadPoolExecutor
from urllib.parse import quote

from . import fastput
from .config import Settings, part_size_for, transfer_config
from .errors import FATAL, PERMANENT, FatalError, FileChanged, classify
from .fastmultipart import upload_multipart
from .fastput import Declined, FastPut
from .hashing import META_DIGEST, META_MTIME, META_PATH, TransportChecksum, xxh3_bytes, xxh3_stream
from .messages import (
    FAILED,
    UPLOADED,
    Batch,
    BatchTaken,
    Fatal,
    FileTask,
    UploadResult,
    WorkerDone,
    WorkerReport,
    WorkerStarted,
)

INTERRUPTED = "interrupted before it finished"
_FLUSH_SECONDS = 0.25  # results cross the process boundary at most ~4 times a second per worker
_FLUSH_COUNT = 256


class ResultSender:
    """Collects results and byte counts from the upload threads; sends them as one message per flush."""

    def __init__(self, out, worker_id: int):
        self._out, self._worker = out, worker_id
        self._lock = threading.Lock()
        self._results: list[UploadResult] = []
        self._bytes = 0
        self._last = time.monotonic()

    def add(self, result: UploadResult) -> None:
        with self._lock:
            self._results.append(result)
            due = len(self._results) >= _FLUSH_COUNT
        if due:
            self.flush()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last >= _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            results, sent = tuple(self._results), self._bytes
            self._results, self._bytes = [], 0
            self._last = time.monotonic()
        if results or sent:
            self._out.put(WorkerReport(worker=self._worker, results=results, bytes_sent=sent))


@functools.lru_cache(maxsize=1024)
def _content_type_of_suffix(suffix: str) -> str | None:
    return mimetypes.guess_type("x" + suffix, strict=False)[0]


def _content_type(rel: str) -> str | None:
    """guess_type parses the whole path on every call; an archive has a handful of suffixes."""
    name = rel.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot <= 0 or name.endswith((".gz", ".bz2", ".xz", ".br", ".Z")):
        return mimetypes.guess_type(name, strict=False)[0]  # encodings: leave these to mimetypes
    return _content_type_of_suffix(name[dot:])


def source_metadata(task: FileTask, digest: str, mtime_ns: int) -> dict[str, str]:
    """User metadata: the end-to-end digest and where the object came from (path percent-encoded,
    since header values must be ASCII)."""
    return {
        META_DIGEST: digest,
        META_MTIME: f"{mtime_ns // 1_000_000_000}.{mtime_ns % 1_000_000_000:09d}",
        META_PATH: quote(task.rel, safe="/"),
    }


class _BytesSubscriber:
    """s3transfer subscriber that forwards part progress to the sender."""

    def __init__(self, sender: ResultSender):
        self._sender = sender

    def on_progress(self, future=None, bytes_transferred: int = 0, **kwargs) -> None:
        self._sender.add_bytes(bytes_transferred)

    def on_queued(self, **kwargs) -> None: ...

    def on_done(self, **kwargs) -> None: ...


class FileUploader:
    """Uploads one file with per-file retries. Thread-safe: one instance serves all threads of a worker."""

    def __init__(self, *, client, transfer_manager, settings: Settings, sender: ResultSender,
                 stop: threading.Event, fast: FastPut | None = None, parts: Executor | None = None):
        self.client, self.tm, self.s = client, transfer_manager, settings
        self.sender, self.stop = sender, stop
        # The lean signed PUT (fastput.py) for small files and, with `parts`, for multipart parts;
        # botocore takes over whenever it declines.
        self.fast, self.parts = fast, parts
        self.checksum = TransportChecksum(settings.checksum)
        self._subscriber = _BytesSubscriber(sender)

    def upload(self, task: FileTask, batch_id: int) -> UploadResult:
        started = time.monotonic()
        reason = ""
        for attempt in range(1, self.s.file_attempts + 1):
            if self.stop.is_set():
                reason = INTERRUPTED
                break
            try:
                digest, etag, size, mtime_ns = self._attempt(task)
                return UploadResult(rel=task.rel, key=task.key, status=UPLOADED, size=size, mtime_ns=mtime_ns,
                                    inode=task.inode, digest=digest, etag=etag, attempts=attempt,
                                    seconds=time.monotonic() - started, batch_id=batch_id)
            except CancelledError:
                reason = INTERRUPTED
                break
            except Exception as exc:  # sorted below: fatal / retryable / permanent
                kind, reason = classify(exc)
                if kind == FATAL:
                    raise FatalError("credentials", reason) from None
                if kind == PERMANENT or attempt == self.s.file_attempts:
                    break
                self._backoff(attempt)
        return UploadResult(rel=task.rel, key=task.key, status=FAILED, reason=reason, size=task.size,
                            mtime_ns=task.mtime_ns, inode=task.inode, attempts=attempt,
                            seconds=time.monotonic() - started, batch_id=batch_id)

    def _backoff(self, attempt: int) -> None:
        # Exponential with full jitter, capped; waits on the stop event so Ctrl-C is not delayed.
        delay = min(self.s.backoff_cap, self.s.backoff_base * 2 ** (attempt - 1))
        self.stop.wait(delay * (0.5 + random.random() / 2))

    def _attempt(self, task: FileTask) -> tuple[str, str, int, int]:
        with open(task.path, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(task.path)
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
        meta = source_metadata(task, digest, st.st_mtime_ns)
        if data is not None:
            etag = self._put_small(task, data, meta)
        else:
            etag = self._put_large(task, st.st_size, meta, digest)
        after = os.stat(task.path)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise FileChanged("size or modification time changed during the upload")
        return digest, etag, st.st_size, st.st_mtime_ns

    def _extra(self, task: FileTask, meta: dict[str, str]) -> dict:
        extra: dict = {"Metadata": meta}
        ctype = _content_type(task.rel)
        if ctype:
            extra["ContentType"] = ctype
        return extra

    def _put_small(self, task: FileTask, data: bytes, meta: dict[str, str]) -> str:
        params = self._extra(task, meta)
        if self.checksum.enabled:
            params[self.checksum.param] = self.checksum.of(data)
        if self.fast is not None:
            headers = {f"x-amz-meta-{k}": v for k, v in meta.items()}
            if "ContentType" in params:
                headers["content-type"] = params["ContentType"]
            if self.checksum.enabled:
                headers[f"x-amz-checksum-{self.checksum.algorithm.lower()}"] = params[self.checksum.param]
            try:
                etag = self.fast.put(bucket=self.s.bucket, key=task.key, body=data, headers=headers)
            except Declined:
                pass  # an error or a dropped connection: botocore sends this attempt, with its retries
            else:
                self.sender.add_bytes(len(data))
                return etag
        resp = self.client.put_object(Bucket=self.s.bucket, Key=task.key, Body=data, **params)
        self.sender.add_bytes(len(data))
        return resp.get("ETag", "").strip('"')

    def _put_large(self, task: FileTask, size: int, meta: dict[str, str], digest: str) -> str:
        extra = self._extra(task, meta)
        if self.checksum.enabled:
            extra["ChecksumAlgorithm"] = self.checksum.algorithm
        if self.fast is not None and self.parts is not None:
            upload_multipart(client=self.client, fast=self.fast, parts=self.parts, bucket=self.s.bucket, key=task.key,
                             path=task.path, size=size, part_size=part_size_for(size, self.s.multipart_chunksize),
                             extra=extra, checksum=self.checksum, stop=self.stop, on_bytes=self.sender.add_bytes)
        else:
            future = self.tm.upload(task.path, self.s.bucket, task.key, extra_args=extra,
                                    subscribers=[self._subscriber])
            future.result()
        # s3transfer does not hand back the ETag; the HEAD also proves what landed.
        head = self.client.head_object(Bucket=self.s.bucket, Key=task.key)
        if head.get("ContentLength") != size or head.get("Metadata", {}).get(META_DIGEST) != digest:
            raise FileChanged("the stored object does not match what was sent (size or digest differ)")
        return head.get("ETag", "").strip('"')


def run_worker(worker_id: int, settings: Settings, tasks, results, stop, *, own_process: bool = True) -> None:
    """Take batches until a None sentinel (or `stop`), upload them, report back. Never raises."""
    if own_process:
        # Only the coordinator decides when to stop: Ctrl-C reaches the whole process group.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    results.put(WorkerStarted(worker=worker_id, pid=os.getpid()))
    sender = ResultSender(results, worker_id)
    try:
        _serve(worker_id, settings, tasks, results, stop, sender)
    except FatalError as exc:
        sender.flush()
        results.put(Fatal(worker=worker_id, kind=exc.kind, message=exc.message))
    except Exception as exc:  # a bug or a broken environment: report it, never a silent death
        sender.flush()
        results.put(Fatal(worker=worker_id, kind="internal", message=f"worker {worker_id}: {type(exc).__name__}: {exc}"))
    results.put(WorkerDone(worker=worker_id))


def _serve(worker_id: int, settings: Settings, tasks, results, stop, sender: ResultSender) -> None:
    from s3transfer.manager import TransferManager

    from .remote import make_client

    client = make_client(settings)
    tm = TransferManager(client, transfer_config(settings))
    fast = None
    if settings.fast_put:
        fast = fastput.for_client(client, endpoint_url=settings.endpoint_url, connect_timeout=settings.connect_timeout,
                                  read_timeout=settings.read_timeout,
                                  verify=settings.ca_bundle if settings.ca_bundle else settings.verify_tls)
    # Parts of large files: `threads` in flight per process, one part buffer each (the memory bound).
    parts = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix=f"w{worker_id}p") if fast else None
    uploader = FileUploader(client=client, transfer_manager=tm, settings=settings, sender=sender, stop=stop,
                            fast=fast, parts=parts)
    slots = threading.BoundedSemaphore(settings.threads * 2)  # bounded in-flight files per worker
    fatal: list[FatalError] = []
    inflight = [0]
    inflight_lock = threading.Lock()

    def one(task: FileTask, batch_id: int) -> None:
        try:
            if not fatal:
                sender.add(uploader.upload(task, batch_id))
        except FatalError as exc:
            fatal.append(exc)
        finally:
            with inflight_lock:
                inflight[0] -= 1
                idle = inflight[0] == 0
            slots.release()
            if idle:
                # Nothing else in flight: the coordinator may be waiting on these last results to hand out
                # more work or to end the run, so send them now rather than at the next timed flush.
                sender.flush()

    pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix=f"w{worker_id}")
    try:
        while not stop.is_set() and not fatal:
            try:
                batch: Batch | None = tasks.get(timeout=_FLUSH_SECONDS)
            except queue.Empty:
                sender.flush_if_due()
                continue
            if batch is None:
                break
            results.put(BatchTaken(worker=worker_id, batch_id=batch.batch_id))
            for task in batch.tasks:
                while not slots.acquire(timeout=_FLUSH_SECONDS):
                    sender.flush_if_due()
                if stop.is_set() or fatal:
                    slots.release()
                    break
                with inflight_lock:
                    inflight[0] += 1
                pool.submit(one, task, batch.batch_id)
            sender.flush_if_due()
    finally:
        if stop.is_set() or fatal:
            # Cancel large transfers first, or draining would wait for them to finish.
            tm.shutdown(cancel=True, cancel_msg=INTERRUPTED)
            _drain(pool, slots, settings.threads * 2, sender)
        else:
            _drain(pool, slots, settings.threads * 2, sender)
            tm.shutdown()
        if parts is not None:
            parts.shutdown(wait=True, cancel_futures=True)
        sender.flush()
    if fatal:
        raise fatal[0]


def _drain(pool: ThreadPoolExecutor, slots: threading.BoundedSemaphore, n: int, sender: ResultSender) -> None:
    """Wait for in-flight files by taking back every slot, flushing results meanwhile."""
    for _ in range(n):
        while not slots.acquire(timeout=_FLUSH_SECONDS):
            sender.flush_if_due()
    pool.shutdown(wait=True)
