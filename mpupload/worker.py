"""The worker: one process (or, with processes=0, one thread in the coordinator) that takes batches
from the shared work queue and uploads their files with its own client, file threads and part threads.

Small files (below the multipart threshold) are read once into memory; the same bytes are hashed and
sent, so the digest in the metadata is the digest of exactly what was sent. Large files are hashed
streaming, then sent in parts by the resumable multipart uploader (multipart.py).

When the destination already holds an object of the same size at the key (from the coordinator's listing),
the worker compares the object's xxh3-128 metadata with the file's digest and skips the upload on a match.
"""

from __future__ import annotations

import functools
import mimetypes
import os
import queue
import random
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

from .concurrency import InflightGate, SharedLimit
from .config import Settings
from .errors import (
    FATAL,
    PERMANENT,
    FatalError,
    FileChanged,
    classify,
    http_status,
    is_connection_error,
    retried_by_botocore,
)
from .hashing import META_DIGEST, META_MTIME, META_PATH, xxh3_bytes, xxh3_stream
from .messages import (
    FAILED,
    SKIP_SAME_DIGEST,
    SKIPPED,
    UPLOADED,
    Batch,
    BatchTaken,
    Fatal,
    FileTask,
    Notice,
    UploadResult,
    WorkerDone,
    WorkerReport,
    WorkerStarted,
)
from .multipart import MultipartUploader
from .pacing import Pace, Stopped
from .scan import open_regular
from .stopping import become_worker
from .transport import Transport, open_transport
from .xxprobe import SharedVerdict

INTERRUPTED = "interrupted before it finished"
_FLUSH_SECONDS = 0.25  # results cross the process boundary at most ~4 times a second per worker
_FLUSH_COUNT = 256
# Who retries what (README, Retries): botocore retries each request (throttling, 5xx, dropped connections,
# timeouts; --retries); a file is tried again (--file-attempts) only for what another request cannot fix:
# the file changed while read, a body the server found corrupt (BadDigest), a fault outside botocore.
# While the pool holds for an outage, tries do not count; this bounds them anyway (the outage timeout stops
# the run long before).
_MAX_OUTAGE_RETRIES = 50


class ResultSender:
    """Collects results and byte counts from the upload threads; sends them as one message per flush."""

    def __init__(self, out, worker_id: int):
        self._out, self._worker = out, worker_id
        self.counters = None  # a callable giving the transport's counts since the last call
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
        counts = self.counters() if self.counters is not None else ()
        if results or sent or counts:
            self._out.put(WorkerReport(worker=self._worker, results=results, bytes_sent=sent, transport=counts))

    def notice(self, text: str) -> None:
        """A line for the user, drawn by the coordinator's one writer (which says each text once)."""
        self._out.put(Notice(text))


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


@dataclass(frozen=True)
class _Done:
    status: str
    reason: str
    digest: str
    etag: str
    size: int
    mtime_ns: int
    parts_reused: int = 0


class FileUploader:
    """Uploads one file with per-file retries. Thread-safe: one instance serves all threads of a worker."""

    def __init__(self, *, client, parts_pool: ThreadPoolExecutor, settings: Settings, sender: ResultSender,
                 stop: threading.Event, pace: Pace | None = None, transport: Transport | None = None):
        self.client, self.s = client, settings
        self.sender, self.stop, self.pace = sender, stop, pace
        # Every PutObject and UploadPart goes through the transport (lean first, botocore when declined).
        self.transport = transport or Transport(client=client, settings=settings, stop=stop, pace=pace)
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
                return UploadResult(rel=task.rel, key=task.key, status=done.status, reason=done.reason,
                                    size=done.size, mtime_ns=done.mtime_ns, inode=task.inode, digest=done.digest,
                                    etag=done.etag, attempts=attempt, seconds=time.monotonic() - started,
                                    batch_id=batch_id, parts_reused=done.parts_reused,
                                    partition=task.partition)
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
        if task.remote_size == st.st_size:
            etag = self._matching_object_etag(task, digest)
            if etag is not None:
                return _Done(SKIPPED, SKIP_SAME_DIGEST, digest, etag,
                             st.st_size, st.st_mtime_ns)
        meta = source_metadata(task, digest, st.st_mtime_ns)
        reused = 0
        if data is not None:
            etag = self._put_small(task, data, meta)
        else:
            etag, reused = self.multipart.upload(path=task.path, key=task.key, size=st.st_size,
                                                 mtime_ns=st.st_mtime_ns, inode=st.st_ino, digest=digest,
                                                 extra=self._extra(task, meta))
        after = os.stat(task.path)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise FileChanged("size or modification time changed during the upload")
        return _Done(UPLOADED, "", digest, etag, st.st_size, st.st_mtime_ns, reused)

    def _matching_object_etag(self, task: FileTask, digest: str) -> str | None:
        """The ETag of the object at the key if it carries this digest, else None."""
        try:
            head = self.client.head_object(Bucket=self.s.bucket, Key=task.key)
        except Exception as exc:
            if http_status(exc) == 404:
                return None
            raise
        if head.get("Metadata", {}).get(META_DIGEST) == digest:
            return head.get("ETag", "").strip('"')
        return None

    def _extra(self, task: FileTask, meta: dict[str, str]) -> dict:
        extra: dict = {"Metadata": meta}
        ctype = _content_type(task.rel)
        if ctype:
            extra["ContentType"] = ctype
        return extra

    def _put_small(self, task: FileTask, data: bytes, meta: dict[str, str]) -> str:
        params = self._extra(task, meta)
        checksum = self.transport.checksum
        if checksum.enabled:
            # XXHASH128 is the digest already in the metadata: no second pass over the bytes.
            params[checksum.param] = checksum.of_digest(meta[META_DIGEST]) if checksum.is_digest else checksum.of(data)
        etag = self.transport.put_object(key=task.key, body=data, params=params)
        self.sender.add_bytes(len(data))
        return etag


def run_worker(worker_id: int, settings: Settings, tasks, results, stop, *, own_process: bool = True,
               pace: Pace | None = None, limit: SharedLimit | None = None,
               checksum_verdict: SharedVerdict | None = None) -> None:
    """Take batches until a None sentinel (or `stop`), upload them, report back. Never raises.
    `pace` is shared by all workers: throttling and outages slow or hold every one of them.
    `checksum_verdict`: the run's XXHASH128 probe (xxprobe.py); None: this worker probes for itself."""
    if own_process:
        # Only the coordinator decides when to stop; and no worker outlives it (stopping.py).
        become_worker()
    results.put(WorkerStarted(worker=worker_id, pid=os.getpid()))
    sender = ResultSender(results, worker_id)
    try:
        _serve(worker_id, settings, tasks, results, stop, sender, pace, limit, checksum_verdict)
    except FatalError as exc:
        sender.flush()
        results.put(Fatal(worker=worker_id, kind=exc.kind, message=exc.message))
    except Exception as exc:  # a bug or a broken environment: report it, never a silent death
        sender.flush()
        results.put(Fatal(worker=worker_id, kind="internal", message=f"worker {worker_id}: {type(exc).__name__}: {exc}"))
    results.put(WorkerDone(worker=worker_id))


def _serve(worker_id: int, settings: Settings, tasks, results, stop, sender: ResultSender,
           pace: Pace | None = None, limit: SharedLimit | None = None,
           checksum_verdict: SharedVerdict | None = None) -> None:
    kit = WorkerKit(worker_id, settings, stop=stop, sender=sender, pace=pace, limit=limit,
                    checksum_verdict=checksum_verdict)
    try:
        while not stop.is_set() and not kit.fatal:
            try:
                batch: Batch | None = tasks.get(timeout=_FLUSH_SECONDS)
            except queue.Empty:
                sender.flush_if_due()
                continue
            if batch is None:
                break
            results.put(BatchTaken(worker=worker_id, batch_id=batch.batch_id))
            for task in batch.tasks:
                if not kit.submit(task, batch.batch_id):
                    break
            sender.flush_if_due()
    finally:
        kit.close()
    if kit.fatal:
        raise kit.fatal[0]


class WorkerKit:
    """What a worker process builds once and every batch uses: its client, transport, uploader, file and part
    pools, and the gate on files in flight. The local pool's loop (`_serve`) and a Dask task that runs one
    batch (cluster/batch_task.py) both feed files through `submit`.
    `multipart_journal`: how the multipart uploader reaches the journal (default: opens settings.journal)."""

    def __init__(self, worker_id: int, settings: Settings, *, stop, sender: ResultSender, pace: Pace | None = None,
                 limit: SharedLimit | None = None, multipart_journal=None,
                 checksum_verdict: SharedVerdict | None = None):
        from .remote import make_client

        self.settings, self.stop, self.sender = settings, stop, sender
        client = make_client(settings)
        if pace is not None:
            # Bounded: an outage ends by the prober or by the coordinator stopping the run at the timeout.
            pace.attach(client, stop, limit=settings.outage_timeout + settings.backoff_cap + 10)
        transport = open_transport(client=client, settings=settings, stop=stop, pace=pace, notify=sender.notice,
                                   verdict=checksum_verdict)
        sender.counters = transport.take_counts
        # The checksum (--checksum auto: the run's probe, xxprobe.py; a Dask worker, given none, probes once
        # for its process) is settled while the worker waits for its first batch, not in front of its first
        # file.
        threading.Thread(target=lambda: transport.checksum, daemon=True, name=f"w{worker_id}-checksum").start()
        # Parts get their own pool: a file thread waits on its parts, so sharing one pool could deadlock.
        self.parts_pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix=f"w{worker_id}-part")
        self.uploader = FileUploader(client=client, parts_pool=self.parts_pool, settings=settings, sender=sender,
                                     stop=stop, pace=pace, transport=transport)
        if multipart_journal is not None:
            self.uploader.multipart.open_journal = multipart_journal
        # Files in flight: a fixed --threads, or the run's shared limit that follows the link (concurrency.py).
        # The pool only creates the threads the limit lets work reach.
        if limit is None or not settings.adaptive:
            limit = SharedLimit(settings.threads * 2)  # a file queued for a thread counts too
            pool_threads = settings.threads
        else:
            pool_threads = settings.max_inflight
        self.gate = InflightGate(limit, max_bytes=settings.inflight_bytes)
        self.pool = ThreadPoolExecutor(max_workers=pool_threads, thread_name_prefix=f"w{worker_id}")
        self.fatal: list[FatalError] = []

    def _held(self, task: FileTask) -> int:
        # A small file is read whole; a large one's parts are bounded by the part pool instead.
        return task.size if task.size < self.settings.multipart_threshold else 0

    def submit(self, task: FileTask, batch_id: int, *, on_done=None) -> bool:
        """Start uploading `task` once the gate lets it in (flushing results meanwhile); False when the run
        stops or a fatal error came first (the file is not started). `on_done` runs after its result is out."""
        held = self._held(task)
        while not self.gate.acquire(held, timeout=_FLUSH_SECONDS):
            self.sender.flush_if_due()
        if self.stop.is_set() or self.fatal:
            self.gate.release(held)
            return False
        self.pool.submit(self._one, task, batch_id, held, on_done)
        return True

    def _one(self, task: FileTask, batch_id: int, held: int, on_done) -> None:
        try:
            if not self.fatal:
                self.sender.add(self.uploader.upload(task, batch_id))
        except FatalError as exc:
            self.fatal.append(exc)
        finally:
            self.gate.release(held)
            if self.gate.count == 0:
                # Nothing else in flight: the coordinator may be waiting on these last results to hand out
                # more work or to end the run, so send them now rather than at the next timed flush.
                self.sender.flush()
            if on_done is not None:
                on_done()

    def close(self) -> None:
        # On a stop, parts not yet started raise CancelledError; the upload id stays journaled for a rerun.
        _drain(self.pool, self.gate, self.sender)
        self.parts_pool.shutdown(wait=True, cancel_futures=True)
        self.sender.flush()


def _drain(pool: ThreadPoolExecutor, gate: InflightGate, sender: ResultSender) -> None:
    """Wait for in-flight files, flushing results meanwhile."""
    while not gate.wait_idle(timeout=_FLUSH_SECONDS):
        sender.flush_if_due()
    pool.shutdown(wait=True)
