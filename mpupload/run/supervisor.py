"""The supervisor: the pool of workers. It starts them, hands out batches through the bounded work queue,
keeps track of which worker holds which batch, replaces a worker that dies (handing its unfinished files
to the replacement, a bounded number of times) and ends the pool with one sentinel per worker.

It knows nothing of S3, the journal or the counts: the worker is any function with `run_worker`'s
signature (`worker(worker_id, settings, tasks, results, stop, **kwargs)`), so tests drive it with a fake
one, and another executor (a Dask cluster) only needs the same small surface: `start`, `hand_out`,
`next_message`, `note` / `settled`, `watch`, `close`, `shutdown`.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mpupload.core.messages import Batch, BatchTaken, UploadResult, WorkerDone, WorkerStarted
from mpupload.run.outstanding import Outstanding, failed_report
from mpupload.run.spawning import can_fork, warm_up, worker_context

TICK = 0.2  # how long a blocking queue operation waits before it looks at the stop event again
MAX_RESPAWNS_PER_SLOT = 3


@dataclass
class _Slot:
    """One worker position in the pool; survives the death of the process that fills it."""

    worker_id: int
    handle: object = None  # mp.Process or threading.Thread
    done: bool = False
    respawns: int = 0
    batches: set[int] = field(default_factory=set)


class Supervisor:
    def __init__(self, *, worker: Callable, settings, processes: int, inline: bool,
                 on_started: Callable[[int, int], None] | None = None,
                 on_gone: Callable[[int], None] | None = None):
        """`inline`: the workers are threads of this process (small jobs, tests), else spawned processes."""
        self.worker, self.settings, self.inline = worker, settings, inline
        self.ctx = None if inline else mp.get_context("spawn")
        if self.ctx is None:
            self.tasks, self.results, self.stop = queue.Queue(maxsize=4), queue.Queue(), threading.Event()
        else:
            self.tasks, self.results = self.ctx.Queue(maxsize=processes * 2), self.ctx.Queue()
            self.stop = self.ctx.Event()
        self.slots = [_Slot(worker_id=0) for _ in range(processes)]
        self.restarts = 0
        self._on_started, self._on_gone = on_started, on_gone
        self._kwargs: dict = {}
        self._next_id = 0
        self._outstanding = Outstanding()
        self._spawn_lock = threading.Lock()
        self._lock = threading.Lock()  # hand_out runs in the feeder thread, the rest in the main thread
        self.started = False
        self.closed = False  # sentinels sent
        self.blocked = threading.Event()  # set the first time the work queue was full: the scan is ahead

    # -- the pool ----------------------------------------------------------------------------------------
    def start(self, *, lazily: bool = False, **worker_kwargs) -> None:
        """Start every worker; `worker_kwargs` go to each (the shared pace and in-flight limit). `lazily`:
        only when the first batch is handed out (a rerun that uploads nothing starts no process)."""
        self._kwargs = worker_kwargs
        if not lazily:
            if self.ctx is not None and can_fork():
                warm_up(self.settings)  # forked workers inherit boto3 and the S3 model (spawning.py)
            self._start_all()

    def _start_all(self) -> None:
        with self._lock:
            if self.started:
                return
            self.started = True
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        with self._spawn_lock:  # the feeder thread (a lazy start) and the main thread (a replacement)
            self._next_id += 1
            worker_id = self._next_id
        args = (worker_id, self.settings, self.tasks, self.results, self.stop)
        if self.ctx is None:
            handle = threading.Thread(target=self.worker, args=args, kwargs={"own_process": False, **self._kwargs},
                                      daemon=True, name=f"worker-{worker_id}")
        else:
            # Forked while this process has no other thread (the first workers of a first run), else spawned
            # (a lazy start from the planner's thread, a replacement): spawning.py. Queues and shared values
            # are the spawn context's either way.
            ctx = worker_context()
            handle = ctx.Process(target=self.worker, args=args, kwargs=self._kwargs, daemon=True,
                                 name=f"mpupload-worker-{worker_id}")
        slot.worker_id, slot.done = worker_id, False  # before its first message can arrive
        handle.start()
        # Only a started handle goes in the slot: the main thread takes a slot whose handle is not alive
        # for a dead worker.
        slot.handle = handle

    @property
    def all_done(self) -> bool:
        return all(s.done for s in self.slots)

    # -- work out ------------------------------------------------------------------------------------------
    def hand_out(self, batch: Batch) -> bool:
        """Queue a batch (blocking: the bounded queue is the scan's backpressure); False once stopping."""
        if not self.started:
            self._start_all()
        with self._lock:
            self._outstanding.add(batch.batch_id, batch.tasks)
        return self._put(batch)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.tasks.put(item, block=False)
                return True
            except queue.Full:
                self.blocked.set()
            try:
                self.tasks.put(item, timeout=TICK)
                return True
            except queue.Full:
                continue
        return False

    @property
    def idle(self) -> bool:
        """Every batch handed out has come back."""
        with self._lock:
            return not self._outstanding

    def close(self) -> None:
        """No more work: one sentinel per worker (none started: nothing to end)."""
        self.closed = True
        if not self.started:
            for slot in self.slots:
                slot.done = True
            return
        for _ in self.slots:
            self._put(None)

    # -- work back -----------------------------------------------------------------------------------------
    def next_message(self, timeout: float):
        try:
            return self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
        except queue.Empty:
            return None

    def note(self, msg) -> bool:
        """Take the pool's own messages (a batch taken, a worker started or done); False for the rest."""
        slots = {s.worker_id: s for s in self.slots}
        if isinstance(msg, BatchTaken):
            if msg.worker in slots:
                slots[msg.worker].batches.add(msg.batch_id)
        elif isinstance(msg, WorkerStarted):
            if self._on_started is not None:
                self._on_started(msg.worker, msg.pid)
        elif isinstance(msg, WorkerDone):
            if msg.worker in slots:
                slots[msg.worker].done = True
        else:
            return False
        return True

    def settled(self, results: Iterable[UploadResult]) -> None:
        """These files are finished (uploaded, skipped or failed): their batches may be complete."""
        with self._lock:
            self._outstanding.settle(results)
            live = self._outstanding.batches()
        for slot in self.slots:
            slot.batches &= live

    def watch(self, dispatch: Callable[[object], None]) -> None:
        """Replace dead workers. A dead worker's last messages may still sit in the queue: they go to
        `dispatch` first. Its unfinished files go to the replacement; past the respawn limit (or once
        stopping) they come back to `dispatch` as failures."""
        if not self.started or not any(self._dead(s) for s in self.slots):
            return
        self.drain(dispatch, wait=0.0)
        for slot in self.slots:
            if not self._dead(slot):
                continue
            if self.closed:
                slot.done = True  # nothing left to hand a replacement
            else:
                self._replace(slot, dispatch)

    @staticmethod
    def _dead(slot: _Slot) -> bool:
        # A slot without a handle is being started by the feeder thread (a lazy start): not dead.
        return not slot.done and slot.handle is not None and not slot.handle.is_alive()

    def _replace(self, slot: _Slot, dispatch: Callable[[object], None]) -> None:
        code = getattr(slot.handle, "exitcode", None)
        if self._on_gone is not None:
            self._on_gone(slot.worker_id)
        with self._lock:
            orphans = [t for b in slot.batches for t in self._outstanding.take(b)]
        slot.batches.clear()
        if slot.respawns >= MAX_RESPAWNS_PER_SLOT or self.stop.is_set():
            slot.done = True
            dispatch(failed_report(orphans, worker=slot.worker_id, reason=f"worker process died (exit code {code})"))
            return
        slot.respawns += 1
        self.restarts += 1
        self._spawn(slot)
        if orphans:
            batch = Batch(batch_id=-(slot.worker_id * 1_000_000 + slot.respawns), partition=orphans[0].partition,
                          tasks=tuple(orphans))
            self.hand_out(batch)

    def drain(self, dispatch: Callable[[object], None], *, wait: float = 0.05) -> None:
        """Every message waiting (a worker's last flush before it ended)."""
        while True:
            msg = self.next_message(wait)
            if msg is None:
                return
            dispatch(msg)

    # -- the end -------------------------------------------------------------------------------------------
    def shutdown(self, *, kill: bool) -> None:
        """Wait for the workers to end (bounded); `kill` ends worker processes at once. What they had in
        flight is left for the resume path: multipart uploads stay journaled, and the next run finds any
        small file that landed at the destination."""
        self.stop.set()
        deadline = time.monotonic() + (2.0 if kill else 10.0)
        for slot in self.slots:
            if slot.handle is None:
                continue
            if kill and hasattr(slot.handle, "kill") and slot.handle.is_alive():
                slot.handle.kill()
            slot.handle.join(timeout=max(0.0, deadline - time.monotonic()))
            if hasattr(slot.handle, "kill") and slot.handle.is_alive():
                slot.handle.kill()
                slot.handle.join(timeout=2.0)

    def release_queues(self) -> None:
        for q in (self.tasks, self.results):
            if hasattr(q, "cancel_join_thread"):
                # At exit a multiprocessing queue waits until its buffered items reach the pipe; with the
                # workers gone no one reads them, and they matter to no one: do not wait.
                q.cancel_join_thread()
