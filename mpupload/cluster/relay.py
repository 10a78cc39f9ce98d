"""What every process of a Dask run must hear at once, carried by scheduler events (Client.log_event /
subscribe_topic: pushed, not polled; one topic per run):

- ["pace", ORIGIN, KIND, ...]: a throttle's pause, an outage, its end (pacing.Pace.relay / apply), so a
  SlowDown seen on one machine slows every machine, and an outage holds them all;
- ["alive", LIMIT, WORKERS, BANDWIDTH, REQUESTS]: the coordinator's heartbeat, once a second and whenever
  the in-flight limit (concurrency.py), the number of Dask workers or the run's limits in force (`mpupload
  limit`, a timetable) change; each worker takes BANDWIDTH / WORKERS and REQUESTS / WORKERS, so a worker that
  joins does not add a share on top of the limit; a worker that hears none for ORPHANED_AFTER seconds stops
  its run's work, as a local worker ends with its coordinator (stopping.py);
- ["stop"]: the coordinator is stopping the run (Ctrl-C, a fatal error, the end).

Events are fire-and-forget; a lost one costs a pause not taken, never a file (botocore still retries).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from mpupload.pace.concurrency import SharedLimit
from mpupload.pace.pacing import Pace

HEARTBEAT = 1.0  # seconds between the coordinator's "alive" events
ORPHANED_AFTER = 20.0  # a worker that heard nothing from its coordinator this long stops its run's work


def topic_for(run_id: str) -> str:
    return f"mpupload-{run_id}"


class _OnTheRunTopic:
    """Subscribed to the run's topic, this process's Pace relaying to it (set up by each side's __init__);
    close() undoes both."""

    _client: object
    _topic: str
    _pace: Pace

    def close(self) -> None:
        self._pace.relay = None
        try:
            self._client.unsubscribe_topic(self._topic)
        except Exception:  # noqa: S110 - the Dask client may be closing already at the end of the run
            pass


class CoordinatorRelay(_OnTheRunTopic):
    """In the coordinator: its Pace hears the workers' throttles and outages (the prober and the summary read
    it) and tells them when the endpoint answers; the heartbeat carries the in-flight limit."""

    def __init__(self, client, run_id: str, *, pace: Pace, limit: SharedLimit, workers: Callable[[], int]):
        self._client, self._topic = client, topic_for(run_id)
        self._pace, self._limit, self._workers = pace, limit, workers
        self._origin = "coordinator"
        self._sent: tuple = ()
        self._last_beat = 0.0
        client.subscribe_topic(self._topic, self._on_event)
        pace.relay = self._publish_pace

    def _publish_pace(self, event: tuple) -> None:
        self._client.log_event(self._topic, ["pace", self._origin, *event])

    def _on_event(self, event) -> None:
        _, msg = event
        if msg and msg[0] == "pace" and msg[1] != self._origin:
            self._pace.apply(tuple(msg[2:]))

    def tick(self) -> None:
        """From the main loop: the heartbeat, and a changed limit or number of workers at once."""
        now = time.monotonic()
        # The in-flight limit, the workers, and the run's limits in force (`mpupload limit`, a timetable).
        limits = self._pace.limits.in_force() if self._pace.limits is not None else (None, None)
        state = (self._limit.value, self._workers(), *limits)
        if state != self._sent or now - self._last_beat >= HEARTBEAT:
            self._client.log_event(self._topic, ["alive", *state])
            self._sent, self._last_beat = state, now

    def stop(self) -> None:
        self._client.log_event(self._topic, ["stop"])



class WorkerRelay(_OnTheRunTopic):
    """In a Dask worker process, for one run: applies the others' pace events to this process's Pace,
    follows the in-flight limit, and sets `stop` on the coordinator's word or its silence."""

    def __init__(self, client, worker, run_id: str, *, pace: Pace, limit: SharedLimit, stop: threading.Event,
                 on_workers: Callable[[int, float | None, float | None], None]):
        self._client, self._worker, self._topic = client, worker, topic_for(run_id)
        self._pace, self._limit, self._stop, self._on_workers = pace, limit, stop, on_workers
        self._origin = uuid.uuid4().hex[:12]
        self._heard = time.monotonic()
        self.orphaned = False  # stopped because the coordinator fell silent
        client.subscribe_topic(self._topic, self._on_event)
        pace.relay = self._publish_pace
        threading.Thread(target=self._watch_coordinator, daemon=True, name="mpupload-orphan-watch").start()

    def _publish_pace(self, event: tuple) -> None:
        # The worker's batched stream: thread-safe and never blocks an upload thread on a round trip.
        self._worker.log_event(self._topic, ["pace", self._origin, *event])

    def _on_event(self, event) -> None:
        _, msg = event
        if not msg:
            return
        kind = msg[0]
        if kind == "pace" and msg[1] != self._origin:
            self._pace.apply(tuple(msg[2:]))
        elif kind == "alive":
            self._heard = time.monotonic()
            self._limit.value = int(msg[1])
            if len(msg) > 4:
                self._on_workers(int(msg[2]), msg[3], msg[4])
        elif kind == "stop":
            self._stop.set()

    def _watch_coordinator(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            if time.monotonic() - self._heard > ORPHANED_AFTER:
                # The coordinator is gone (killed, its machine lost): nothing this process uploads now would be
                # journaled. What landed is recognised by the next run; multipart ids were journaled already.
                self.orphaned = True
                self._stop.set()

