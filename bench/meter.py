"""Bytes and requests over time as the server's side of a link sees them, for checking --max-bandwidth and
--max-requests-per-second: pass `Meter()` as DelayRelay's `meter`, then ask for the busiest window.

PUT requests are counted by their request line (b"PUT /") in the byte stream; a random body
holds such a 5-byte string about once in 10^12 bytes, which no measurement here comes near."""

from __future__ import annotations

import threading
import time
from collections import Counter

_SLOT = 0.1  # seconds per bucket


class Meter:
    def __init__(self, *, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.bytes: Counter[int] = Counter()  # bucket -> bytes
        self.requests: Counter[int] = Counter()  # bucket -> PUT requests

    def __call__(self, data: bytes) -> None:
        slot = int(self._clock() / _SLOT)
        # A request's head is written on its own before its body (http.client, urllib3), and the relay reads
        # it in one piece: a request line does not straddle two chunks.
        puts = data.count(b"PUT /")
        with self._lock:
            self.bytes[slot] += len(data)
            self.requests[slot] += puts

    def busiest(self, what: str, *, window: float = 10.0) -> float:
        """The highest rate (per second) over any `window` seconds."""
        with self._lock:
            series = dict(self.bytes if what == "bytes" else self.requests)
        if not series:
            return 0.0
        n = int(round(window / _SLOT))
        lo, hi = min(series), max(series)
        best = run = sum(series.get(s, 0) for s in range(lo, lo + n))
        for s in range(lo + n, hi + 1):
            run += series.get(s, 0) - series.get(s - n, 0)
            best = max(best, run)
        return best / window

    def average(self, what: str) -> tuple[float, float]:
        """(rate per second, seconds) from the first to the last bucket with traffic."""
        with self._lock:
            series = dict(self.bytes if what == "bytes" else self.requests)
        if not series:
            return 0.0, 0.0
        span = (max(series) - min(series) + 1) * _SLOT
        return sum(series.values()) / span, span
