"""--limit-schedule: limits by the time of day (after rclone's --bwlimit timetable). Entries
"HH:MM[:SS],BANDWIDTH[,REQUESTS]" separated by spaces, in local time, e.g. "08:00,10MB/s 19:00,off" (10 MB/s in
office hours, no limit at night) or "09:00,off,50" (50 requests per second, no bandwidth limit). The entry in
force is the last one whose time has passed today (before the first: yesterday's last); "off" is no limit.
run/limitcontrol.py applies it while a run goes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mpupload.core.errors import SettingsError
from mpupload.core.units import parse_rate


@dataclass(frozen=True)
class Entry:
    at: int  # seconds after local midnight
    bandwidth: float | None
    rps: float | None


def _seconds(text: str) -> int:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise SettingsError(f"--limit-schedule: {text!r} is not a time (HH:MM or HH:MM:SS)")
    h, m, s = (int(p) for p in (parts + ["0"])[:3])
    if h > 23 or m > 59 or s > 59:
        raise SettingsError(f"--limit-schedule: {text!r} is not a time of day")
    return h * 3600 + m * 60 + s


def _value(text: str, *, rate: bool) -> float | None:
    if text.lower() in ("off", "none", "0", ""):
        return None
    try:
        value = float(parse_rate(text)) if rate else float(text)
    except (ValueError, SettingsError):
        raise SettingsError(f"--limit-schedule: {text!r} is not a {'rate' if rate else 'number'}") from None
    if value <= 0:
        raise SettingsError(f"--limit-schedule: {text!r} must be positive (or off)")
    return value


def parse_schedule(text: str) -> list[Entry]:
    """The timetable's entries sorted by time; SettingsError (a usage error) for anything else."""
    entries = []
    for item in text.split():
        fields = item.split(",")
        if len(fields) not in (2, 3):
            raise SettingsError(f"--limit-schedule: {item!r} is not TIME,BANDWIDTH[,REQUESTS]")
        entries.append(Entry(_seconds(fields[0]), _value(fields[1], rate=True),
                             _value(fields[2], rate=False) if len(fields) == 3 else None))
    if not entries:
        raise SettingsError("--limit-schedule is empty")
    return sorted(entries, key=lambda e: e.at)


def entry_at(entries: list[Entry], now: float) -> Entry:
    """The entry in force at wall time `now` (local time)."""
    t = time.localtime(now)
    second = t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec
    current = entries[-1]  # before today's first entry: yesterday's last
    for e in entries:
        if e.at <= second:
            current = e
    return current
