"""The coordinator: scans and plans in a feeder thread, starts the worker pool (spawn), feeds the bounded
work queue, and in its main thread consumes every message from the workers: it is the only writer to the
terminal and the only owner of the counts. It alone decides when the run stops (done, Ctrl-C, fatal).

Every file found is accounted for: each batch handed out is tracked until every one of its files has a
result; a worker that dies has its unfinished files handed to a replacement worker.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO

from .concurrency import MIN_INFLIGHT, InflightController, SharedLimit, initial_inflight
from .config import Settings
from .errors import FatalError
from .journal import Journal, default_journal_path
from .limits import Limits, PartitionPause
from .messages import (
    FAILED,
    SKIP_JOURNAL,
    SKIP_SAME_SIZE,
    SKIPPED,
    UPLOADED,
    Batch,
    BatchTaken,
    Fatal,
    FileTask,
    Notice,
    ScanProgress,
    UploadResult,
    WorkerDone,
    WorkerReport,
    WorkerStarted,
)
from .monitor import ResourceMonitor
from .multipart import sweep_stale
from .pacing import Pace
from .plan import Batcher, key_problem, size_problem, task_for
from .remote import ProbeResult, destination_is_empty, list_destination, make_client
from .report import Reporter
from .scan import FileEntry, Matcher, Skipped, scan
from .spawning import can_fork, warm_up, worker_context
from .stats import Snapshot, Stats
from .stopping import ForcedStop, StopRequests, exit_code_for
from .worker import run_worker

_TICK = 0.2  # how often the main loop wakes when no message arrives
_MAX_RESPAWNS_PER_SLOT = 3
_PROBE_EVERY = 1.0  # seconds between probes of an endpoint that stopped answering


@dataclass
class Outcome:
    snapshot: Snapshot
    failures: list[UploadResult]
    interrupted: str | bool = False  # the name of the signal that stopped the run
    fatal: FatalError | None = None
    early: bool = False  # stopped by the preflight probe, before any file was looked at
    halted: str | None = None  # the run stopped itself, e.g. an outage outlasted --outage-timeout
    signum: int | None = None  # the signal that stopped it (SIGINT, SIGTERM, SIGHUP)

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return 3
        if self.interrupted:
            return exit_code_for(self.signum or signal.SIGINT)
        if self.halted:
            return 1
        return 1 if self.snapshot.failed or self.snapshot.pending else 0


@dataclass
class _Slot:
    """One worker position in the pool; survives the death of the process that fills it."""

    worker_id: int
    handle: object = None  # mp.Process or threading.Thread
    done: bool = False
    respawns: int = 0
    batches: set[int] = field(default_factory=set)


class Coordinator:
    def __init__(self, settings: Settings, reporter: Reporter, *, failures_file: IO[str] | None = None):
        journal = settings.journal or str(default_journal_path(
            source=settings.source, endpoint_url=settings.endpoint_url, bucket=settings.bucket, prefix=settings.prefix))
        self.s = replace(settings, journal=journal, run_id=uuid.uuid4().hex)
        self.journal = Journal(journal)
        self.journal.set_info(source=self.s.source, bucket=self.s.bucket, prefix=self.s.prefix,
                              endpoint=self.s.endpoint_url or "aws")
        self._to_journal: list[tuple[str, str, int, int, int, str, str]] = []
        self.reporter = reporter
        self.failures_file = failures_file
        self.stats = Stats()
        self._noticed: set[str] = set()
        self.monitor = ResourceMonitor()
        self._outstanding: dict[int, dict[str, FileTask]] = {}
        self._lock = threading.Lock()
        self._fatal: FatalError | None = None
        self._interrupted: str | bool = False
        self._halted: str | None = None
        self._next_worker_id = 0
        self._pace: Pace | None = None
        self._limit = SharedLimit(MIN_INFLIGHT)  # files in flight per worker process (concurrency.py)
        self._latency: float | None = None  # the preflight's measure of the link
        self._destination_empty = False  # the preflight found nothing under the prefix
        self._pauser: PartitionPause | None = None  # HOOK(operator): --partition-pause

    # -- the feeder thread: scan -> plan -> batches -> work queue -------------------------------------
    def _feed(self, tasks, results, stop) -> None:
        journal = None
        try:
            journal = Journal(self.s.journal)
            check_remote = self._load_destination(journal, results)
            rx = re.compile(self.s.year_pattern) if self.s.year_pattern else None
            batcher = Batcher(max_files=self.s.batch_files, max_bytes=self.s.batch_bytes,
                              group=self.s.partition_pause > 0)  # HOOK(operator): runs of one partition
            found_files = found_bytes = 0
            local: list[UploadResult] = []
            for item in scan(self.s.source, follow_symlinks=self.s.follow_symlinks,
                             matcher=Matcher(self.s.include, self.s.exclude)):
                if stop.is_set():
                    return
                found_files += 1
                if isinstance(item, Skipped):
                    local.append(UploadResult(rel=item.rel, key="", status=SKIPPED, reason=item.reason))
                    continue
                assert isinstance(item, FileEntry)
                found_bytes += item.size
                task = task_for(item, prefix=self.s.prefix, year_pattern=rx,
                                key_template=self.s.key_template)  # HOOK(operator): --key-template
                problem = key_problem(task.key) or size_problem(task.size)
                if problem:
                    local.append(UploadResult(rel=task.rel, key=task.key, status=FAILED, reason=problem,
                                              size=task.size, partition=task.partition))
                    continue
                decided = self._already_stored(task, journal, check_remote)
                if isinstance(decided, UploadResult):
                    local.append(decided)
                    if len(local) >= 512:
                        self._report_found(results, found_files, found_bytes, local)
                        found_files = found_bytes = 0
                    continue
                task = decided
                for batch in batcher.add(task):
                    found_files, found_bytes = self._hand_out(batch, tasks, results, stop, found_files,
                                                              found_bytes, local)
            for batch in batcher.flush():
                found_files, found_bytes = self._hand_out(batch, tasks, results, stop, found_files,
                                                          found_bytes, local)
            self._report_found(results, found_files, found_bytes, local)
            results.put(ScanProgress(files=0, nbytes=0, done=True))
        except FatalError as exc:  # e.g. the journal cannot be written
            results.put(Fatal(worker=-1, kind=exc.kind, message=exc.message))
        except Exception as exc:  # the source vanished, a bug: stop the run with the reason
            results.put(ScanProgress(files=0, nbytes=0, done=True, error=f"{type(exc).__name__}: {exc}"))
        finally:
            if journal is not None:
                journal.close()

    def _load_destination(self, journal: Journal, results) -> bool:
        """List the destination into the journal's `remote` table when it can matter: a skip mode that
        looks at the destination, and a destination that is not empty. Returns whether to consult it."""
        if self.s.skip_existing == "never":
            return False
        # Nothing under PREFIX (the preflight's listing) means nothing under PREFIX/: no client, no request.
        client = None if self._destination_empty else make_client(self.s)
        journal.clear_remote()
        if client is None or destination_is_empty(client, bucket=self.s.bucket, prefix=self.s.prefix):
            if journal.count_stored():
                # The journal remembers objects that are not there (the bucket was emptied, or the endpoint
                # is another server by the same name): trusting it would skip everything and lose it all.
                results.put(Notice(f"the journal lists {journal.count_stored()} stored objects but the "
                                   "destination is empty: the journal was reset and everything is uploaded"))
                journal.forget_stored()
            return False
        if self.s.skip_existing == "journal":
            return False
        rows: list[tuple[str, int, str]] = []
        for row in list_destination(client, bucket=self.s.bucket, prefix=self.s.prefix, threads=self.s.threads):
            rows.append(row)
            if len(rows) >= 5000:
                journal.add_remote(rows)
                rows.clear()
        journal.add_remote(rows)
        return True

    def _already_stored(self, task: FileTask, journal: Journal, check_remote: bool) -> FileTask | UploadResult:
        """A skip result when the journal (or, by size, the destination) says the file is there; else the
        task, marked with the size of any object at its key so the worker can compare digests."""
        mode = self.s.skip_existing
        if mode == "never":
            return task
        row = journal.stored(task.key)
        if row is not None and (row.size, row.mtime_ns, row.inode) == (task.size, task.mtime_ns, task.inode):
            return UploadResult(rel=task.rel, key=task.key, status=SKIPPED, size=task.size,
                                reason=SKIP_JOURNAL, partition=task.partition)
        if not check_remote:
            return task
        remote_size = journal.remote_size(task.key)
        if remote_size is None or remote_size != task.size:
            return task
        if mode == "size":
            return UploadResult(rel=task.rel, key=task.key, status=SKIPPED, size=task.size,
                                reason=SKIP_SAME_SIZE, partition=task.partition)
        return replace(task, remote_size=remote_size)

    def _census(self, stop) -> None:
        """Count what the run covers, ahead of the feeder (which the bounded queue holds back), so the
        progress view has a total and an ETA early. Metadata only; a second walk costs little next to uploads."""
        files = nbytes = 0
        try:
            for item in scan(self.s.source, follow_symlinks=self.s.follow_symlinks,
                             matcher=Matcher(self.s.include, self.s.exclude)):
                if stop.is_set():
                    return
                files += 1
                nbytes += getattr(item, "size", 0)
                if files % 10_000 == 0:
                    self.stats.census(files, nbytes, done=False)
            self.stats.census(files, nbytes, done=True)
        except Exception:  # only an estimate: the feeder's own scan reports real trouble
            return

    def _report_found(self, results, files: int, nbytes: int, local: list[UploadResult]) -> None:
        if files or nbytes:
            results.put(ScanProgress(files=files, nbytes=nbytes))
        if local:
            results.put(WorkerReport(worker=-1, results=tuple(local), bytes_sent=0))
            local.clear()

    def _hand_out(self, batch: Batch, tasks, results, stop, files: int, nbytes: int,
                  local: list[UploadResult]) -> tuple[int, int]:
        # Counts go out before the batch so "found" never trails "done".
        self._report_found(results, files, nbytes, local)
        self._partition_pause(results).before(batch.partition, stop)  # HOOK(operator): --partition-pause
        with self._lock:
            self._outstanding[batch.batch_id] = {t.rel: t for t in batch.tasks}
        self._put(tasks, batch, stop)
        return 0, 0

    @staticmethod
    def _put(tasks, item, stop) -> bool:
        """Blocking put that still notices a stop (the queue is bounded: backpressure on the scan)."""
        while not stop.is_set():
            try:
                tasks.put(item, timeout=_TICK)
                return True
            except queue.Full:
                continue
        return False

    # -- workers ---------------------------------------------------------------------------------------
    def _start_worker(self, slot: _Slot, ctx, tasks, results, stop) -> None:
        self._next_worker_id += 1
        slot.worker_id = self._next_worker_id
        slot.done = False
        if ctx is None:
            slot.handle = threading.Thread(target=run_worker, args=(slot.worker_id, self.s, tasks, results, stop),
                                           kwargs={"own_process": False, "pace": self._pace, "limit": self._limit},
                                           daemon=True,
                                           name=f"worker-{slot.worker_id}")
        else:
            slot.handle = ctx.Process(target=run_worker, args=(slot.worker_id, self.s, tasks, results, stop),
                                      kwargs={"pace": self._pace, "limit": self._limit}, daemon=True,
                                      name=f"mpupload-worker-{slot.worker_id}")
        slot.handle.start()

    def _worker_died(self, slot: _Slot, ctx, tasks, results, stop) -> None:
        """Hand the dead worker's unfinished files to a replacement (bounded), else fail them."""
        code = getattr(slot.handle, "exitcode", None)
        self.monitor.forget(f"worker-{slot.worker_id}")
        with self._lock:
            orphans = [t for b in slot.batches for t in self._outstanding.pop(b, {}).values()]
        slot.batches.clear()
        if slot.respawns >= _MAX_RESPAWNS_PER_SLOT or stop.is_set():
            slot.done = True
            for t in orphans:
                self._on_result(UploadResult(rel=t.rel, key=t.key, status=FAILED, size=t.size,
                                             reason=f"worker process died (exit code {code})",
                                             partition=t.partition))
            return
        slot.respawns += 1
        self.stats.worker_restarts += 1
        self._start_worker(slot, ctx, tasks, results, stop)
        if orphans:
            batch = Batch(batch_id=-(slot.worker_id * 1_000_000 + slot.respawns), partition=orphans[0].partition,
                          tasks=tuple(orphans))
            with self._lock:
                self._outstanding[batch.batch_id] = {t.rel: t for t in orphans}
            self._put(tasks, batch, stop)

    # -- outages -------------------------------------------------------------------------------------
    def _probe_outages(self, pace: Pace, stop) -> None:
        """While workers hold for an outage, probe the endpoint (HeadBucket, short timeouts) until it
        answers; past --outage-timeout, stop the run with word on how to resume."""
        from botocore.exceptions import ClientError

        from .remote import describe_destination, make_client

        client = None
        while not stop.is_set():
            since = pace.outage_since
            if not since:
                stop.wait(_TICK)
                continue
            down_for = time.monotonic() - since
            if down_for > self.s.outage_timeout:
                self._halted = (f"the S3 endpoint {describe_destination(self.s)} has not answered for "
                                f"{down_for:.0f} s (--outage-timeout {self.s.outage_timeout:g}); once it is "
                                "back, run the same command again to resume")
                stop.set()
                return
            try:
                if client is None:
                    client = make_client(replace(self.s, connect_timeout=2.0, read_timeout=5.0, retries=1))
                client.head_bucket(Bucket=self.s.bucket)
                pace.endpoint_answered()
            except ClientError:
                pace.endpoint_answered()  # any HTTP answer means it is back; errors are the workers' to sort
            except Exception:
                stop.wait(_PROBE_EVERY)

    # -- the main loop ---------------------------------------------------------------------------------
    def _on_result(self, r: UploadResult) -> None:
        self.stats.add(r)
        if r.digest and r.status in (UPLOADED, SKIPPED):
            # Only what S3 confirmed (or a digest match proved) goes in the journal.
            self._to_journal.append((r.key, r.rel, r.size, r.mtime_ns, r.inode, r.digest, r.etag))
        if r.batch_id:
            with self._lock:
                remaining = self._outstanding.get(r.batch_id)
                if remaining is not None:
                    remaining.pop(r.rel, None)
                    if not remaining:
                        del self._outstanding[r.batch_id]
        self.reporter.result(r)
        if r.status == FAILED and self.failures_file is not None:
            try:
                self.failures_file.write(json.dumps({"path": r.rel, "key": r.key, "reason": r.reason, "size": r.size,
                                                     "attempts": r.attempts}, ensure_ascii=False) + "\n")
                self.failures_file.flush()
            except OSError as exc:
                name = getattr(self.failures_file, "name", "--failures-file")
                self.failures_file = None
                if self._fatal is None:  # the list of failures is what the user asked for: without it, stop
                    self._fatal = FatalError("failures-file", f"cannot write the failures file {name}: {exc}")

    def _record_in_journal(self) -> bool:
        """Journal what S3 confirmed, one transaction per message. A journal that cannot be written (disk
        full, read-only) stops the run: False."""
        if not self._to_journal:
            return True
        try:
            self.journal.record_stored(self._to_journal)
        except FatalError as exc:
            if self._fatal is None:
                self._fatal = exc
            self._to_journal.clear()  # the next run finds these at the destination
            return False
        self._to_journal.clear()
        return True

    def _handle(self, msg, slots: dict[int, _Slot], stop) -> None:
        if isinstance(msg, WorkerReport):
            self.stats.sent(msg.bytes_sent)
            self.stats.transport_counts(msg.transport)
            for r in msg.results:
                self._on_result(r)
            if not self._record_in_journal():
                stop.set()
        elif isinstance(msg, ScanProgress):
            self.stats.found(msg.files, msg.nbytes)
            if msg.done:
                self.stats.scan_done = True
                if msg.error and self._fatal is None:
                    self._fatal = FatalError("scan", f"scanning {self.s.source} failed: {msg.error}")
                    stop.set()
        elif isinstance(msg, BatchTaken):
            if msg.worker in slots:
                slots[msg.worker].batches.add(msg.batch_id)
        elif isinstance(msg, WorkerStarted):
            self.monitor.add_worker(f"worker-{msg.worker}", msg.pid)
        elif isinstance(msg, WorkerDone):
            if msg.worker in slots:
                slots[msg.worker].done = True
        elif isinstance(msg, Notice):
            if msg.text not in self._noticed:  # every worker process may say the same thing: say it once
                self._noticed.add(msg.text)
                self.reporter.warn(msg.text)
        elif isinstance(msg, Fatal):
            if self._fatal is None:
                self._fatal = FatalError(msg.kind, msg.message)
            stop.set()

    def _finished_batches(self, slots: dict[int, _Slot]) -> None:
        with self._lock:
            live = set(self._outstanding)
        for slot in slots.values():
            slot.batches &= live

    def run(self, *, preflight: Callable[[Settings], ProbeResult] | None = None) -> Outcome:
        """Upload everything; `preflight` (the fatal-error probe) runs while the workers start up, since
        spawning them and importing boto3 costs about as long as the probe's round trips. Besides the link's
        latency it says whether its listing found nothing under the prefix: then no other listing is needed.
        SIGINT, SIGTERM and SIGHUP stop the run gracefully (stopping.py); a second one stops it at once."""
        with StopRequests() as signals:
            return self._run(signals, preflight)

    def _run(self, signals: StopRequests, preflight: Callable[[Settings], ProbeResult] | None) -> Outcome:
        nproc = self.s.effective_processes
        inline = self.s.processes == 0
        ctx = None if inline else mp.get_context("spawn")
        if inline:
            tasks, results, stop = queue.Queue(maxsize=4), queue.Queue(), threading.Event()
        else:
            tasks, results, stop = ctx.Queue(maxsize=nproc * 2), ctx.Queue(), ctx.Event()
        self._pace = Pace(ctx=ctx, base_delay=self.s.backoff_base / 4, max_delay=self.s.backoff_cap,
                          limits=Limits(max_bandwidth=self.s.max_bandwidth,  # HOOK(operator): shared limits
                                        max_rps=self.s.max_requests_per_second, ctx=ctx))
        prober = threading.Thread(target=self._probe_outages, args=(self._pace, stop), daemon=True, name="prober")
        feeder = threading.Thread(target=self._feed, args=(tasks, results, stop), daemon=True, name="feeder")
        slot_list = [_Slot(worker_id=0) for _ in range(nproc)]
        self._limit = SharedLimit(MIN_INFLIGHT, ctx=ctx)
        controller = InflightController(self._limit, cap=self.s.max_inflight) if self.s.adaptive else None
        force = False
        try:
            fork = not inline and can_fork()
            if fork:
                warm_up(self.s)  # the forked workers inherit boto3 and the S3 model (spawning.py)
            for slot in slot_list:
                self._start_worker(slot, worker_context(fork=fork) if fork else ctx, tasks, results, stop)
            prober.start()  # the first thread: only now, after the forks
            if preflight is not None:
                try:
                    probe = preflight(self.s)
                    self._latency, self._destination_empty = probe.latency, probe.empty
                except FatalError as exc:
                    stop.set()
                    self._stop_workers(slot_list, kill=True)  # they hold nothing yet
                    self.journal.close()
                    return Outcome(snapshot=self.stats.snapshot(), failures=[], fatal=exc, early=True)
            feeder.start()
            threading.Thread(target=self._census, args=(stop,), daemon=True, name="census").start()
            if controller is not None:
                self._limit.value = initial_inflight(self._latency, cap=self.s.max_inflight)
                link = f"round trip {self._latency * 1000:.0f} ms" if self._latency is not None else "round trip unknown"
                how = f"{self._limit.value} files in flight each to start ({link}; follows the link)"
            else:
                how = f"{self.s.threads} threads each"
            self.reporter.start(f"Uploading {self.s.source} to s3://{self.s.bucket}/{self.s.prefix} with "
                                f"{nproc} process(es), {how}; journal {self.s.journal}")
            signals.graceful = True
            force = self._main_loop(signals, slot_list, ctx, tasks, results, stop, controller)
        except ForcedStop:
            force = True
            self._interrupted = self._interrupted or signals.name or "signal"
        stop.set()
        try:
            self._stop_workers(slot_list, kill=force)
            self._drain_late(results, {s.worker_id: s for s in slot_list}, stop)
        except ForcedStop:  # the second signal came during the orderly shutdown: finish it the short way
            self._stop_workers(slot_list, kill=True)
        for q in (tasks, results):
            if hasattr(q, "cancel_join_thread"):
                # At exit a multiprocessing queue waits until its buffered items reach the pipe; with the
                # workers gone no one reads them, and they matter to no one: do not wait.
                q.cancel_join_thread()
        if feeder.is_alive():
            feeder.join(timeout=5)
        prober.join(timeout=10)
        self._record_in_journal()  # anything a cut-short shutdown left unwritten
        finished = (not self._interrupted and self._fatal is None and self._halted is None and self.stats.scan_done)
        # (Write probes a killed run left behind are aborted by the next preflight, beside its own probes.)
        if finished and (self.journal.multipart_not_in_run(self.s.run_id) or self.journal.aborted()):
            sweep_stale(make_client(self.s), bucket=self.s.bucket, journal=self.journal, run_id=self.s.run_id)
        self.journal.close()
        # The pace's counts ride along with the resource sample: how often the run slowed or held.
        link = {"inflight_limit": self._limit.value if self.s.adaptive else self.s.threads,
                "latency_ms": round(self._latency * 1000, 1) if self._latency is not None else None}
        snap = self.stats.snapshot({**self._tick_resources(), **link})  # HOOK(operator): same sample as a tick
        self.reporter.finish(snap, self.stats.failures, interrupted=self._interrupted,
                             fatal=self._fatal.message if self._fatal else self._halted)
        return Outcome(snapshot=snap, failures=self.stats.failures, interrupted=self._interrupted, fatal=self._fatal,
                       halted=self._halted, signum=signals.signum)

    def _main_loop(self, signals: StopRequests, slot_list: list[_Slot], ctx, tasks, results, stop,
                   controller: InflightController | None = None) -> bool:
        """Consume results, replace dead workers, end the pool when all work came back. Returns True when
        the workers must be killed: they did not finish their requests in flight within --stop-grace."""
        sentinels_sent = False
        last_draw = 0.0
        stop_by: float | None = None  # once stopping: the end of the grace period
        while True:
            if signals.requested and not self._interrupted:
                self._interrupted = signals.name or "signal"
                stop.set()
                self.reporter.warn(f"{self._interrupted}: stopping; requests in flight have {self.s.stop_grace:g} s "
                                   "to finish (a second signal stops at once)")
            if self._fatal is not None and not stop.is_set():
                stop.set()
            if stop_by is None and (self._interrupted or stop.is_set()):
                stop_by = time.monotonic() + self.s.stop_grace
            if stop_by is not None and time.monotonic() > stop_by:
                return True
            slots = {s.worker_id: s for s in slot_list}
            try:
                msg = results.get(timeout=_TICK)
            except queue.Empty:
                msg = None
            if msg is not None:
                self._handle(msg, slots, stop)
                # Drain whatever else is waiting before drawing: drawing is the slow part.
                for _ in range(1000):
                    try:
                        self._handle(results.get_nowait(), slots, stop)
                    except queue.Empty:
                        break
            if any(not s.done and not s.handle.is_alive() for s in slot_list):
                # A worker's last messages may still sit in the queue: read them before judging.
                self._drain_late(results, slots, stop, wait=0.0)
                for slot in slot_list:
                    if not slot.done and not slot.handle.is_alive():
                        if sentinels_sent:
                            slot.done = True  # nothing left to hand a replacement
                        else:
                            self._worker_died(slot, ctx, tasks, results, stop)
            self._finished_batches(slots)
            with self._lock:
                all_handed_back = self.stats.scan_done and not self._outstanding
            if all_handed_back and not sentinels_sent:
                for _ in slot_list:
                    self._put(tasks, None, stop)
                sentinels_sent = True
            if all(s.done for s in slot_list):
                return False
            if controller is not None and not stop.is_set():
                controller.observe(done=self.stats.counts[UPLOADED], throttles=self._pace.counts()["throttles"])
            now = time.monotonic()
            if now - last_draw >= self.s.progress_interval:
                last_draw = now
                self.reporter.progress(self.stats.snapshot(self._tick_resources()))  # HOOK(operator): + pace, limit

    def _partition_pause(self, results) -> PartitionPause:
        """HOOK(operator): --partition-pause, made on first use (the feeder thread is its only user)."""
        if self._pauser is None:
            def idle() -> bool:
                with self._lock:
                    return not self._outstanding

            self._pauser = PartitionPause(self.s.partition_pause, idle=idle,
                                          notify=lambda text: results.put(Notice(text)))
        return self._pauser

    def _tick_resources(self) -> dict:
        """HOOK(operator): the tick's resource sample plus the pace's counts (throttles, outage holds, limit
        waits) and the in-flight limit, so the live view and the run report show them over time."""
        extra = self._pace.counts() if self._pace is not None else {}
        if self._pauser is not None:
            extra["partition_pauses"] = self._pauser.pauses
        return {**self.monitor.sample(), **extra,
                "inflight_limit": self._limit.value if self.s.adaptive else self.s.threads}

    @staticmethod
    def _stop_workers(slot_list: list[_Slot], *, kill: bool) -> None:
        """Wait for the workers to end (bounded); `kill` ends worker processes at once. What they had in
        flight is left for the resume path: multipart uploads stay journaled, and the next run finds any
        small file that landed at the destination."""
        deadline = time.monotonic() + (2.0 if kill else 10.0)
        for slot in slot_list:
            if slot.handle is None:
                continue
            if kill and hasattr(slot.handle, "kill") and slot.handle.is_alive():
                slot.handle.kill()
            slot.handle.join(timeout=max(0.0, deadline - time.monotonic()))
            if hasattr(slot.handle, "kill") and slot.handle.is_alive():
                slot.handle.kill()
                slot.handle.join(timeout=2.0)

    def _drain_late(self, results, slots, stop, *, wait: float | None = None) -> None:
        """Messages a worker flushed just before it ended. A worker that has ended wrote everything to the
        pipe before it exited (a thread worker puts synchronously), so only the feeder thread's last words
        can still be on their way (its queue writes go through a background thread), and only until its
        end-of-scan message is in: a fixed wait otherwise only delays the exit."""
        if wait is None:
            wait = 0.0 if self.stats.scan_done else 0.05
        for _ in range(1_000_000):
            try:
                msg = results.get(timeout=wait) if wait else results.get_nowait()
            except queue.Empty:
                return
            self._handle(msg, slots, stop)
