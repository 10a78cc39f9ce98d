"""Choosing processes and threads when the user gave neither: from the CPU count and the size mix of the
first files of the plan (a cheap, bounded pre-scan).

Why these rules (bench/results, 2 cores, SeaweedFS sharing them):
- Small files cost client CPU per request (botocore builds, signs and parses each one) and the GIL
  serialises that inside a process, so small-file work wants one process per core, and 8 threads keep
  each process busy while requests wait on the server.
- Large files are hashed, checksummed and sent in big buffers: hashlib, zlib and socket sends release
  the GIL, so one process drives many parts; more processes only add memory
  (threads x chunksize each) and start-up time.
- A tiny job is dominated by start-up (each spawned process imports boto3 and builds a client, ~0.4
  CPU-s): use as few processes as the work needs, and none for a job small enough that its upload costs
  less than starting a process: its threads run in the coordinator (processes=0), which idles anyway
  (bench/results/startup-before: a one-file upload took 1.05 s with one worker process, 0.78 s without).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

SAMPLE_FILES = 2000  # enough to see the mix of a folder tree; bounded so the pre-scan stays < ~0.2 s
SAMPLE_SECONDS = 0.5
FILES_PER_PROCESS = 250  # below this many small files per process, start-up costs more than a process gives
MAX_PROCESSES = 16
# A complete job at most this big runs in the coordinator's process. ~250 small files cost ~0.6 CPU-s to
# send (2.4 ms each, bench/results/main), about what spawning a worker costs; 64 MiB is ~0.6 s of sending.
INLINE_MAX_FILES = FILES_PER_PROCESS
INLINE_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SizeMix:
    """What a pre-scan saw: files and bytes below and at/above the multipart threshold."""

    small_files: int = 0
    small_bytes: int = 0
    large_files: int = 0
    large_bytes: int = 0
    complete: bool = True  # False: the sample stopped early, the tree holds more files

    @property
    def files(self) -> int:
        return self.small_files + self.large_files

    @property
    def bytes(self) -> int:
        return self.small_bytes + self.large_bytes

    @property
    def large_byte_share(self) -> float:
        return self.large_bytes / self.bytes if self.bytes else 0.0


@dataclass(frozen=True)
class Choice:
    processes: int
    threads: int
    reason: str


def choose(*, cpus: int, mix: SizeMix) -> Choice:
    """Processes and threads for this machine and this size mix. Pure."""
    cpus = max(1, cpus)
    per_core = max(2, min(cpus, MAX_PROCESSES))
    if mix.complete and mix.files <= INLINE_MAX_FILES and mix.bytes <= INLINE_MAX_BYTES:
        return Choice(0, 8, f"a small job ({mix.files} files, {mix.bytes / 1e6:.1f} MB): threads in this process, "
                            "since starting a worker process would cost more than the upload")
    if mix.files == 0:
        return Choice(1, 8, "nothing to upload found in the sample: one process")
    if mix.large_byte_share >= 0.8 and mix.small_files <= mix.large_files * 50:
        # Large-file work: parts in flight matter, processes do not (the GIL is released on big buffers).
        procs = 1 if cpus <= 2 or mix.large_files == 1 else 2
        return Choice(procs, 8, f"mostly large files ({mix.large_byte_share:.0%} of bytes): {procs} process(es), "
                                "8 parts in flight each; more processes would only add memory")
    if mix.complete:
        # The whole job is known: no more processes than it has work for.
        procs = max(1, min(per_core, mix.files // FILES_PER_PROCESS))
        if procs < per_core:
            return Choice(procs, 8, f"only {mix.files} files: {procs} process(es), since start-up outweighs "
                                    "another process")
    return Choice(per_core, 8, f"mostly small files ({mix.small_files} of {mix.files} sampled): one process "
                               f"per core ({per_core}); small files in flight follow the link")


def sample_mix(source: str, *, threshold: int, follow_symlinks: bool = False, filters=None,
               limit: int = SAMPLE_FILES, seconds: float = SAMPLE_SECONDS, items=None) -> SizeMix:
    """Sizes of the first `limit` files the scan (or `items`, e.g. sources.iter_source) yields (bounded
    in count and time)."""
    from mpupload.source.scan import FileEntry, scan

    counts = [0, 0, 0, 0]
    seen = 0
    deadline = time.monotonic() + seconds
    complete = True
    if items is None:
        items = scan(source, follow_symlinks=follow_symlinks, filters=filters)
    for item in items:
        if not isinstance(item, FileEntry):
            continue
        big = item.size >= threshold
        counts[2 * big] += 1
        counts[2 * big + 1] += item.size
        seen += 1
        if seen >= limit or time.monotonic() > deadline:
            complete = False
            break
    return SizeMix(counts[0], counts[1], counts[2], counts[3], complete=complete)
