"""Values every worker of a run shares, whether the workers are processes (a multiprocessing context:
RawValue, RawArray, a process Lock) or threads of this process (`ctx` None: plain cells, a threading Lock).
One holder for the pace, the limits, the in-flight limit and the checksum verdicts, so each reads `.value`
the same way in both cases. No multiprocessing Event here: its set() waits for every sleeper to wake, and a
process that ended mid-wait never does (s3/xxprobe.py)."""

from __future__ import annotations

import threading
from typing import Any


class Cell:
    """The shape of a multiprocessing RawValue (a `.value`), for workers that are threads."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def value(ctx, typecode: str, initial: Any):
    """A shared number: a RawValue of `typecode` across processes (reads and writes of an aligned number are
    atomic; anything read-modify-write takes `lock(ctx)`), or a Cell."""
    return Cell(initial) if ctx is None else ctx.RawValue(typecode, initial)


def byte_string(ctx, size: int):
    """Shared bytes of at most size - 1 (`.value`, NUL-terminated across processes)."""
    return Cell(b"") if ctx is None else ctx.RawArray("c", size)


def lock(ctx):
    return threading.Lock() if ctx is None else ctx.Lock()
