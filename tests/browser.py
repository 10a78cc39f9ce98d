"""Headless Chromium (Debian package `chromium`) as a person's browser: load a page, keep its DOM, its
console and a screenshot. Tests that need it skip with the reason when it is missing (.ci/run installs it).
A tiny PNG reader counts the pixels of a colour, to tell a drawn chart from an empty frame without Pillow."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run does)")
    raise AssertionError  # unreachable: skip raises


@dataclass
class Loaded:
    dom: str
    log: str
    png: bytes


_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]


def load(page: Path, profile: Path, *, size: str = "1100,2600") -> Loaded:
    """The page as Chromium built it (--dump-dom), what it logged (console messages, refused fetches),
    and a screenshot."""
    exe = chromium()
    url = page.resolve().as_uri()
    dom = subprocess.run([exe, *_FLAGS, f"--user-data-dir={profile}/a", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    shot = profile / "shot.png"
    snap = subprocess.run([exe, *_FLAGS, f"--user-data-dir={profile}/b", f"--window-size={size}",
                           f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert shot.exists(), snap.stderr[-2000:]
    return Loaded(dom=dom.stdout, log=dom.stderr + snap.stderr, png=shot.read_bytes())


def console_problems(log: str) -> list[str]:
    """Lines where the page itself complained: console messages, CSP refusals, failed loads. (Chromium's
    own start-up chatter about D-Bus or the sandbox is not the page's doing.)"""
    marks = ("CONSOLE", "Refused to", "net::ERR", "Uncaught", "Failed to load")
    return [line for line in log.splitlines() if any(m in line for m in marks)]


def png_rgb(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, channels, rows


def count_colour(png: bytes, rgb: tuple[int, int, int], *, tolerance: int = 24) -> int:
    """Pixels within `tolerance` of a colour (anti-aliasing blurs the edges of lines)."""
    width, channels, rows = png_rgb(png)
    n = 0
    for row in rows:
        for x in range(0, width * channels, channels):
            if all(abs(row[x + k] - rgb[k]) <= tolerance for k in range(3)):
                n += 1
    return n
