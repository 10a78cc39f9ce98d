"""A small archive for the fault scenarios: enough files that faults land on many of them, small enough
that a run through the proxy takes seconds on a shared two-core machine."""

from __future__ import annotations

import random
from pathlib import Path

KIB, MIB = 1024, 1024 * 1024


def small_archive(root: Path, *, files: int = 200, seed: int = 4, big: int = 12 * MIB) -> dict[str, Path]:
    """`files` pages of 1-200 KiB spread over a few years, plus one multipart-sized file and an empty
    one; returns them by relative path."""
    rng = random.Random(seed)
    out: dict[str, Path] = {}
    for i in range(files):
        rel = f"{1940 + i % 6}/issue-{i // 24:02d}/page-{i:04d}.jp2"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randrange(1 * KIB, 200 * KIB)))
        out[rel] = p
    for rel, size in (("1944/supplements/atlas.tif", big + rng.randrange(MIB)), ("1931/empty.txt", 0)):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))
        out[rel] = p
    return out


def upload_args(src: Path, bucket: str, prefix: str, endpoint_url: str, *extra: str) -> list[str]:
    """The fault scenarios' command: small multipart parts, quick backoff, short read timeout."""
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", endpoint_url, "--json",
            "--processes", "2", "--threads", "4",
            "--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB",
            "--backoff-base", "0.05", "--backoff-cap", "1", "--read-timeout", "3", "--connect-timeout", "3",
            *extra]
