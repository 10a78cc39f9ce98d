"""The shared pace: a throttle seen by one worker holds back the others (threads and processes alike),
decays after successes, and repeated connection errors (not one) mark an outage until the prober clears it."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import pytest

from mpupload.pace.pacing import OUTAGE_AFTER, Pace, Stopped


def _throttle_in_child(pace: Pace) -> None:
    pace.throttled()


def _outage_in_child(pace: Pace) -> None:
    for _ in range(OUTAGE_AFTER):
        pace.connection_failed()


def test_throttle_in_one_thread_holds_another():
    pace = Pace(base_delay=0.3, max_delay=1.0)
    stop = threading.Event()
    pace.throttled()
    started = time.monotonic()
    pace.wait_turn(stop, limit=5)
    assert 0.2 <= time.monotonic() - started < 2.0


def test_throttles_double_up_to_the_cap_and_successes_decay():
    pace = Pace(base_delay=0.1, max_delay=0.5)
    delays = []
    for _ in range(5):
        pace.throttled()
        delays.append(pace._delay.value)
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    for _ in range(40):
        pace.succeeded()
    assert pace._delay.value == 0.0
    assert pace.counts()["throttles"] == 5


def test_one_connection_error_is_noise_repeated_ones_are_an_outage():
    pace = Pace(base_delay=0.1, max_delay=1)
    pace.connection_failed()
    pace.succeeded()
    for _ in range(OUTAGE_AFTER - 1):
        pace.connection_failed()
    assert not pace.in_outage
    pace.connection_failed()
    assert pace.in_outage and pace.counts()["outages"] == 1
    pace.endpoint_answered()
    assert not pace.in_outage


def test_outage_holds_requests_until_the_prober_clears_it():
    pace = Pace(base_delay=0.1, max_delay=1)
    _outage_in_child(pace)
    stop = threading.Event()
    released = threading.Event()

    def request():
        pace.wait_turn(stop, limit=30)
        released.set()

    t = threading.Thread(target=request)
    t.start()
    assert not released.wait(0.3), "a request went out during the outage"
    pace.endpoint_answered()
    assert released.wait(5)
    t.join(5)


def test_stop_during_an_outage_raises_stopped():
    pace = Pace(base_delay=0.1, max_delay=1)
    _outage_in_child(pace)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        pace.wait_turn(stop, limit=30)


def test_wait_is_bounded_even_if_nobody_clears_the_outage():
    pace = Pace(base_delay=0.1, max_delay=1)
    _outage_in_child(pace)
    started = time.monotonic()
    pace.wait_turn(threading.Event(), limit=0.5)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("report, seen", [(_throttle_in_child, "throttle"), (_outage_in_child, "outage")])
def test_signals_cross_process_boundaries(report, seen):
    ctx = mp.get_context("spawn")
    pace = Pace(ctx=ctx, base_delay=0.5, max_delay=1.0)
    child = ctx.Process(target=report, args=(pace,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    if seen == "throttle":
        assert pace._until.value > time.monotonic() - 0.5 and pace.counts()["throttles"] == 1
    else:
        assert pace.in_outage


def test_relay_carries_a_throttle_and_an_outage_to_another_pace():
    """Two processes of a Dask cluster (pacing.Pace.relay / apply; cluster/relay.py carries the events)."""
    here, there = Pace(base_delay=0.3, max_delay=1.0), Pace(base_delay=0.3, max_delay=1.0)
    sent: list[tuple] = []
    here.relay = sent.append
    there.relay = lambda event: pytest.fail(f"an applied event was relayed again: {event}")
    here.throttled()
    assert sent == [("throttle", pytest.approx(0.3))]
    there.apply(sent[-1])
    started = time.monotonic()
    there.wait_turn(threading.Event(), limit=5)
    assert 0.2 <= time.monotonic() - started < 2.0
    for _ in range(OUTAGE_AFTER):
        here.connection_failed()
    assert sent[-1] == ("outage",) and not there.in_outage
    there.apply(sent[-1])
    assert there.in_outage and there.counts()["outages"] == 1
    here.endpoint_answered()  # the coordinator's prober, on its own Pace
    assert sent[-1] == ("answered",) and not here.in_outage
    there.apply(sent[-1])
    assert not there.in_outage
