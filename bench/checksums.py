#!/usr/bin/env python3
"""The hashing cost of a multipart part: CRC64NVME (what FULL_OBJECT parts carry) next to CRC32C (the
composite default before), zlib's CRC32 and xxh3-128, per 8 MiB part, CPU time of this one thread; and
the cost of combining the parts' CRCs into the whole object's (one combine per part).

    PYTHONPATH=. python bench/checksums.py --rounds 15 --out bench/results/checksums

Each round times every algorithm once over the same buffer, in a rotating order (a shared machine's load
touches all alike); the verdict is the median over rounds. The buffer is random bytes, hot in cache after
the first pass, as a part is: it was just read into memory to be sent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import zlib
from pathlib import Path

import xxhash
from awscrt import checksums

PART = 8 * 1024 * 1024
ALGORITHMS = {
    "CRC64NVME (awscrt)": lambda b: checksums.crc64nvme(b),
    "CRC32C (awscrt)": lambda b: checksums.crc32c(b),
    "CRC32 (zlib)": lambda b: zlib.crc32(b),
    "xxh3-128": lambda b: xxhash.xxh3_128_digest(b),
}


def measure(rounds: int) -> dict:
    data = os.urandom(PART)
    times: dict[str, list[float]] = {name: [] for name in ALGORITHMS}
    names = list(ALGORITHMS)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.thread_time()
            ALGORITHMS[name](data)
            times[name].append(time.thread_time() - t0)
    crcs = [(checksums.crc64nvme(data), PART)] * 1000
    t0 = time.thread_time()
    total = crcs[0][0]
    for crc, length in crcs[1:]:
        total = checksums.combine_crc64nvme(total, crc, length)
    combine_us = (time.thread_time() - t0) / (len(crcs) - 1) * 1e6
    rows = {name: {"ms_per_8mib_part": round(statistics.median(t) * 1000, 3),
                   "gb_per_s": round(PART / statistics.median(t) / 1e9, 2),
                   "cpu_s_per_gb": round(statistics.median(t) * 1e9 / PART, 3)} for name, t in times.items()}
    return {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "rounds": rounds, "part_bytes": PART, "per_algorithm": rows, "combine_crc64nvme_us": round(combine_us, 2)}


def markdown(res: dict) -> str:
    lines = [f"# Checksum cost per 8 MiB part ({res['rounds']} rounds, median CPU time of one thread)", "",
             "| algorithm | ms per part | GB/s | CPU-s per GB |", "|---|---|---|---|"]
    for name, row in res["per_algorithm"].items():
        lines.append(f"| {name} | {row['ms_per_8mib_part']} | {row['gb_per_s']} | {row['cpu_s_per_gb']} |")
    lines += ["", f"combine_crc64nvme: {res['combine_crc64nvme_us']} us per part (the whole-object CRC of a "
                  f"10,000-part upload: {res['combine_crc64nvme_us'] * 10:.1f} ms)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    res = measure(args.rounds)
    text = markdown(res)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
        (args.out / "results.md").write_text(text)


if __name__ == "__main__":
    main()
