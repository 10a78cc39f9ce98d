"""Requests in flight that follow the link: Little's-law sizing, the worker's gate, the run-time controller."""

from __future__ import annotations

import threading

import pytest

from mpupload.pace.concurrency import (
    MAX_INFLIGHT,
    MIN_INFLIGHT,
    PROCESS_RATE,
    InflightController,
    InflightGate,
    SharedLimit,
    initial_inflight,
)


@pytest.mark.parametrize("latency, expected", [
    (None, MIN_INFLIGHT), (0.0, MIN_INFLIGHT), (0.002, MIN_INFLIGHT),
    (0.040, round(PROCESS_RATE * 0.040)), (0.100, round(PROCESS_RATE * 0.100)), (5.0, MAX_INFLIGHT)])
def test_initial_inflight_is_rate_times_latency_within_bounds(latency, expected):
    assert initial_inflight(latency) == expected


def test_inflight_grows_with_the_round_trip():
    sizes = [initial_inflight(ms / 1000) for ms in (0, 20, 40, 100, 200)]
    assert sizes == sorted(sizes) and sizes[-1] > 4 * sizes[0]


def test_gate_holds_count_and_bytes_and_lets_a_big_file_through_alone():
    gate = InflightGate(SharedLimit(2), max_bytes=100)
    assert gate.acquire(60, timeout=0.01) and not gate.acquire(60, timeout=0.01)  # bytes
    assert gate.acquire(10, timeout=0.01) and not gate.acquire(1, timeout=0.01)  # count
    gate.release(60)
    gate.release(10)
    assert gate.acquire(500, timeout=0.01)  # bigger than the budget, but nothing else in flight
    assert not gate.acquire(1, timeout=0.01)
    gate.release(500)
    assert gate.wait_idle(timeout=0.01)


def test_gate_follows_a_limit_raised_from_outside():
    limit = SharedLimit(1)
    gate = InflightGate(limit, max_bytes=1 << 30)
    assert gate.acquire(1, timeout=0.01)
    got = []
    t = threading.Thread(target=lambda: got.append(gate.acquire(1, timeout=5)))
    t.start()
    limit.value = 2  # no notify: the gate must look again by itself
    t.join(timeout=10)
    assert got == [True]


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _drive(ctl: InflightController, clock: _Clock, rate_of, periods: int) -> None:
    done = 0
    ctl.observe(done=0, throttles=0)
    for _ in range(periods):
        clock.t += ctl.period
        done += int(rate_of(ctl.limit.value) * ctl.period)
        ctl.observe(done=done, throttles=0)


def test_controller_climbs_while_throughput_grows_and_stops_where_it_does_not():
    clock = _Clock()
    limit = SharedLimit(8)
    ctl = InflightController(limit, cap=128, clock=clock)
    # A link where throughput grows with requests in flight up to 40, then stays flat.
    _drive(ctl, clock, lambda n: 10 * min(n, 40), periods=30)
    assert 40 <= limit.value <= 60 * 1.5
    assert max(v for _, v in ctl.changes) <= 128


def test_controller_stays_low_when_more_in_flight_does_not_pay():
    clock = _Clock()
    limit = SharedLimit(8)
    ctl = InflightController(limit, cap=128, clock=clock)
    _drive(ctl, clock, lambda n: 300, periods=30)  # CPU-bound: flat whatever the concurrency
    assert limit.value <= 12


def test_controller_backs_off_on_throttling():
    clock = _Clock()
    limit = SharedLimit(60)
    ctl = InflightController(limit, cap=128, clock=clock)
    ctl.observe(done=0, throttles=0)
    clock.t += 1
    ctl.observe(done=100, throttles=3)
    assert limit.value == 40


def test_controller_never_falls_below_the_limit_the_run_started_with():
    clock = _Clock()
    limit = SharedLimit(MIN_INFLIGHT)
    ctl = InflightController(limit, cap=128, clock=clock)
    limit.value = 64  # the preflight measured a long link after the controller was made
    _drive(ctl, clock, lambda n: 300, periods=10)  # more in flight does not pay: stay where it started
    assert limit.value == 64
