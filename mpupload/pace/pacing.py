"""One pace for every worker in every process: a shared throttle delay and a shared outage flag.

botocore's retries (standard or adaptive) slow down one client; S3's SlowDown is about the whole
request rate on a prefix, and an outage hits every connection at once. So a worker that is throttled
pushes a shared "no request starts before" deadline that all workers honour before each HTTP request,
and a worker that sees the endpoint refuse or drop connections again and again marks an outage: every
worker then holds its requests, without spending file attempts, until the coordinator's prober gets
an answer from the endpoint (or the outage outlasts --outage-timeout and the run stops).

The state lives in multiprocessing RawValues under one lock (plain cells and a threading lock when the
workers are threads, processes=0). Across the machines of a Dask cluster each process keeps its own Pace and
`relay` carries what changed (a throttle's pause, an outage, its end) to all the others, who `apply` it
(cluster/relay.py). Deadlines are time.monotonic() values: CLOCK_MONOTONIC is one clock
for the whole machine on Linux, so they compare across processes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from mpupload.core import shared
from mpupload.core.errors import is_connection_error, is_throttle
from mpupload.pace.limits import Limits, wait_until

# Connection errors in a row (no success between, any worker) that make an outage: one reset is noise.
OUTAGE_AFTER = 3
_MIN_DELAY = 0.01  # below this the shared delay is dropped to zero
_DECAY = 0.75  # each success shrinks the shared delay by this factor
_WAIT_SLICE = 0.2  # waits are sliced so a stop is noticed promptly




class Stopped(Exception):
    """The run is stopping while this request waited for its turn."""


class Pace:
    def __init__(self, *, ctx=None, base_delay: float, max_delay: float, limits: Limits | None = None):
        """ctx: a multiprocessing context when the workers are processes, None when they are threads.
        base_delay: the shared pause after a first throttle; it doubles with each further one, up to
        max_delay, and decays with each success. limits: --max-bandwidth / --max-requests-per-second,
        booked by every request on top of the throttle pace (limits.py)."""
        self.limits = limits  # may change while the run goes (limits.py): checked at every request
        self._lock = shared.lock(ctx)
        self.base_delay, self.max_delay = max(base_delay, _MIN_DELAY), max(max_delay, _MIN_DELAY)
        self._delay = shared.value(ctx, "d", 0.0)  # the current shared pause, seconds
        self._until = shared.value(ctx, "d", 0.0)  # no request starts before this monotonic time
        self._conn_errors = shared.value(ctx, "i", 0)  # connection errors since the last success
        self._outage_since = shared.value(ctx, "d", 0.0)  # monotonic start of the outage; 0.0 = none
        self._throttles = shared.value(ctx, "i", 0)
        self._outages = shared.value(ctx, "i", 0)
        # Set on a Dask run: tells the other processes of the cluster ("throttle", delay) / ("outage",) /
        # ("answered",); called outside the lock.
        self.relay: Callable[[tuple], None] | None = None

    # -- what workers report -----------------------------------------------------------------------------
    def throttled(self) -> None:
        with self._lock:
            delay = min(self.max_delay, max(self.base_delay, self._delay.value * 2))
            self._delay.value = delay
            self._until.value = max(self._until.value, time.monotonic() + delay)
            self._throttles.value += 1
        if self.relay is not None:
            self.relay(("throttle", delay))

    def succeeded(self) -> None:
        # Lock-free fast path: nearly every request succeeds and nothing needs changing.
        if self._delay.value == 0.0 and self._conn_errors.value == 0:
            return
        with self._lock:
            self._conn_errors.value = 0
            delay = self._delay.value * _DECAY
            self._delay.value = delay if delay >= _MIN_DELAY else 0.0

    def connection_failed(self) -> None:
        started = False
        with self._lock:
            self._conn_errors.value += 1
            if self._conn_errors.value >= OUTAGE_AFTER and self._outage_since.value == 0.0:
                self._outage_since.value = time.monotonic()
                self._outages.value += 1
                started = True
        if started and self.relay is not None:
            self.relay(("outage",))

    def endpoint_answered(self) -> None:
        """From the prober: the endpoint is back; everyone may go."""
        self.apply(("answered",))
        if self.relay is not None:
            self.relay(("answered",))

    def apply(self, event: tuple) -> None:
        """What another process of a Dask cluster saw (see `relay`): the same effect here, not relayed again.
        Deadlines travel as a pause, not a time: clocks of different machines do not compare."""
        kind = event[0]
        with self._lock:
            if kind == "throttle":
                delay = min(self.max_delay, float(event[1]))
                self._delay.value = max(self._delay.value, delay)
                self._until.value = max(self._until.value, time.monotonic() + delay)
                self._throttles.value += 1
            elif kind == "outage":
                if self._outage_since.value == 0.0:
                    self._outage_since.value = time.monotonic()
                    self._outages.value += 1
            elif kind == "answered":
                self._outage_since.value = 0.0
                self._conn_errors.value = 0

    # -- what everyone reads -----------------------------------------------------------------------------
    @property
    def outage_since(self) -> float:
        return self._outage_since.value

    @property
    def in_outage(self) -> bool:
        return self._outage_since.value != 0.0

    def counts(self) -> dict[str, float]:
        extra = self.limits.counts() if self.limits is not None else {}
        return {"throttles": self._throttles.value, "outages": self._outages.value, **extra}

    def within_limits(self, stop, *, nbytes: int) -> None:
        """Book one request of `nbytes` on the run's limits and wait for its slot (raises Stopped if the
        run stops meanwhile). Nothing to do, and no lock taken, without limits. When the limits change while
        it waits (`mpupload limit`, a timetable), it books again under the new ones."""
        limits = self.limits
        while limits is not None and limits.active:
            generation = limits.generation
            if wait_until(limits.start_when(nbytes), stop, changed=lambda g=generation: limits.generation != g):
                return
            if stop.is_set():
                raise Stopped("the run is stopping")

    def wait_turn(self, stop, *, limit: float) -> None:
        """Block until no shared pause or outage holds requests back, the run stops (raises Stopped), or
        `limit` seconds pass (then go anyway: the prober or the outage timeout decides, not us)."""
        now = time.monotonic()
        if now >= self._until.value and not self.in_outage:
            return  # the fast path, taken by nearly every request: two reads, no lock, no syscall
        deadline = now + limit
        while True:
            now = time.monotonic()
            if stop.is_set():
                raise Stopped("the run is stopping")
            if now >= deadline:
                return
            if self.in_outage:
                stop.wait(min(_WAIT_SLICE, deadline - now))
                continue
            until = self._until.value
            if now >= until:
                return
            # Jitter spreads the restart, so the workers do not all hit the server in the same instant.
            pause = until - now + random.random() * self._delay.value / 4
            stop.wait(min(pause, _WAIT_SLICE, deadline - now))
            if time.monotonic() >= until:
                return

    def wait_outage(self, stop, *, limit: float) -> bool:
        """If an outage is on, wait (bounded) until it ends; True if there was one."""
        if not self.in_outage:
            return False
        deadline = time.monotonic() + limit
        while self.in_outage and not stop.is_set() and time.monotonic() < deadline:
            stop.wait(_WAIT_SLICE)
        return True

    # -- wiring into a botocore client ---------------------------------------------------------------------
    def attach(self, client, stop, *, limit: float) -> None:
        """Make every HTTP request of `client` (retries and s3transfer's parts included) wait its turn
        first, and report how each attempt went."""

        def before_send(request=None, **_kwargs):
            self.wait_turn(stop, limit=limit)
            if self.limits is not None:
                # Every attempt botocore sends counts: a retry puts its bytes on the wire again.
                length = getattr(request, "headers", {}).get("Content-Length") if request is not None else None
                self.within_limits(stop, nbytes=int(length) if length else 0)
            return None  # None: botocore sends the request itself

        def after_attempt(response=None, caught_exception=None, **_kwargs):
            if caught_exception is not None:
                if is_connection_error(caught_exception):
                    self.connection_failed()
                return None
            if response is None:
                return None
            http, parsed = response
            status = getattr(http, "status_code", 0)
            code = (parsed or {}).get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
            if is_throttle(code, status):
                self.throttled()
            elif status < 500:
                self.succeeded()  # the endpoint answered: for the outage count, that is what matters
            return None  # never decide the retry: botocore's retry handler does

        client.meta.events.register("before-send.s3", before_send, unique_id="mpupload-pace-before-send")
        client.meta.events.register("needs-retry.s3", after_attempt, unique_id="mpupload-pace-after")
