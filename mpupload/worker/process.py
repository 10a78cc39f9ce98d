"""The worker: one process (or, with processes=0, one thread in the coordinator) that takes batches
from the shared work queue and uploads their files with its own client, file threads and part threads
(WorkerKit, also what a Dask task runs a batch through); results go back in reports (results.py).
One file's upload is fileupload.py."""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from mpupload.core.errors import (
    FatalError,
)
from mpupload.core.messages import (
    Batch,
    BatchTaken,
    Fatal,
    FileTask,
    WorkerDone,
    WorkerStarted,
)
from mpupload.core.stopping import become_worker
from mpupload.pace.concurrency import InflightGate, SharedLimit
from mpupload.pace.pacing import Pace
from mpupload.s3.transport import open_transport
from mpupload.s3.xxprobe import SharedVerdict
from mpupload.settings.config import Settings
from mpupload.worker.fileupload import FileUploader
from mpupload.worker.results import FLUSH_SECONDS, ResultSender


def run_worker(worker_id: int, settings: Settings, tasks, results, stop, *, own_process: bool = True,
               pace: Pace | None = None, limit: SharedLimit | None = None,
               checksum_verdict: SharedVerdict | None = None, full_verdict: SharedVerdict | None = None) -> None:
    """Take batches until a None sentinel (or `stop`), upload them, report back. Never raises.
    `pace` is shared by all workers: throttling and outages slow or hold every one of them.
    `checksum_verdict`: the run's XXHASH128 probe (xxprobe.py); `full_verdict`: its FULL_OBJECT CRC64NVME probe
    (fullprobe.py); None: this worker probes for itself."""
    if own_process:
        # Only the coordinator decides when to stop; and no worker outlives it (stopping.py).
        become_worker()
    results.put(WorkerStarted(worker=worker_id, pid=os.getpid()))
    sender = ResultSender(results, worker_id)
    try:
        _serve(worker_id, settings, tasks, results, stop, sender, pace, limit, checksum_verdict, full_verdict)
    except FatalError as exc:
        sender.flush()
        results.put(Fatal(worker=worker_id, kind=exc.kind, message=exc.message))
    except Exception as exc:  # a bug or a broken environment: report it, never a silent death
        sender.flush()
        results.put(Fatal(worker=worker_id, kind="internal", message=f"worker {worker_id}: {type(exc).__name__}: {exc}"))
    results.put(WorkerDone(worker=worker_id))


def _serve(worker_id: int, settings: Settings, tasks, results, stop, sender: ResultSender,
           pace: Pace | None = None, limit: SharedLimit | None = None,
           checksum_verdict: SharedVerdict | None = None, full_verdict: SharedVerdict | None = None) -> None:
    kit = WorkerKit(worker_id, settings, stop=stop, sender=sender, pace=pace, limit=limit,
                    checksum_verdict=checksum_verdict, full_verdict=full_verdict)
    try:
        while not stop.is_set() and not kit.fatal:
            try:
                batch: Batch | None = tasks.get(timeout=FLUSH_SECONDS)
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
                 checksum_verdict: SharedVerdict | None = None, full_verdict: SharedVerdict | None = None):
        from mpupload.s3.client import make_client

        self.settings, self.stop, self.sender = settings, stop, sender
        client = make_client(settings)
        if pace is not None:
            # Bounded: an outage ends by the prober or by the coordinator stopping the run at the timeout.
            pace.attach(client, stop, limit=settings.outage_timeout + settings.backoff_cap + 10)
        transport = open_transport(client=client, settings=settings, stop=stop, pace=pace, notify=sender.notice,
                                   verdict=checksum_verdict, full_verdict=full_verdict)
        sender.counters = transport.take_counts
        # The checksum (--checksum auto: the run's probe, xxprobe.py; a Dask worker, given none, probes once
        # for its process) is settled while the worker waits for its first batch, not in front of its first
        # file.
        # Multipart's checksum too, when the run probes it (else only a multipart file asks, probing then).
        threading.Thread(target=lambda: (transport.checksum, full_verdict is not None and transport.part_checksum),
                         daemon=True, name=f"w{worker_id}-checksum").start()
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
        sender.inflight = lambda: self.gate.count  # for the live view: requests in flight now
        self.pool = ThreadPoolExecutor(max_workers=pool_threads, thread_name_prefix=f"w{worker_id}")
        self.fatal: list[FatalError] = []

    def _held(self, task: FileTask) -> int:
        # A small file is read whole; a large one's parts are bounded by the part pool instead.
        return task.size if task.size < self.settings.multipart_threshold else 0

    def submit(self, task: FileTask, batch_id: int, *, on_done=None) -> bool:
        """Start uploading `task` once the gate lets it in (flushing results meanwhile); False when the run
        stops or a fatal error came first (the file is not started). `on_done` runs after its result is out."""
        held = self._held(task)
        while not self.gate.acquire(held, timeout=FLUSH_SECONDS):
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
    while not gate.wait_idle(timeout=FLUSH_SECONDS):
        sender.flush_if_due()
    pool.shutdown(wait=True)
