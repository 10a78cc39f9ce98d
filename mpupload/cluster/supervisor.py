"""The Dask supervisor: the same surface as supervisor.Supervisor (start / hand_out / idle / next_message /
note / settled / watch / close / shutdown / drain / release_queues), so the coordinator, planner and ledger
run a Dask cluster exactly as they run the local pool.

- Out: each batch becomes one task (batch_task.run_batch), carrying the journaled multipart uploads of its
  large files. At most `capacity` tasks are outstanding (the cluster's task slots plus one queued per
  worker): hand_out blocks beyond that, which holds the planner back as the local pool's bounded queue does,
  so memory and the journal stay the same size for ten million files.
- Back: messages stream through the run's Dask queue; a reader thread moves them to a local queue that
  the coordinator reads (next_message), as it reads the local pool's results queue.
- Deaths: Dask starts a dead worker's tasks again elsewhere; such a start hands its batch back (BatchRerun,
  batch_task.py) and the files not settled go out again as a new batch, with the upload ids journaled
  meanwhile, at most MAX_RESUBMITS times (then they fail with the reason). A task that fails outright
  (Dask gave up on it: KilledWorker) is handled the same way. Results that arrive for a file already
  settled (a batch done twice around a death) are dropped, so nothing is counted twice.

Longer than ~300 lines: it is the whole executor interface (run/executors.py) over one Dask connection --
set-up, tasks out, results back, deaths and hand-backs, the end -- whose parts share one lock and one
connection; split, each part would reach into the others' state.
"""

from __future__ import annotations

import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterable

from mpupload.cluster import journal_relay, samefiles
from mpupload.cluster.batch_task import BatchPayload, close_run, run_batch
from mpupload.cluster.connect import TASKS_PER_WORKER, Connection, connect
from mpupload.cluster.relay import CoordinatorRelay
from mpupload.core.errors import FatalError
from mpupload.core.messages import Batch, BatchRerun, Fatal, JournalOp, UploadResult, WorkerReport, WorkerStarted
from mpupload.run.outstanding import Outstanding, failed_report
from mpupload.run.supervisor import TICK
from mpupload.state.journal import Journal

MAX_RESUBMITS = 3  # times the unsettled files of one batch go out again after worker deaths
# Seconds between looks at the cluster's size (workers come and go): the bound on tasks out follows it, and
# so do the workers' shares of --max-bandwidth / --max-requests-per-second (relay.py's heartbeat carries it),
# so a worker that joins adds no share on top of the limit for longer than this. Client.nthreads: a small
# answer (address -> threads), not scheduler_info's metrics of every worker.
_CAPACITY_EVERY = 1.0
_POLL_MIN, _POLL_MAX = 0.01, 0.1  # seconds between looks at an empty results queue


class DaskSupervisor:
    ctx = None  # the pace and the in-flight limit live in this process; relay.py carries them to the workers

    def __init__(self, *, settings, processes: int, on_started: Callable[[int, int], None] | None = None,
                 on_gone: Callable[[int], None] | None = None):
        """`processes`: workers of the LocalCluster started when no --scheduler is given."""
        self.settings, self.processes = settings, processes
        self._on_started = on_started
        self.stop = threading.Event()
        self.results: queue.Queue = queue.Queue()
        self.blocked = threading.Event()
        self.restarts = 0
        self.started = False
        self.closed = False
        self.where = f"a local Dask cluster of {processes} worker process(es)" if not settings.scheduler else \
            f"the Dask cluster at {settings.scheduler}"
        self._lock = threading.Condition()
        self._conn: Connection | None = None
        self._relay: CoordinatorRelay | None = None
        self._queue = None
        self._broken = False  # set-up failed: a Fatal message is on its way, nothing goes out
        self._pace = self._limit = None
        self._outstanding = Outstanding()
        self._partition: dict[int, str] = {}
        self._resubmits: dict[int, int] = {}  # batch id -> times its files went out again
        self._futures: dict[int, object] = {}  # batch id -> its task, until it ends
        self._ended: list[tuple[int, object]] = []  # tasks that ended in error, for the main thread
        self._ours: set[int] = set()  # batch ids handed to the cluster (results of others pass untouched)
        self._next_resubmit = 0
        self._capacity = processes * (TASKS_PER_WORKER + 1)
        self._workers = processes
        self._sized_at = 0.0
        self._told_stop = False
        self._journals = threading.local()
        self._reader: threading.Thread | None = None
        self._reading = threading.Event()
        self._ready = threading.Event()  # set-up over (connected and checked, or failed)

    # -- the cluster -------------------------------------------------------------------------------------------
    def start(self, *, lazily: bool = False, pace=None, limit=None, checksum_verdict=None, full_verdict=None) -> None:
        """Connect (or start the LocalCluster) while the coordinator's preflight runs; `lazily`: with the
        first batch (a rerun that uploads nothing starts no cluster). `checksum_verdict` stays here: each
        Dask worker process probes XXHASH128 (and FULL_OBJECT CRC64NVME: `full_verdict`) once for itself
        (it may be on another network path)."""
        self._pace, self._limit = pace, limit
        if not lazily:
            self._begin()

    def _begin(self) -> None:
        with self._lock:
            if self.started:
                return
            self.started = True
        threading.Thread(target=self._connect, daemon=True, name="dask-connect").start()

    def _wait_ready(self) -> None:
        self._begin()
        while not self._ready.wait(TICK):
            if self.stop.is_set():
                return

    def _connect(self) -> None:
        try:
            self._connect_now()
        finally:
            self._ready.set()

    def _connect_now(self) -> None:
        try:
            self._conn = connect(self.settings, workers=self.processes)
            client = self._conn.client
            from distributed import Queue

            self._queue = Queue(f"mpupload-{self.settings.run_id}-results", client=client)
            self._resize(force=True)
            self._relay = CoordinatorRelay(client, self.settings.run_id, pace=self._pace, limit=self._limit,
                                           workers=lambda: self._workers)
            if self._workers == 0:
                raise FatalError("cluster", f"{self.where} has no workers")
            self._check_same_files(client)
            if self._conn.cluster is not None and self._on_started is not None:
                # Worker processes of this machine: the live view counts their CPU and memory.
                for n, pid in enumerate(sorted(client.run(os.getpid).values()), start=1):
                    self._on_started(n, pid)
        except FatalError as exc:
            self._fail(exc)
            return
        except Exception as exc:
            self._fail(FatalError("cluster", f"cannot start {self.where}: {type(exc).__name__}: {exc}"))
            return
        self._reading.set()
        self._reader = threading.Thread(target=self._read, daemon=True, name="dask-results")
        self._reader.start()

    def _fail(self, exc: FatalError) -> None:
        self._broken = True
        self.results.put(Fatal(worker=-1, kind=exc.kind, message=exc.message))

    def _check_same_files(self, client) -> None:
        sample = samefiles.sample_of(self.settings)
        if not sample:
            return
        paths = [path for _, path in sample]
        here = samefiles.describe_all(paths)
        there = client.run(samefiles.describe_all, paths)
        problems = samefiles.differences(sample, here, there)
        if problems:
            raise FatalError("cluster", f"the Dask workers do not see the files of {self.settings.source} as this "
                                        "machine does (SOURCE must be on a filesystem every worker mounts at the "
                                        "same path): " + "; ".join(problems[:3]))

    def _resize(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._sized_at < _CAPACITY_EVERY:
            return
        self._sized_at = now
        workers = self._conn.client.nthreads()
        threads = sum(workers.values())
        with self._lock:
            self._workers = len(workers)
            self._capacity = max(1, threads + len(workers))
            self._lock.notify_all()

    def _journal(self) -> Journal:
        """This thread's connection to the run's journal (the feeder reads rows, the main thread writes)."""
        j = getattr(self._journals, "journal", None)
        if j is None:
            j = self._journals.journal = Journal(self.settings.journal)
        return j

    @property
    def all_done(self) -> bool:
        if not self.started or self._broken or not self._ready.is_set():
            return self.closed or self.stop.is_set()
        with self._lock:
            return (self.closed or self.stop.is_set()) and not self._futures

    # -- work out ------------------------------------------------------------------------------------------------
    def hand_out(self, batch: Batch) -> bool:
        """Submit a batch once the cluster has room for it (blocking); False once stopping."""
        self._wait_ready()
        with self._lock:
            while len(self._futures) >= self._capacity and not self.stop.is_set() and not self._broken:
                self.blocked.set()
                self._lock.wait(TICK)
            if self.stop.is_set() or self._broken:
                return False
            self._outstanding.add(batch.batch_id, batch.tasks)
            self._partition[batch.batch_id] = batch.partition
        self._submit(batch)
        return True

    def _submit(self, batch: Batch) -> None:
        s = self.settings
        large = [t for t in batch.tasks if t.size >= s.multipart_threshold]
        rows = journal_relay.rows_for(self._journal(), large, threshold=s.multipart_threshold) if large else ()
        payload = BatchPayload(settings=s, batch=batch, rows=rows, queue=self._queue.name, workers=self._workers,
                               inflight=self._limit.value if self._limit is not None else s.threads)
        future = self._conn.client.submit(run_batch, payload, key=f"mpupload-{s.run_id[:12]}-batch{batch.batch_id}",
                                          pure=False)
        with self._lock:
            self._ours.add(batch.batch_id)
            self._futures[batch.batch_id] = future
        future.add_done_callback(lambda f, bid=batch.batch_id: self._task_ended(bid, f))

    def _task_ended(self, batch_id: int, future) -> None:
        # In one of the client's threads: only bookkeeping here; the main thread handles errors (watch).
        with self._lock:
            if self._futures.get(batch_id) is future:
                del self._futures[batch_id]  # dropped: Dask forgets the result, never recomputes it
            if future.status == "error" or (future.status == "cancelled" and not self.stop.is_set()):
                self._ended.append((batch_id, future))
            self._lock.notify_all()

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._outstanding

    def close(self) -> None:
        """No more work (nothing to send the tasks: each ends with its batch)."""
        self.closed = True

    # -- work back -----------------------------------------------------------------------------------------------
    def _read(self) -> None:
        # Polled, never a blocking get with a timeout: the scheduler logs every such timeout as an error with
        # its traceback (in this process, for a LocalCluster: across the live view). Idle polls back off
        # from 10 to 100 ms, so a result waits at most that long.
        pause = _POLL_MIN
        while self._reading.is_set():
            try:
                items = self._queue.get(batch=True)
            except Exception:
                items = []
                pause = TICK  # the client is reconnecting or closing: look again shortly
            if items:
                self._take(items)
                pause = _POLL_MIN
            else:
                time.sleep(pause)
                pause = min(_POLL_MAX, pause * 2)

    def _take(self, items: Iterable[bytes]) -> None:
        for item in items:
            self.results.put(pickle.loads(item))

    def next_message(self, timeout: float):
        try:
            msg = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
        except queue.Empty:
            return None
        return self._unsettled_only(msg) if isinstance(msg, WorkerReport) else msg

    def _unsettled_only(self, msg: WorkerReport) -> WorkerReport:
        """Drop results of files already settled (a batch worked on twice around a worker's death)."""
        with self._lock:
            keep = tuple(r for r in msg.results
                         if r.batch_id not in self._ours or self._outstanding.holds(r.batch_id, r.rel))
        if len(keep) == len(msg.results):
            return msg
        return WorkerReport(worker=msg.worker, results=keep, bytes_sent=msg.bytes_sent, transport=msg.transport)

    def note(self, msg) -> bool:
        """The cluster's own messages; False for what the ledger takes."""
        if isinstance(msg, JournalOp):
            journal_relay.apply(self._journal(), msg)
        elif isinstance(msg, BatchRerun):
            self._again(msg.batch_id, reason="its Dask worker died or stopped", dispatch=None)
        elif isinstance(msg, WorkerStarted):
            pass  # this machine's worker pids were taken at start (a remote pid means nothing here)
        else:
            return False
        return True

    def settled(self, results: Iterable[UploadResult]) -> None:
        with self._lock:
            self._outstanding.settle(results)
            self._lock.notify_all()

    def _again(self, batch_id: int, *, reason: str, dispatch: Callable[[object], None] | None) -> None:
        """A batch's unsettled files out again as a new batch, or (past the limit, or stopping) failed."""
        with self._lock:
            tasks = self._outstanding.take(batch_id)
            partition = self._partition.pop(batch_id, "")
            times = self._resubmits.pop(batch_id, 0) + 1
        if not tasks or self.stop.is_set():
            return  # stopping: what was not started stays for the next run (counted pending), as locally
        if times > MAX_RESUBMITS or self._broken:
            failed = failed_report(tasks, worker=-1,
                                   reason=f"not uploaded: {reason} ({times - 1} times handed out again)")
            if dispatch is not None:
                dispatch(failed)
            else:
                self.results.put(failed)
            return
        self.restarts += 1
        self._next_resubmit -= 1
        again = Batch(batch_id=self._next_resubmit, partition=partition, tasks=tuple(tasks))
        with self._lock:
            self._outstanding.add(again.batch_id, tasks)
            self._partition[again.batch_id] = partition
            self._resubmits[again.batch_id] = times
        self._submit(again)

    def watch(self, dispatch: Callable[[object], None]) -> None:
        """From the main loop, every tick: the heartbeat, the stop, the cluster's size, failed tasks."""
        if not self._ready.is_set() or self._broken or self._conn is None:
            return
        if self.stop.is_set():
            if not self._told_stop:
                self._told_stop = True
                self._relay.stop()
        else:
            self._resize()
            self._relay.tick()
        with self._lock:
            ended, self._ended = self._ended, []
        for batch_id, future in ended:
            try:
                exc = future.exception(timeout=5)
            except Exception as why:  # cancelled (a stop) or the client is closing
                exc = why
            self._again(batch_id, reason=f"its Dask task failed ({type(exc).__name__}: {exc})", dispatch=dispatch)

    def drain(self, dispatch: Callable[[object], None], *, wait: float = 0.05) -> None:
        """Every message waiting, the Dask queue's included (the tasks' last flushes)."""
        if self._reader is not None:
            self._reading.clear()
            self._reader.join(timeout=5)
            self._reader = None
        if self._queue is not None and self._conn is not None:
            try:
                self._take(self._queue.get(batch=True))
            except Exception:
                pass
        while True:
            msg = self.next_message(wait)
            if msg is None:
                return
            dispatch(msg)

    # -- the end -----------------------------------------------------------------------------------------------
    def shutdown(self, *, kill: bool) -> None:
        """Wait (bounded) for the tasks to end; `kill`: cancel them at once. What they had in flight is left
        for the resume path, as locally."""
        self.stop.set()
        with self._lock:
            self._lock.notify_all()
        if not self._ready.is_set() or self._conn is None or self._broken:
            return
        if not self._told_stop:
            self._told_stop = True
            self._relay.stop()
        deadline = time.monotonic() + (2.0 if kill else 10.0)
        with self._lock:
            while self._futures and time.monotonic() < deadline:
                self._lock.wait(TICK)
            left = list(self._futures.values())
        if left:
            try:
                self._conn.client.cancel(left, force=True)
            except Exception:
                pass

    def release_queues(self) -> None:
        if self.started:
            self._ready.wait(60)  # a stop during set-up: let the cluster come up, so it is closed, not leaked
        if self._conn is None:
            return
        try:
            self._conn.client.run(close_run, self.settings.run_id)  # each worker drops the run's threads
        except Exception:
            pass
        if self._relay is not None:
            self._relay.close()
        journal = getattr(self._journals, "journal", None)
        if journal is not None:
            journal.close()
        self._conn.close()
        self._conn = None
