"""The shared limits' arithmetic at a fake clock: what starts in any window stays within the limit."""

from __future__ import annotations

import threading

import pytest

from mpupload.core.messages import FileTask
from mpupload.pace.limits import BURST_SECONDS, Limits, PartitionPause, SharedRate
from mpupload.run.plan import Batcher


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("rate,size", [(100.0, 1), (20e6, 8 << 20), (20e6, 256 << 10), (5.0, 1)])
def test_starts_in_any_window_stay_within_rate(rate, size):
    clock = Clock()
    r = SharedRate(rate, clock=clock)
    starts = []
    for _ in range(2000):  # a caller that always has the next request ready: the worst case
        start = r.reserve(size)
        clock.t = max(clock.t, start)
        starts.append(start)
    window = 10.0
    for i, s in enumerate(starts):
        in_window = sum(1 for x in starts[i:] if x < s + window) * size
        assert in_window <= rate * (window + BURST_SECONDS) + size
    span = starts[-1] - starts[0]
    assert (len(starts) - 1) * size / span == pytest.approx(rate, rel=0.02)  # and not slower than asked


def test_an_idle_link_may_send_only_a_short_burst():
    clock = Clock()
    r = SharedRate(100.0, clock=clock)
    clock.t += 3600  # idle for an hour: no credit piles up beyond the burst
    starts = [r.reserve(1) for _ in range(200)]
    assert sum(1 for s in starts if s <= clock.t) == pytest.approx(100 * BURST_SECONDS, abs=1)
    assert r.waits.value > 100


def test_limits_take_the_later_of_both():
    lim = Limits(max_bandwidth=1000, max_rps=1000)
    lim.start_when(1000)
    later = lim.start_when(1000)  # the bytes, not the requests, hold this one back
    assert later >= lim.requests.reserve(0) + 0.5
    assert Limits().active is False and Limits(max_rps=5).active


def test_partition_pause_waits_for_the_previous_partition_then_pauses():
    idle = threading.Event()
    said: list[str] = []
    waits: list[float] = []

    class Stop:
        def is_set(self):
            return False

        def wait(self, t):
            waits.append(t)
            idle.set()  # the work handed out comes back while we wait

    pause = PartitionPause(7.0, idle=idle.is_set, notify=said.append)
    pause.before("1920", Stop())
    pause.before("1920", Stop())
    assert waits == [] and pause.pauses == 0
    pause.before("1921", Stop())
    assert waits[-1] == 7.0 and pause.pauses == 1 and len(said) == 1


def _task(i: int, year: str) -> FileTask:
    return FileTask(path=f"/{i}", rel=f"{year}/{i}", key=f"{year}/{i}", size=1, mtime_ns=0, inode=i, partition=year)


def test_grouped_batches_leave_in_runs_of_one_partition():
    b = Batcher(max_files=10, max_bytes=1 << 30, group=True)
    years = ["1920"] * 3 + ["1921"] * 12 + ["1922"] * 2
    out = [x.partition for i, y in enumerate(years) for x in b.add(_task(i, y))] + [x.partition for x in b.flush()]
    assert out == ["1920", "1921", "1921", "1922"]
