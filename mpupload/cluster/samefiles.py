"""Every Dask worker must read SOURCE as this machine does (a shared filesystem mounted at the same path).
Before the first batch goes out, a sample of the source is described here (path, size, a digest) and every
worker describes the same paths; any difference ends the run at once (exit 3) with what differed, instead
of files failing one by one, or worse, another machine's files landing under these keys."""

from __future__ import annotations

import os
import random
from itertools import islice

import xxhash

from mpupload.settings.config import Settings
from mpupload.source.scan import FileEntry

SAMPLE = 16  # files compared
POOL = 2000  # drawn from the first entries of the source (the walk's order), seeded: the same every run
_WHOLE = 4 * 1024 * 1024  # files up to this are hashed whole; bigger ones by their first and last MiB
_EDGE = 1024 * 1024


def sample_of(s: Settings) -> list[tuple[str, str]]:
    """(relative path, absolute path) of up to SAMPLE files spread over the first POOL of the source."""
    from mpupload.source.sources import iter_source

    files = [(e.rel, e.path) for e in islice(iter_source(s), POOL) if isinstance(e, FileEntry)]
    if len(files) <= SAMPLE:
        return files
    return sorted(random.Random(0).sample(files, SAMPLE))


def describe(path: str) -> str:
    """'SIZE:DIGEST' of a file, or why it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h = xxhash.xxh3_64()
            if size <= _WHOLE:
                h.update(f.read())
            else:
                h.update(f.read(_EDGE))
                f.seek(size - _EDGE)
                h.update(f.read(_EDGE))
        return f"{size}:{h.hexdigest()}"
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"


def describe_all(paths: list[str]) -> list[str]:
    """Run on every worker (Client.run)."""
    return [describe(p) for p in paths]


def differences(sample: list[tuple[str, str]], here: list[str], there: dict[str, list[str]]) -> list[str]:
    """One line per worker that sees the sample otherwise than this machine."""
    lines = []
    for worker, seen in sorted(there.items()):
        bad = [(rel, mine, theirs) for (rel, _), mine, theirs in zip(sample, here, seen, strict=True) if mine != theirs]
        if bad:
            rel, mine, theirs = bad[0]
            lines.append(f"{worker}: {len(bad)} of {len(sample)} sample files differ, e.g. {rel!r}: "
                         f"{_human(theirs)} there, {_human(mine)} here")
    return lines


def _human(described: str) -> str:
    if not described[:1].isdigit():
        return described
    size, digest = described.split(":", 1)
    return f"{size} bytes, xxh3-64 {digest}"
