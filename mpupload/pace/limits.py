"""Limits the user sets, held by every process together: --max-bandwidth (bytes per second put on the wire)
and --max-requests-per-second, and --partition-pause (quiet seconds between years).

A rate is a shared schedule, not a per-process share: each request reserves its slot on one virtual clock
in shared memory ("the next unit may go at T"), so N processes with M requests in flight each still add up
to the limit, whatever N and M (a per-process split would waste the share of an idle process). It is the
generic cell rate algorithm: a request of `n` units may start at max(now - burst, T) and moves T on by
n / rate. Over any window of W seconds at most rate x (W + burst) units start, plus the one request that
crosses the end of the window: for requests (0.25 s burst) 2.5% over a 10 s window; for bytes (no burst)
one request's bytes, since a request is sent whole once its turn comes: an 8 MiB part is 4% of 10 s at
20 MB/s, a 6 MB file 10% of 10 s at 6 MB/s. Keep parts well under the limit's 10 s for a tight limit.

A limit only ever waits: no request is refused, so no file fails because of one. Waits happen before a
request is sent (botocore's read timeout starts after), and notice a stop.

Rates are shared values too, so a limit can change while the run goes (`mpupload limit`, a timetable:
run/limitcontrol.py): every process reads the new rate at its next request. A rate of 0 is no limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mpupload.core import shared

BURST_SECONDS = 0.25  # what an idle link may send at once: small next to the 10 s the limit is judged over
_SLICE = 0.2  # waits are sliced so a stop is noticed promptly




class SharedRate:
    """One rate (units per second) shared by every thread of every process."""

    def __init__(self, rate: float, *, ctx=None, lock=None, burst: float = BURST_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.burst, self._clock = burst, clock
        self._rate = shared.value(ctx, "d", float(rate or 0.0))  # 0: no limit
        self._lock = lock or shared.lock(ctx)
        self._next = shared.value(ctx, "d", 0.0)  # the schedule: the next unit may start at this monotonic time
        self.waits = shared.value(ctx, "q", 0)  # requests that had to wait for this limit
        self.waited = shared.value(ctx, "d", 0.0)  # seconds they waited, summed

    @property
    def rate(self) -> float:
        return self._rate.value

    @rate.setter
    def rate(self, value: float | None) -> None:
        with self._lock:
            if float(value or 0.0) == self._rate.value:
                return
            self._rate.value = float(value or 0.0)
            # A new rate applies from now: what the old (slower) rate booked ahead does not hold it back.
            self._next.value = min(self._next.value, self._clock())

    def reserve(self, units: float) -> float:
        """Book `units` on the schedule; returns the monotonic time the request may start (now without a
        limit: no lock taken)."""
        if self._rate.value <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            rate = self._rate.value
            if rate <= 0:
                return 0.0
            start = max(now - self.burst, self._next.value)
            self._next.value = start + units / rate
            if start > now:
                self.waits.value += 1
                self.waited.value += start - now
            return start


def wait_until(start: float, stop, *, clock: Callable[[], float] = time.monotonic,
               changed: Callable[[], bool] | None = None) -> bool:
    """Sleep until `start`, in slices; False if the run stopped first (or `changed` says so: the limits
    changed and the slot must be booked again)."""
    while True:
        left = start - clock()
        if left <= 0:
            return True
        if stop.is_set() or (changed is not None and changed()):
            return False
        stop.wait(min(left, _SLICE))


class Limits:
    """--max-bandwidth and --max-requests-per-second for the whole run (either may be None: no limit), and
    changed while it runs by `set` (the coordinator's; a Dask worker's relay)."""

    def __init__(self, *, max_bandwidth: float | None = None, max_rps: float | None = None, ctx=None):
        # No burst for bytes: a request goes whole once its turn comes, so one request is already the
        # overshoot any window can see (an 8 MiB part is 4% of 10 s at 20 MB/s).
        self.bandwidth = SharedRate(max_bandwidth, ctx=ctx, burst=0.0)
        self.requests = SharedRate(max_rps, ctx=ctx)
        # Bumped by every change: a request asleep on a slot the old rates gave books again.
        self._generation = shared.value(ctx, "q", 0)

    @property
    def active(self) -> bool:
        return self.bandwidth.rate > 0 or self.requests.rate > 0

    def set(self, *, max_bandwidth: float | None, max_rps: float | None) -> None:
        """New limits (None: none). The same limits again change nothing: a Dask worker hears them with every
        heartbeat, and restarting the schedule each time would grant a burst each time."""
        if (float(max_bandwidth or 0.0), float(max_rps or 0.0)) == (self.bandwidth.rate, self.requests.rate):
            return
        self.bandwidth.rate, self.requests.rate = max_bandwidth, max_rps
        self._generation.value += 1  # one writer (the coordinator, or a Dask worker's relay)

    @property
    def generation(self) -> int:
        return self._generation.value

    def in_force(self) -> tuple[float | None, float | None]:
        """(bytes per second, requests per second) now; None where there is no limit."""
        return self.bandwidth.rate or None, self.requests.rate or None

    def start_when(self, nbytes: int) -> float:
        """Book one request carrying `nbytes`; the time it may start (the later of the two limits)."""
        start = self.requests.reserve(1)
        if nbytes > 0:
            start = max(start, self.bandwidth.reserve(nbytes))
        return start

    def counts(self) -> dict[str, float]:
        rates = (self.bandwidth, self.requests)
        bandwidth, rps = self.in_force()
        return {"limit_waits": sum(r.waits.value for r in rates),
                "limit_wait_seconds": round(sum(r.waited.value for r in rates), 1),
                "max_bandwidth": bandwidth, "max_requests_per_second": rps}


class PartitionPause:
    """--partition-pause: before the first batch of a new partition is handed out, wait until every batch
    handed out so far has come back, then `seconds` more, so the link is quiet between years (the seed's
    pause for links shared with others). Batches arrive grouped by partition when this is on (plan.py's
    `Batcher(group=True)`), so a pause comes once per partition, not once per stray batch."""

    def __init__(self, seconds: float, *, idle: Callable[[], bool], notify: Callable[[str], None]):
        self.seconds, self._idle, self._notify = seconds, idle, notify
        self._last: str | None = None
        self.pauses = 0

    def before(self, partition: str, stop) -> None:
        previous, self._last = self._last, partition
        if self.seconds <= 0 or previous is None or partition == previous:
            return
        while not self._idle() and not stop.is_set():
            stop.wait(_SLICE)
        if stop.is_set():
            return
        self.pauses += 1
        if self.pauses == 1:  # once: the live view and the report count the rest
            self._notify(f"pausing {self.seconds:g} s between partitions (--partition-pause), first after {previous}")
        stop.wait(self.seconds)
