"""Sizes and rates as people write them: '8MiB' = '8MB' = '8M' (1024-based, as the AWS CLI reads them),
'50MB/s'; and sizes as people read them."""

from __future__ import annotations

import re

from mpupload.core.errors import SettingsError

_UNITS = {"": 1, "b": 1, **{spelling: 1024**power for power, letter in enumerate("kmgt", start=1)
                             for spelling in (letter, letter + "b", letter + "i", letter + "ib")}}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """'8MiB' = '8MB' = '8M' -> 8388608, '1024' -> 1024: 1024-based like the AWS CLI, case-insensitive. The one
    parser of sizes (the CLI's SIZE type, settings files and environment variables all come through it)."""
    if isinstance(text, int):
        if text < 0:
            raise SettingsError(f"size must not be negative: {text}")
        return text
    m = _SIZE_RE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise SettingsError(f"not a size: {text!r} (use bytes, or a unit such as 8MB, 64MiB, 1GB; "
                             "units are 1024-based, as in the AWS CLI)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_rate(text: str | int | None) -> int | None:
    """'50MB/s' -> 52428800 bytes per second ('/s' optional; the units of parse_size, 1024-based like the AWS
    CLI's max_bandwidth); None or '' = no limit."""
    if text is None or text == "":
        return None
    if isinstance(text, str):
        text = text.strip()
        text = text[:-2] if text.lower().endswith("/s") else text
    n = parse_size(text)
    return n or None


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


_DURATION_PIECE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | float | int) -> float:
    """'30m' -> 1800.0, '12h', '7d', '2w', '1h30m', '90' (seconds) -> seconds, as rclone's --max-age reads them."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise SettingsError(f"duration must not be negative: {text}")
        return float(text)
    spec = str(text).strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", spec):
        return float(spec)
    if not re.fullmatch(r"(?:\d+(?:\.\d+)?[smhdw])+", spec):
        raise SettingsError(f"not a duration: {text!r} (use seconds, or units s, m, h, d, w: 30m, 12h, 7d, 1h30m)")
    return float(sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PIECE.findall(spec)))


LOOPBACK = "127.0.0.1"


def parse_address(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[IPv6]:PORT', 'PORT' or ':PORT' -> (host, port); no host means 127.0.0.1 (loopback:
    listening on every interface must be asked for by name, 0.0.0.0:PORT)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"not an address: {text!r} (use HOST:PORT or PORT, e.g. 127.0.0.1:9464)")
    return host or LOOPBACK, int(port)
