"""The coordinator: the conductor of a run. It owns the run's lifetime (the journal's lock, the signals, the
preflight, the grace period on a stop, the end-of-run sweep) and joins three parts that know nothing of each
other:

- the planner (planner.py), in a feeder thread: source -> skip decisions -> batches;
- the supervisor (supervisor.py): the worker pool, batches out, worker death and replacement, sentinels;
- the ledger (ledger.py), in the main thread: every message -> counts, journal, sink, failures file.

The main thread reads every message: it is the only writer to the terminal and the only owner of the counts.
It alone decides when the run stops (done, a signal, fatal).

A little over ~300 lines: the run's lifetime in one place (assemble, start, main loop, finish); what could
leave has left (outcome.py, executors.py, mirror.py, limitcontrol.py, outageprobe.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO

from mpupload.core.errors import FatalError
from mpupload.core.hashing import AUTO, XXHASH128
from mpupload.core.messages import FAILED, UPLOADED, Notice, WorkerReport
from mpupload.core.stopping import ForcedStop, StopRequests
from mpupload.observe.eventlog import close_log, open_log
from mpupload.observe.monitor import ResourceMonitor
from mpupload.observe.sinks import RunStart, Sink
from mpupload.observe.stats import Stats
from mpupload.pace.concurrency import MIN_INFLIGHT, InflightController, SharedLimit, initial_inflight
from mpupload.pace.limits import Limits, PartitionPause
from mpupload.pace.pacing import Pace
from mpupload.run.executors import Executor, make_executor
from mpupload.run.ledger import Ledger
from mpupload.run.limitcontrol import LimitControl
from mpupload.run.mirror import mirror_after_run
from mpupload.run.outageprobe import probe_outages
from mpupload.run.outcome import Outcome
from mpupload.run.planner import Planner, count_source
from mpupload.run.supervisor import TICK
from mpupload.s3.client import make_client
from mpupload.s3.listing import DestinationIndex
from mpupload.s3.multipart import sweep_stale
from mpupload.s3.preflight import ProbeResult
from mpupload.s3.xxprobe import SharedVerdict
from mpupload.settings.config import Settings
from mpupload.state.journal import Journal, journal_for
from mpupload.state.runlock import RunLock, network_fs_warning


@dataclass
class _Parts:
    """What one run assembles before it starts: the executor and the threads beside the main loop."""
    sup: Executor
    verdict: SharedVerdict | None  # --checksum auto: does the server check XXHASH128? (xxprobe.py)
    full_verdict: SharedVerdict | None  # can multipart uploads end with a FULL_OBJECT CRC64NVME? (fullprobe.py)
    controller: InflightController | None
    prober: threading.Thread
    feeder: threading.Thread


class Coordinator:
    def __init__(self, settings: Settings, sink: Sink, *, failures_file: IO[str] | None = None):
        """Raises runlock.JournalBusy when another run holds the journal (before anything is touched)."""
        journal = journal_for(settings)
        self.s = replace(settings, journal=journal, run_id=uuid.uuid4().hex)
        self.lock = RunLock(journal)
        self.lock.acquire()
        try:
            self.journal = Journal(journal)
            self.journal.set_info(source=self.s.source, bucket=self.s.bucket, prefix=self.s.prefix,
                                  endpoint=self.s.endpoint_url or "aws")
            log = open_log(self.s)  # --log-file: its start line
        except BaseException:
            self.lock.release()
            raise
        self._fs_warning = network_fs_warning(journal)
        # Called with the outcome while the lock is still held: the run's last word (the progress document's
        # end) must be written before the lock goes, or `status` would read a free lock beside a document
        # that still says "running" and report a run that ended well as killed.
        self.on_end: Callable[[Outcome], None] | None = None
        self._journal_knows_files = self.journal.count_stored() > 0
        self._sink = sink
        self.stats = Stats()
        self.monitor = ResourceMonitor()
        self.ledger = Ledger(journal=self.journal, stats=self.stats, sink=sink, source=self.s.source,
                             failures_file=failures_file, log=log)
        self._interrupted: str | bool = False
        self._halted: str | None = None
        self._pace: Pace | None = None
        self._pauser: PartitionPause | None = None  # --partition-pause
        self._limits: LimitControl | None = None
        self._limit = SharedLimit(MIN_INFLIGHT)  # files in flight per worker process (concurrency.py)
        self._latency: float | None = None  # the preflight's measure of the link
        self._dest_empty = False  # the preflight found nothing under the prefix: the planner need not look
        self._probe: ProbeResult | None = None

    @property
    def sink(self) -> Sink:
        return self._sink

    @sink.setter
    def sink(self, sink: Sink) -> None:
        # One fan-out for the whole run: the ledger emits results and warnings to the same sink (the CLI
        # adds the progress file and the run recorder after the coordinator has settled the journal path).
        self._sink = sink
        self.ledger.sink = sink

    @property
    def _fatal(self) -> FatalError | None:
        return self.ledger.fatal

    # -- the planner's threads -------------------------------------------------------------------------
    def _planner(self, sup: Executor) -> Planner:
        s = self.s
        return Planner(s, open_journal=lambda: Journal(s.journal),
                       open_destination=lambda: DestinationIndex(make_client=lambda: make_client(s), bucket=s.bucket,
                                                                 prefix=s.prefix, stop=sup.stop,
                                                                 known_empty=self._dest_empty))

    def _census(self, sup: Executor) -> None:
        """Count the source ahead of the planner for the progress view's total, but only once the planner is
        held back by the full work queue: a rerun that skips nearly everything would pay for a second walk."""
        while not sup.blocked.wait(TICK):
            if sup.stop.is_set() or self.stats.scan_done:
                return
        count_source(self.s, on_count=self.stats.census, stop=sup.stop)

    # -- the run -----------------------------------------------------------------------------------------
    def run(self, *, preflight: Callable[[Settings], float | None] | None = None) -> Outcome:
        """Upload everything; `preflight` (the fatal-error probe) runs while the workers start up, since
        spawning them and importing boto3 costs about as long as the probe's round trips.
        SIGINT, SIGTERM and SIGHUP stop the run gracefully (stopping.py); a second one stops it at once."""
        outcome = None
        try:
            with StopRequests() as signals:
                outcome = self._run(signals, preflight)
                return outcome
        finally:
            log, self.ledger.log = self.ledger.log, None
            close_log(log, run_id=self.s.run_id, outcome=outcome, warn=self._sink.warn)
            try:
                if outcome is not None and self.on_end is not None:
                    self.on_end(outcome)
            finally:
                self.lock.release()

    def _run(self, signals: StopRequests, preflight: Callable[[Settings], ProbeResult] | None) -> Outcome:
        parts = self._assemble()
        force = False
        try:
            early = self._start(parts, preflight)
            if early is not None:
                return early
            signals.graceful = True
            force = self._main_loop(signals, parts.sup, parts.controller)
        except ForcedStop:
            force = True
            self._interrupted = self._interrupted or signals.name or "signal"
        return self._finish(parts, signals, force=force)

    def _assemble(self) -> _Parts:
        """The executor and everything shared with its workers, built before any of them starts."""
        nproc = self.s.effective_processes
        # The same planner and ledger whichever executor runs the batches (executors.py; dask: cluster/).
        sup = make_executor(self.s, processes=nproc, on_gone=self._worker_gone,
                            on_started=lambda w, pid: self.monitor.add_worker(f"worker-{w}", pid))
        stop = sup.stop
        self._pace = Pace(ctx=sup.ctx, base_delay=self.s.backoff_base / 4, max_delay=self.s.backoff_cap,
                          limits=Limits(max_bandwidth=self.s.max_bandwidth,  # shared limits (limits.py)
                                        max_rps=self.s.max_requests_per_second, ctx=sup.ctx))
        self._limit = SharedLimit(MIN_INFLIGHT, ctx=sup.ctx)
        # Limits that change while the run goes: `mpupload limit`, --limit-schedule (limitcontrol.py).
        self._limits = LimitControl(self.s, self._pace.limits)
        pause = PartitionPause(self.s.partition_pause, idle=lambda: sup.idle,
                               notify=lambda text: sup.results.put(Notice(text)))
        self._pauser = pause

        def hand_out(batch) -> bool:
            pause.before(batch.partition, stop)  # --partition-pause: a quiet link between years
            return sup.hand_out(batch)

        return _Parts(
            sup=sup,
            # --checksum auto: one probe for the run, in the preflight; the workers wait for its verdict.
            verdict=SharedVerdict(ctx=sup.ctx) if self.s.checksum.upper() == AUTO else None,
            full_verdict=SharedVerdict(ctx=sup.ctx) if self.s.checksum.upper() in (AUTO, XXHASH128) else None,
            controller=InflightController(self._limit, cap=self.s.max_inflight) if self.s.adaptive else None,
            prober=threading.Thread(target=probe_outages, args=(self.s, self._pace, stop), daemon=True,
                                    name="prober", kwargs={"on_halt": self._halt}),
            feeder=threading.Thread(target=self._planner(sup).run, daemon=True, name="planner",
                                    kwargs={"post": sup.results.put, "hand_out": hand_out, "stop": stop}))

    def _start(self, parts: _Parts, preflight: Callable[[Settings], ProbeResult] | None) -> Outcome | None:
        """Workers, prober, preflight, planner, in that order; an Outcome when the preflight finds a fatal
        condition (nothing was looked at yet)."""
        sup, verdict, full_verdict = parts.sup, parts.verdict, parts.full_verdict
        # A rerun (the journal knows files) may find nothing to upload: its workers start with the first
        # batch. A first run starts them now, while the preflight's round trips are under way, forked
        # before this process starts any thread (spawning.py).
        sup.start(lazily=self._journal_knows_files, pace=self._pace, limit=self._limit, checksum_verdict=verdict,
                  full_verdict=full_verdict)
        parts.prober.start()
        if preflight is None:
            for v in (verdict, full_verdict):
                if v is not None:
                    v.ask_workers()
        if preflight is not None:
            try:
                probe = preflight(self.s, checksum_verdict=verdict, full_verdict=full_verdict)
                self._probe, self._latency, self._dest_empty = probe, probe.latency, probe.empty
            except FatalError as exc:
                sup.shutdown(kill=True)  # they hold nothing yet
                self.journal.close()
                return Outcome(snapshot=self.stats.snapshot(), failures=[], fatal=exc, early=True)
        parts.feeder.start()
        threading.Thread(target=self._census, args=(sup,), daemon=True, name="census").start()
        if parts.controller is not None:
            self._limit.value = initial_inflight(self._latency, cap=self.s.max_inflight)
            link = f"round trip {self._latency * 1000:.0f} ms" if self._latency is not None else "round trip unknown"
            how = f"{self._limit.value} files in flight each to start ({link}; follows the link)"
        else:
            how = f"{self.s.threads} threads each"
        self.sink.start(RunStart(source=self.s.source, destination=f"s3://{self.s.bucket}/{self.s.prefix}",
                                 pool=sup.where, concurrency=how, journal=self.s.journal))
        if self._fs_warning:
            self.ledger.warn(self._fs_warning)
        return None

    def _finish(self, parts: _Parts, signals: StopRequests, *, force: bool) -> Outcome:
        """Stop the workers (killed when `force`), take their last words, tidy up, and say how it ended."""
        sup = parts.sup
        sup.stop.set()
        try:
            sup.shutdown(kill=force)
            sup.drain(self._dispatch_to(sup))
        except ForcedStop:  # the second signal came during the orderly shutdown: finish it the short way
            force = True
            sup.shutdown(kill=True)
        sup.release_queues()
        if parts.feeder.is_alive():
            parts.feeder.join(timeout=5)
        parts.prober.join(timeout=10)
        self.ledger.flush()  # anything a cut-short shutdown left unwritten
        self.ledger.flush_log()  # --log-file's lines, while a failure can still decide the exit code
        if self._probe is not None and not force:
            # The probes' own objects and uploads go before the run ends (not after a second signal: that
            # means now; the next run's sweep aborts a probe upload left behind).
            self._probe.finish_cleanup()
        self.stats.worker_restarts = sup.restarts
        finished = (not self._interrupted and self._fatal is None and self._halted is None and self.stats.scan_done)
        # (Write probes a killed run left behind are aborted by the next preflight, beside its own probes.)
        if finished and (self.journal.uploads_left_behind(self.s.run_id) or self.journal.aborted_uploads()):
            sweep_stale(make_client(self.s), bucket=self.s.bucket, journal=self.journal, run_id=self.s.run_id)
        if self.s.delete and not force:
            clean = finished and not self.stats.counts[FAILED] and not self.stats.snapshot().pending
            self.stats.mirror = mirror_after_run(self.s, clean=clean, journal=self.journal, log=self.ledger.log,
                                                 warn=self.ledger.warn)
        self.journal.close()
        # The pace's counts ride along with the resource sample: how often the run slowed or held.
        link = {"latency_ms": round(self._latency * 1000, 1) if self._latency is not None else None}
        snap = self.stats.snapshot({**self._tick_resources(), **link})
        self.sink.finish(snap, self.stats.failures, interrupted=self._interrupted,
                         fatal=self._fatal.message if self._fatal else self._halted)
        return Outcome(snapshot=snap, failures=self.stats.failures, interrupted=self._interrupted, fatal=self._fatal,
                       halted=self._halted, signum=signals.signum)

    def _dispatch_to(self, sup: Executor) -> Callable[[object], None]:
        def dispatch(msg) -> None:
            if sup.note(msg):
                return
            if isinstance(msg, WorkerReport):
                sup.settled(msg.results)
            if self.ledger.take(msg):
                sup.stop.set()
        return dispatch

    def _main_loop(self, signals: StopRequests, sup: Executor, controller: InflightController | None) -> bool:
        """Consume messages, replace dead workers, end the pool when all work came back. Returns True when
        the workers must be killed: they did not finish their requests in flight within --stop-grace."""
        dispatch = self._dispatch_to(sup)
        stop = sup.stop
        last_draw = last_sample = 0.0
        # The live view redraws at a steady few frames a second; resources are sampled every progress tick.
        draw_every = self.sink.redraw_every or self.s.progress_interval
        resources: dict = {}
        stop_by: float | None = None  # once stopping: the end of the grace period
        while True:
            if signals.requested and not self._interrupted:
                self._interrupted = signals.name or "signal"
                stop.set()
                self.sink.warn(f"{self._interrupted}: stopping; requests in flight have {self.s.stop_grace:g} s "
                                   "to finish (a second signal stops at once)")
            if self._fatal is not None and not stop.is_set():
                stop.set()
            if stop_by is None and (self._interrupted or stop.is_set()):
                stop_by = time.monotonic() + self.s.stop_grace
            if stop_by is not None and time.monotonic() > stop_by:
                return True
            msg = sup.next_message(max(0.01, min(TICK, last_draw + draw_every - time.monotonic())))
            if msg is not None:
                dispatch(msg)
                # Drain whatever else is waiting before drawing: drawing is the slow part.
                for _ in range(1000):
                    msg = sup.next_message(0)
                    if msg is None:
                        break
                    dispatch(msg)
            sup.watch(dispatch)
            if self._limits is not None and self._limits.tick():
                self.ledger.warn(self._limits.describe())
            self.stats.worker_restarts = sup.restarts
            if self.stats.scan_done and sup.idle and not sup.closed:
                sup.close()
            if sup.all_done:
                return False
            if controller is not None and not stop.is_set():
                controller.observe(done=self.stats.counts[UPLOADED], throttles=self._pace.counts()["throttles"])
            now = time.monotonic()
            if now - last_draw >= draw_every:
                last_draw = now
                if now - last_sample >= self.s.progress_interval:
                    last_sample, resources = now, self._tick_resources()
                self.sink.progress(self.stats.snapshot(resources))
                self.ledger.tick()

    def _halt(self, why: str) -> None:
        self._halted = why  # the outage prober gave up: the run stops with word on how to resume

    def _worker_gone(self, worker: int) -> None:
        self.monitor.forget(f"worker-{worker}")
        self.stats.inflight.pop(worker, None)  # a dead worker's last word on its requests no longer holds

    def _tick_resources(self) -> dict:
        """The tick's resource sample plus the pace's counts (throttles, outage holds, limit waits), the
        partition pauses and the in-flight limit, so the live view and the run report show them over time."""
        extra = self._pace.counts() if self._pace is not None else {}
        if self._pauser is not None:
            extra["partition_pauses"] = self._pauser.pauses
        return {**self.monitor.sample(), **extra,
                # Files a worker may hold: with a fixed --threads, a file queued for a thread counts too.
                "inflight_limit": self._limit.value if self.s.adaptive else self.s.threads * 2,
                "inflight_now": sum(self.stats.inflight.values())}
