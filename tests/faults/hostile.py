"""Building hostile source trees: special files, every kind of symlink, names S3 or the terminal chokes
on. Each builder returns what should land and what should be reported, by relative path."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LONG_PART = "x" * 250  # under NAME_MAX (255) per folder, but five of them make a key over 1024 bytes


def _write(root: Path, rel: str, data: bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def hostile_tree(root: Path, outside: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """(good files by rel, bad entries by rel -> words their reason must hold) for a default run."""
    good = {rel: _write(root, rel, data) for rel, data in (
        ("1950/a.jp2", b"a" * 5000),
        ("1950/empty.jp2", b""),
        ("1950/deep/er/zero.txt", b""),
        ("1950/new\nline.jp2", b"newline in the name"),
        ("1950/tab\tand\x01control.jp2", b"control characters in the name"),
        ("1950/ünï cödé.jp2", "ünïcödé bytes".encode()),
    )}
    _write(outside, "elsewhere.jp2", b"outside the tree")
    os.mkfifo(root / "1950" / "pipe.jp2")  # opening it would block forever: it must never be opened
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "1950" / "sock"))
    os.symlink("a.jp2", root / "1950" / "link.jp2")
    os.symlink("pipe.jp2", root / "1950" / "link-to-pipe")
    os.symlink("nowhere", root / "1950" / "broken")
    os.symlink("selfloop", root / "1950" / "selfloop")
    os.symlink("..", root / "1950" / "up")  # a folder loop, once followed
    os.symlink(outside, root / "outside")
    # A name that is not UTF-8: only a bytes path can create it. It lands, its bad bytes escaped (keyorder.py).
    bad_name = os.fsencode(root / "1950") + b"/bad-\xff\xfe-name.jp2"
    fd = os.open(bad_name, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"latin-1 name")
    os.close(fd)
    good["1950/bad-%FF%FE-name.jp2"] = Path(os.fsdecode(bad_name))
    bad = {
        "1950/pipe.jp2": "FIFO",
        "1950/sock": "socket",
        "1950/link.jp2": "symbolic link",
        "1950/link-to-pipe": "symbolic link",
        "1950/broken": "symbolic link",
        "1950/selfloop": "symbolic link",
        "1950/up": "symbolic link",
        "outside": "symbolic link",
    }
    return good, bad


def followed(root: Path, outside: Path, good: dict[str, Path]) -> tuple[dict[str, Path], dict[str, str]]:
    """The same tree with --follow-symlinks: what lands and what is reported instead."""
    landed = {**good, "1950/link.jp2": root / "1950" / "a.jp2", "outside/elsewhere.jp2": outside / "elsewhere.jp2"}
    bad = {
        "1950/pipe.jp2": "FIFO",
        "1950/link-to-pipe": "FIFO",
        "1950/sock": "socket",
        "1950/broken": "broken symbolic link",
        "1950/selfloop": "loop",
        "1950/up": "loop",
    }
    return landed, bad


def long_key_file(root: Path) -> str:
    rel = "/".join([LONG_PART] * 5) + "/page.jp2"
    _write(root, rel, b"too long a key")
    return rel
