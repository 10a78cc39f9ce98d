"""Counting: the run's totals and rates, and the same per partition.

Per partition: progress per partition (year), for the live view and `mpupload status`: how many files and bytes each
partition holds (from the census ahead of the planner, or the planner's own walk once it is done), how many
are done, how many failed, and when the last one finished (to put the active partitions first).

Bounded without a cap: partitions are years between 1800 and 2100 (plan.year_of), plus "" for entries that
never got one (special files, unreadable names).

The run: a pure accumulator of results and rates. Counting is kept apart from drawing (ui/ draws
snapshots of this). Memory is bounded: failures are counted by reason with a few examples each, and at
most `keep_failures` are kept in full for the final listing.

A little over ~300 lines: the run's counts and its partitions' are one accumulator, fed by one ledger.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mpupload.core.messages import (
    CHECKSUM,
    DECLINED,
    FAILED,
    LEAN_OFF,
    MULTIPART_CHECKSUM,
    SENT_BOTOCORE,
    SENT_LEAN,
    SKIPPED,
    UPLOADED,
    UploadResult,
)

NO_PARTITION = ""


@dataclass(frozen=True, slots=True)
class PartitionRow:
    name: str
    files: int  # the partition's total (or what was found so far, while `known` is False)
    bytes: int
    done: int  # uploaded + skipped + failed
    done_bytes: int
    failed: int
    last: float  # clock time of its last finished file, 0.0 when none yet
    known: bool
    skipped: int = 0  # of `done`: skipped, and their bytes (metrics split done by status)
    skipped_bytes: int = 0
    failed_bytes: int = 0

    @property
    def complete(self) -> bool:
        return self.known and self.done >= self.files

    @property
    def started(self) -> bool:
        return self.done > 0


class _Count:
    __slots__ = ("files", "bytes", "done", "done_bytes", "failed", "failed_bytes", "skipped", "skipped_bytes", "last")

    def __init__(self):
        self.files = self.bytes = self.done = self.done_bytes = self.failed = 0
        self.failed_bytes = self.skipped = self.skipped_bytes = 0
        self.last = 0.0


class PartitionTally:
    def __init__(self):
        self._found: dict[str, _Count] = {}
        self._census: Mapping[str, tuple[int, int]] = {}

    def _of(self, name: str) -> _Count:
        c = self._found.get(name)
        if c is None:
            c = self._found[name] = _Count()
        return c

    def found(self, name: str, files: int, nbytes: int) -> None:
        c = self._of(name)
        c.files += files
        c.bytes += nbytes

    def census(self, counts: Mapping[str, tuple[int, int]]) -> None:
        """The census' counts so far (a fresh mapping: it is replaced, never changed in place)."""
        self._census = counts

    def finished(self, name: str, *, files: int, nbytes: int, failed: bool, now: float, skipped: bool = False) -> None:
        c = self._of(name)
        c.done += files
        c.done_bytes += nbytes
        if failed:
            c.failed += files
            c.failed_bytes += nbytes
        elif skipped:
            c.skipped += files
            c.skipped_bytes += nbytes
        c.last = now

    def rows(self, *, scan_done: bool, census_done: bool) -> tuple[PartitionRow, ...]:
        """Every partition, sorted by name. Totals: the planner's walk once it finished, else the census once it
        finished, else the larger of the two so far (not known yet)."""
        census = self._census
        out = []
        for name in sorted(set(self._found) | set(census)):
            c = self._found.get(name) or _Count()
            if scan_done:
                files, nbytes, known = c.files, c.bytes, True
            else:
                cf, cb = census.get(name, (0, 0))
                files, nbytes, known = max(c.files, cf), max(c.bytes, cb), census_done
            out.append(PartitionRow(name=name, files=max(files, c.done), bytes=max(nbytes, c.done_bytes), done=c.done,
                                    done_bytes=c.done_bytes, failed=c.failed, last=c.last, known=known,
                                    skipped=c.skipped, skipped_bytes=c.skipped_bytes, failed_bytes=c.failed_bytes))
        return tuple(out)


def busiest_first(rows: tuple[PartitionRow, ...] | list[PartitionRow]) -> list[PartitionRow]:
    """The order to show partitions in: those under way (started, not complete) first, the most recently
    active at the top; then those not started, in name order; then the complete ones, last finished first."""
    under_way = sorted((r for r in rows if r.started and not r.complete), key=lambda r: -r.last)
    waiting = [r for r in rows if not r.started and not r.complete]
    complete = sorted((r for r in rows if r.complete), key=lambda r: -r.last)
    return under_way + waiting + complete


_WINDOW_SECONDS = 10.0  # rates over the last few seconds react to change; the run average does not
_EXAMPLES_PER_REASON = 3
_RECENT_FAILURES = 5


@dataclass
class TransportTally:
    """The transport's counts summed over workers (core.messages TRANSPORT_COUNTS), typed."""

    lean: int = 0  # requests sent lean
    botocore: int = 0  # requests sent through botocore
    declined: Counter = field(default_factory=Counter)  # lean requests declined, by reason
    lean_off: Counter = field(default_factory=Counter)  # processes whose lean path was off, by reason
    checksum: Counter = field(default_factory=Counter)  # processes by the transport checksum they chose
    multipart_checksum: Counter = field(default_factory=Counter)  # processes by their multipart checksum

    def add(self, counts: Iterable[tuple[str, str, int]]) -> None:
        for kind, detail, n in counts:
            if kind == SENT_LEAN:
                self.lean += n
            elif kind == SENT_BOTOCORE:
                self.botocore += n
            elif kind in (DECLINED, LEAN_OFF, CHECKSUM, MULTIPART_CHECKSUM):
                getattr(self, kind)[detail] += n

    def copy(self) -> TransportTally:
        return TransportTally(self.lean, self.botocore, Counter(self.declined), Counter(self.lean_off),
                              Counter(self.checksum), Counter(self.multipart_checksum))


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    found_files: int
    found_bytes: int
    scan_done: bool
    # What the whole run covers: from the census (a quick counting walk ahead of the feeder) or the
    # finished scan; `total_known` is False while both are still walking.
    total_files: int
    total_bytes: int
    total_known: bool
    uploaded: int
    skipped: int
    failed: int
    bytes_uploaded: int
    bytes_skipped: int
    bytes_sent: int
    parts_reused: int
    worker_restarts: int
    files_per_min: float
    bytes_per_s: float
    eta_seconds: float | None
    failure_reasons: tuple[tuple[str, int, tuple[str, ...]], ...]
    skip_reasons: tuple[tuple[str, int], ...]
    resources: dict = field(default_factory=dict)
    # The transport's counters summed over workers
    transport: TransportTally = field(default_factory=lambda: TransportTally())
    partitions: tuple[PartitionRow, ...] = ()
    retries: int = 0  # tries of files beyond their first (--file-attempts), summed
    recent_failures: tuple[tuple[str, str], ...] = ()  # (path, reason) of the last few, newest last
    mirror: dict = field(default_factory=dict)  # --delete: deleted, delete_failed, refused (run/mirror.py)
    bytes_failed: int = 0

    @property
    def done(self) -> int:
        return self.uploaded + self.skipped + self.failed

    @property
    def pending(self) -> int:
        return max(0, self.found_files - self.done)


def reason_group(reason: str) -> str:
    """Failures are grouped by the part of the reason before any detail (the code, or the sentence)."""
    return reason.split(":", 1)[0] if ":" in reason else reason


class Stats:
    def __init__(self, *, clock=time.monotonic, keep_failures: int = 1000):
        self._clock = clock
        self.started = clock()
        self.found_files = self.found_bytes = 0
        self.scan_done = False
        self.mirror: dict = {}  # --delete's outcome, once the pass ran
        self.census_files = self.census_bytes = 0
        self.census_done = False
        self.counts: Counter[str] = Counter()
        self.bytes_uploaded = self.bytes_skipped = self.bytes_sent = self.bytes_failed = 0
        self.parts_reused = 0
        self.worker_restarts = 0
        self.failure_counts: Counter[str] = Counter()
        self.failure_examples: dict[str, list[str]] = {}
        self.skip_counts: Counter[str] = Counter()
        self.failures: list[UploadResult] = []
        self.keep_failures = keep_failures
        self._window: deque[tuple[float, int, int]] = deque()
        self.transport = TransportTally()
        self.inflight: dict[int, int] = {}  # worker -> files in flight at its last report
        self.partitions = PartitionTally()
        self.retries = 0
        self.recent_failures: deque[tuple[str, str]] = deque(maxlen=_RECENT_FAILURES)

    def found(self, files: int, nbytes: int, partitions: tuple[tuple[str, int, int], ...] = ()) -> None:
        self.found_files += files
        self.found_bytes += nbytes
        for name, n, b in partitions:
            self.partitions.found(name, n, b)

    def census(self, files: int, nbytes: int, *, done: bool, partitions: dict | None = None) -> None:
        if partitions is not None:
            self.partitions.census(partitions)
        self.census_files, self.census_bytes, self.census_done = files, nbytes, done

    def _totals(self) -> tuple[int, int, bool]:
        if self.scan_done:
            return self.found_files, self.found_bytes, True
        if self.census_done:
            return self.census_files, self.census_bytes, True
        return max(self.found_files, self.census_files), max(self.found_bytes, self.census_bytes), False

    def sent(self, nbytes: int) -> None:
        self.bytes_sent += nbytes

    def transport_counts(self, counts: tuple[tuple[str, str, int], ...]) -> None:
        self.transport.add(counts)

    def add(self, r: UploadResult) -> None:
        self.counts[r.status] += 1
        self.retries += max(0, r.attempts - 1)
        self.partitions.finished(r.partition or NO_PARTITION, files=1, nbytes=r.size, failed=r.status == FAILED,
                                 skipped=r.status == SKIPPED, now=self._clock())
        if r.status == UPLOADED:
            self.bytes_uploaded += r.size
            self.parts_reused += r.parts_reused
        elif r.status == SKIPPED:
            self.bytes_skipped += r.size
            self.skip_counts[reason_group(r.reason)] += 1
        elif r.status == FAILED:
            self.bytes_failed += r.size
            group = reason_group(r.reason)
            self.failure_counts[group] += 1
            examples = self.failure_examples.setdefault(group, [])
            if len(examples) < _EXAMPLES_PER_REASON:
                examples.append(r.rel)
            if len(self.failures) < self.keep_failures:
                self.failures.append(r)
            self.recent_failures.append((r.rel, r.reason))

    def skipped_many(self, reason: str, *, files: int, nbytes: int, partition: str = NO_PARTITION) -> None:
        """Routine skips decided by the planner, counted in bulk."""
        self.counts[SKIPPED] += files
        self.bytes_skipped += nbytes
        self.skip_counts[reason_group(reason)] += files
        self.partitions.finished(partition, files=files, nbytes=nbytes, failed=False, skipped=True, now=self._clock())

    def _rates(self, now: float) -> tuple[float, float]:
        done = self.counts[UPLOADED] + self.counts[SKIPPED] + self.counts[FAILED]
        self._window.append((now, self.bytes_sent, done))
        while len(self._window) > 2 and now - self._window[0][0] > _WINDOW_SECONDS:
            self._window.popleft()
        t0, b0, f0 = self._window[0]
        span = now - t0
        if span < 0.5:  # too short a window: use the run so far
            span, b0, f0 = max(now - self.started, 1e-9), 0, 0
        return (done - f0) / span * 60.0, (self.bytes_sent - b0) / span

    def snapshot(self, resources: dict | None = None) -> Snapshot:
        now = self._clock()
        files_per_min, bytes_per_s = self._rates(now)
        uploaded, skipped, failed = self.counts[UPLOADED], self.counts[SKIPPED], self.counts[FAILED]
        eta = None
        total_files, total_bytes, total_known = self._totals()
        if total_known:
            left_bytes = max(0, total_bytes - self.bytes_uploaded - self.bytes_skipped)
            left_files = max(0, total_files - uploaded - skipped - failed)
            guesses = []
            if bytes_per_s > 0:
                guesses.append(left_bytes / bytes_per_s)
            if files_per_min > 0:
                guesses.append(left_files / files_per_min * 60.0)
            eta = max(guesses) if guesses else None
        return Snapshot(
            elapsed=now - self.started, found_files=self.found_files, found_bytes=self.found_bytes,
            scan_done=self.scan_done, total_files=total_files, total_bytes=total_bytes, total_known=total_known,
            uploaded=uploaded, skipped=skipped, failed=failed,
            bytes_uploaded=self.bytes_uploaded, bytes_skipped=self.bytes_skipped, bytes_sent=self.bytes_sent,
            parts_reused=self.parts_reused, worker_restarts=self.worker_restarts,
            files_per_min=files_per_min, bytes_per_s=bytes_per_s, eta_seconds=eta,
            failure_reasons=tuple((g, n, tuple(self.failure_examples.get(g, ())))
                                  for g, n in self.failure_counts.most_common()),
            skip_reasons=tuple(self.skip_counts.most_common()),
            resources=dict(resources or {}),
            transport=self.transport.copy(),
            partitions=self.partitions.rows(scan_done=self.scan_done, census_done=self.census_done),
            retries=self.retries, recent_failures=tuple(self.recent_failures), mirror=dict(self.mirror),
            bytes_failed=self.bytes_failed,
        )
