"""Requests in flight that follow the link.

On loopback a request takes a few milliseconds and 8 in flight per process keep a core busy. Across
40-200 ms of round trip to S3 the same 8 leave the pipe mostly empty: by Little's law the requests in
flight a process needs are its target rate times the time one request takes (in flight = rate x latency).
So:

1. the preflight probe times its requests: the fastest of them is the link's latency to this endpoint
   (round trip plus the server's time for a tiny request);
2. each worker process starts with `initial_inflight(latency)` files in flight: what one process can
   drive (`PROCESS_RATE`, from the client CPU a small PUT costs) times that latency;
3. at run time `InflightController` keeps raising the limit while throughput still grows, and lowers it
   when the server throttles (the shared pace, pacing.py, stays the authority on when to retry).

Only small files are limited this way; a large file's parts run on the worker's part pool (`--threads`),
since bandwidth, not latency, bounds them. Memory is held by a byte budget besides the count: a worker
never holds more than `max_bytes` of small-file bodies at once, however many are in flight.

The limit is one shared integer per run (multiprocessing RawValue): every worker reads it before taking a
file; only the coordinator writes it.
"""

from __future__ import annotations

import math
import threading
import time

from mpupload.core import shared

# Small PUTs one worker process should be able to drive per second. The client CPU of a small PUT on the
# lean path (~1.3 ms) allows ~600; on a busy machine a request also waits its turn for the GIL among the
# process's threads, which the round trip alone does not count, and too few in flight costs far more than
# too many: at 100 ms, 64 in flight per process beat 32 by 10-30% and 128 lost only a little
# (bench/results/wan-matrix). The controller moves on from there.
PROCESS_RATE = 600.0
MIN_INFLIGHT = 8  # the loopback optimum found by the seed's bench; never fewer
MAX_INFLIGHT = 128  # per process: threads are cheap while they wait, but each holds a file's bytes


def initial_inflight(latency: float | None, *, cap: int = MAX_INFLIGHT) -> int:
    """Files in flight per process for a link whose requests take `latency` seconds (None: unknown)."""
    if latency is None or latency <= 0:
        return MIN_INFLIGHT
    return max(MIN_INFLIGHT, min(cap, math.ceil(PROCESS_RATE * latency)))


class SharedLimit:
    """The current in-flight limit per process: a RawValue across processes (one writer, the coordinator;
    an aligned int read is atomic), or a plain cell when the workers are threads (core/shared.py)."""

    def __init__(self, value: int, *, ctx=None):
        self._cell = shared.value(ctx, "i", value)

    @property
    def value(self) -> int:
        return self._cell.value

    @value.setter
    def value(self, v: int) -> None:
        self._cell.value = v


class InflightGate:
    """In a worker: at most `limit.value` files and `max_bytes` of file bodies in flight. A file bigger
    than the byte budget still goes when nothing else is in flight, so no file waits forever."""

    def __init__(self, limit: SharedLimit, *, max_bytes: int):
        self._limit, self._max_bytes = limit, max_bytes
        self._cond = threading.Condition()
        self.count = 0
        self.nbytes = 0

    def acquire(self, nbytes: int, *, timeout: float) -> bool:
        """Take a place for a file holding `nbytes` in memory; False after `timeout` (the caller flushes
        its results and tries again, or notices a stop)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count and (self.count >= self._limit.value or self.nbytes + nbytes > self._max_bytes):
                left = deadline - time.monotonic()
                # The limit can rise from outside without a notify: look again at least every 50 ms.
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            self.count += 1
            self.nbytes += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self._cond:
            self.count -= 1
            self.nbytes -= nbytes
            self._cond.notify_all()

    def wait_idle(self, *, timeout: float) -> bool:
        """True once nothing is in flight; False after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


class InflightController:
    """In the coordinator: hill-climbing on the run's completion rate. Every `period` seconds it compares
    the rate with the best seen; while raising the limit keeps paying (>= `gain` better), it raises it
    again by `step`; when a raise did not pay, it goes back to the best limit and waits a few periods
    before trying again. A throttle cuts the limit by a third at once."""

    def __init__(self, limit: SharedLimit, *, cap: int = MAX_INFLIGHT, floor: int = MIN_INFLIGHT,
                 period: float = 2.0, step: float = 1.5, gain: float = 1.05, clock=time.monotonic):
        self.limit, self.cap, self.floor = limit, cap, floor
        self.period, self.step, self.gain = period, step, gain
        self._clock = clock
        self._t0: float | None = None
        self._done0 = 0
        self._best_rate = 0.0
        self._best_limit = limit.value
        self._probing = False
        self._rest = 0  # periods to hold before the next probe upwards
        self._throttles = 0
        self.changes: list[tuple[float, int]] = []  # (when, new limit), for the report

    def _set(self, value: int, now: float) -> None:
        value = max(self.floor, min(self.cap, value))
        if value != self.limit.value:
            self.limit.value = value
            self.changes.append((now, value))

    def observe(self, *, done: int, throttles: int) -> None:
        now = self._clock()
        if throttles > self._throttles:
            self._throttles = throttles
            self._set(int(self.limit.value * 2 / 3), now)
            self._best_limit, self._best_rate, self._probing, self._rest = self.limit.value, 0.0, False, 5
            self._t0, self._done0 = now, done
            return
        if self._t0 is None:
            # The first look: the limit the run starts with (set after the preflight) is the one to beat.
            self._t0, self._done0, self._best_limit = now, done, self.limit.value
            return
        if now - self._t0 < self.period:
            return
        rate = (done - self._done0) / (now - self._t0)
        self._t0, self._done0 = now, done
        if rate <= 0:
            return  # nothing finished (start-up, a pause, the end of the run): no evidence either way
        if self._probing:
            self._probing = False
            if rate >= self._best_rate * self.gain:
                self._best_rate, self._best_limit = rate, self.limit.value
            else:
                self._set(self._best_limit, now)
                self._rest = 5
                return
        else:
            self._best_rate = max(rate, self._best_rate * 0.9)  # the run's pace drifts: let the best age
        if self._rest:
            self._rest -= 1
            return
        if self.limit.value < self.cap:
            self._probing = True
            self._set(math.ceil(self.limit.value * self.step), now)
