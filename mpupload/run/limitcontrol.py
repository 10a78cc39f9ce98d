"""Limits that change while a run goes: a timetable in the settings (--limit-schedule, after rclone's
--bwlimit timetable) and `mpupload limit`, which changes the limits of a running run from another terminal.

`mpupload limit` writes a small JSON file beside the run's journal (JOURNAL.limits.json, replaced atomically);
the coordinator looks at it once a second and sets the shared limits (pace/limits.py), which every worker
process reads at its next request (a Dask worker hears them with the coordinator's heartbeat). What is set
there holds until the next `mpupload limit` (--reset returns to the flags and the timetable). The file is
removed when a run starts, so an old word does not slow a new run.

The timetable's format is settings/timetable.py's. Flags (--max-bandwidth, --max-requests-per-second) hold
where no timetable is given.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mpupload.core.units import format_size
from mpupload.pace.limits import Limits
from mpupload.settings.config import Settings
from mpupload.settings.timetable import entry_at, parse_schedule

CHECK_EVERY = 1.0  # seconds between looks at the control file and the timetable


def control_path(journal: str | os.PathLike) -> Path:
    return Path(f"{journal}.limits.json")


def write_control(journal: str | os.PathLike, *, max_bandwidth: float | None, max_rps: float | None,
                  reset: bool = False) -> Path:
    """What `mpupload limit` does: replace the control file (or remove it, `reset`)."""
    path = control_path(journal)
    if reset:
        path.unlink(missing_ok=True)
        return path
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"max_bandwidth": max_bandwidth, "max_requests_per_second": max_rps,
                               "set_at": time.time()}))
    os.replace(tmp, path)
    return path


class LimitControl:
    """The coordinator's side: `tick` (from the main loop) applies the control file or the timetable."""

    def __init__(self, s: Settings, limits: Limits, *, wall=time.time, clock=time.monotonic):
        self.limits, self._wall, self._clock = limits, wall, clock
        self._flags = (s.max_bandwidth, s.max_requests_per_second)
        self._schedule = parse_schedule(s.limit_schedule) if s.limit_schedule else None
        self._path = control_path(s.journal)
        self._path.unlink(missing_ok=True)  # a word left by an earlier run does not hold for this one
        self._seen: float | None = None  # the control file's mtime last applied
        self._override: tuple[float | None, float | None] | None = None
        self._last_check = -CHECK_EVERY
        self.changes = 0
        self.tick(force=True)

    def _read_override(self) -> None:
        try:
            mtime = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            self._override, self._seen = None, None
            return
        if mtime == self._seen:
            return
        try:
            doc = json.loads(self._path.read_text())
            self._override = (doc.get("max_bandwidth"), doc.get("max_requests_per_second"))
            self._seen = mtime
        except (OSError, ValueError):
            return  # being replaced right now: the next look reads it whole

    def wanted(self) -> tuple[float | None, float | None]:
        if self._override is not None:
            return self._override
        if self._schedule is not None:
            e = entry_at(self._schedule, self._wall())
            return e.bandwidth, e.rps
        return self._flags

    def tick(self, *, force: bool = False) -> bool:
        """Look again (once a second); True when the limits changed."""
        now = self._clock()
        if not force and now - self._last_check < CHECK_EVERY:
            return False
        self._last_check = now
        self._read_override()
        bandwidth, rps = self.wanted()
        if (bandwidth or None, rps or None) == self.limits.in_force():
            return False
        self.limits.set(max_bandwidth=bandwidth, max_rps=rps)
        if force:
            return False
        self.changes += 1
        return True

    def describe(self) -> str:
        """The limits now in force and where they came from, for the operator (each change is said)."""
        bandwidth, rps = self.limits.in_force()
        source = "mpupload limit" if self._override is not None else ("--limit-schedule" if self._schedule else "flags")
        parts = [f"bandwidth {format_size(bandwidth)}/s" if bandwidth else "no bandwidth limit",
                 f"{rps:g} requests/s" if rps else "no request-rate limit"]
        return f"limits now ({source}, change {self.changes}): {', '.join(parts)}"
