"""What runs on a Dask worker: one batch per task, through the local worker's own code (worker.WorkerKit).

The kit (client, transport, pools, the gate on files in flight, the shared pace) is built by the first
task of a run in each worker process and kept for the run's later tasks, so a process pays for its set-up
once, as a local worker does. Results stream back through the run's Dask queue as the files finish
(ResultSender's flushes), not when the task ends: the coordinator journals and draws them as locally.

A worker that dies mid-batch: Dask starts the task again elsewhere. That second start must not upload the
batch again from its stale copy (files already done, a multipart upload created since): a claim marks
each batch while a task works on it (a scheduler Event, cleared when the task ends). A task that finds its
batch claimed was started again after a death: it hands the batch back (`BatchRerun`) and the coordinator
hands out what is not settled, with the multipart upload ids journaled meanwhile (journal_relay.py).
"""

from __future__ import annotations

import os
import pickle
import threading
import zlib
from dataclasses import dataclass

from mpupload.cluster.journal_relay import RelayedJournal
from mpupload.cluster.relay import WorkerRelay, topic_for
from mpupload.core.errors import FatalError
from mpupload.core.messages import Batch, BatchRerun, Fatal
from mpupload.pace.concurrency import SharedLimit
from mpupload.pace.limits import Limits
from mpupload.pace.pacing import Pace
from mpupload.settings.config import Settings
from mpupload.state.journal import MultipartRow
from mpupload.worker.process import WorkerKit
from mpupload.worker.results import FLUSH_SECONDS, ResultSender


@dataclass(frozen=True)
class BatchPayload:
    settings: Settings
    batch: Batch
    rows: tuple[MultipartRow, ...]  # journaled multipart uploads of the batch's large files
    queue: str  # the run's results queue
    workers: int  # Dask workers when handed out: each takes this share of --max-bandwidth / --max-rps (then
    # the coordinator's heartbeat, relay.py, re-splits as workers join or leave)
    inflight: int  # the run's in-flight limit when handed out (then the coordinator's heartbeat)


class _QueueOut:
    """ResultSender's `out`: each message crosses pickled (a Dask queue carries msgpack values)."""

    def __init__(self, q):
        self._q = q

    def put(self, msg) -> None:
        self._q.put(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))


class _RunKit:
    """One run's worker set-up in this Dask worker process."""

    def __init__(self, p: BatchPayload):
        from distributed import Queue, get_client, get_worker

        s = p.settings
        worker, self.client = get_worker(), get_client()
        self.address = worker.address
        self.worker_id = zlib.crc32(worker.address.encode()) & 0x7FFFFFFF
        self.out = _QueueOut(Queue(p.queue, client=self.client))
        self.stop = threading.Event()
        self.settings, self.share = s, max(1, p.workers)
        self.pace = Pace(base_delay=s.backoff_base / 4, max_delay=s.backoff_cap,
                         limits=Limits(max_bandwidth=s.max_bandwidth / self.share if s.max_bandwidth else None,
                                       max_rps=s.max_requests_per_second / self.share if s.max_requests_per_second
                                       else None))
        self.limit = SharedLimit(p.inflight)
        self.relay = WorkerRelay(self.client, worker, s.run_id, pace=self.pace, limit=self.limit, stop=self.stop,
                                 on_workers=self.split_limits)
        self.sender = ResultSender(self.out, self.worker_id)
        self.journal = RelayedJournal(self.out.put)
        self.fatal_reported = False
        self.kit = WorkerKit(self.worker_id, s, stop=self.stop, sender=self.sender, pace=self.pace, limit=self.limit,
                             multipart_journal=lambda: self.journal)
        self._closed = threading.Event()
        threading.Thread(target=self._flush_regularly, daemon=True, name="mpupload-flush").start()

    def split_limits(self, workers: int, bandwidth: float | None, rps: float | None) -> None:
        """This process's share of the run's limits in force (`bandwidth`, `rps`: the whole run's, as the
        coordinator's heartbeat says them) when the cluster has `workers` workers: kept from the first batch, a
        worker that joined later would add its share on top of the limit (1 + 1 workers at the whole limit
        each: twice the limit); and a limit changed while the run goes reaches every worker."""
        limits = self.pace.limits
        if limits is None or workers < 1:
            return
        self.share = workers
        limits.set(max_bandwidth=bandwidth / workers if bandwidth else None,
                   max_rps=rps / workers if rps else None)

    def _flush_regularly(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            try:
                self.sender.flush_if_due()
            except Exception:
                self.stop.set()  # the queue is gone: so is the coordinator

    def close(self) -> None:
        self.stop.set()
        self._closed.set()
        try:
            self.kit.close()
        finally:
            self.relay.close()


_kits: dict[str, _RunKit] = {}
_kits_lock = threading.Lock()


def _kit_for(p: BatchPayload) -> _RunKit:
    run = p.settings.run_id
    with _kits_lock:
        kit = _kits.get(run)
        if kit is not None and kit.relay.orphaned:
            # It stopped after a silence from the coordinator, which is evidently still handing out work (a
            # long pause on the network, not its end): a fresh kit, the old one drains its files meanwhile.
            threading.Thread(target=kit.close, daemon=True, name="mpupload-old-kit").start()
            kit = None
        if kit is None:
            kit = _kits[run] = _RunKit(p)
        return kit


def close_run(run_id: str) -> bool:
    """Run on every worker at the end of a run (Client.run): its kit's threads and connections go."""
    with _kits_lock:
        kit = _kits.pop(run_id, None)
    if kit is not None:
        kit.close()
    return kit is not None


def claim_name(run_id: str, batch_id: int) -> str:
    return f"{topic_for(run_id)}-batch{batch_id}"


class _Countdown:
    def __init__(self):
        self._cond = threading.Condition()
        self.done = 0

    def one_done(self) -> None:
        with self._cond:
            self.done += 1
            self._cond.notify_all()

    def wait_for(self, n: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.done >= n)


def run_batch(p: BatchPayload) -> str:
    """The Dask task: upload one batch; its results are on the queue before it returns."""
    from distributed import Event

    try:
        run = _kit_for(p)
    except Exception as exc:  # no client can be built here: the run cannot go on on this worker
        raise RuntimeError(f"worker set-up failed: {type(exc).__name__}: {exc}") from None
    claim = Event(claim_name(p.settings.run_id, p.batch.batch_id), client=run.client)
    if claim.is_set():
        claim.clear()
        run.out.put(BatchRerun(batch_id=p.batch.batch_id))
        return "handed back"
    claim.set()
    run.journal.learn(p.rows)
    countdown = _Countdown()
    started = 0
    try:
        for task in p.batch.tasks:
            if not run.kit.submit(task, p.batch.batch_id, on_done=countdown.one_done):
                break
            started += 1
        countdown.wait_for(started)
        run.sender.flush()
        if started < len(p.batch.tasks) and not run.kit.fatal:
            # Stopped before all were started (the run's stop, or this process stopped hearing the
            # coordinator): the rest is the coordinator's to hand out again or to leave for the next run.
            run.out.put(BatchRerun(batch_id=p.batch.batch_id))
    finally:
        claim.clear()
    if run.kit.fatal and not run.fatal_reported:
        run.fatal_reported = True
        exc: FatalError = run.kit.fatal[0]
        # Which machine: a Dask worker uses its own credential chain and its own view of the network.
        run.out.put(Fatal(worker=run.worker_id, kind=exc.kind, message=f"{exc.message} (on the Dask worker {run.address})"))
    return f"{started} of {len(p.batch.tasks)} files on {os.getpid()}"
