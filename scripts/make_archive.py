#!/usr/bin/env python3
"""Generate a synthetic newspaper archive: one folder per year (1920-1969), issues as dated folders,
scanned pages of uneven size, a few oversize supplements (multipart-sized), odd names, an empty file.

Deterministic for a given --seed, so runs and benchmarks are comparable.
    python scripts/make_archive.py DIR [--pages 600] [--seed 1] [--large 2]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

KIB, MIB = 1024, 1024 * 1024


def year_weight(year: int) -> float:
    # Wartime and post-war years ran thicker papers: make the partitions deliberately uneven.
    if 1941 <= year <= 1945:
        return 4.0
    if 1946 <= year <= 1955:
        return 2.0
    if year < 1930:
        return 0.5
    return 1.0


def make_archive(root: Path, *, pages: int = 600, seed: int = 1, large: int = 2, large_size: int = 12 * MIB,
                 first_year: int = 1920, last_year: int = 1969) -> tuple[int, int]:
    """Write the archive under root; return (files, bytes)."""
    rng = random.Random(seed)
    years = list(range(first_year, last_year + 1))
    weights = [year_weight(y) for y in years]
    per_year = {y: 0 for y in years}
    for y in rng.choices(years, weights=weights, k=pages):
        per_year[y] += 1
    files = total = 0

    def write(path: Path, size: int) -> None:
        nonlocal files, total
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        files += 1
        total += size

    for year, n in per_year.items():
        for i in range(n):
            issue = f"{year}-{1 + i // 8 % 12:02d}-{1 + i // 2 % 28:02d}"
            size = int(rng.lognormvariate(11.9, 0.6))  # median ~150 KB, a long tail of big scans
            write(root / str(year) / issue / f"page-{i % 8 + 1:03d}.jp2", max(1 * KIB, min(size, 4 * MIB)))
    # The awkward ones a real archive always has.
    write(root / "1942" / "supplements" / "war bonds insert.pdf", 300 * KIB)
    write(root / "1953" / "Coronation — édition spéciale" / "page 1.jp2", 200 * KIB)
    write(root / "1931" / "notes" / "empty-index.txt", 0)
    for k in range(large):
        write(root / str(1944 + k) / "supplements" / f"atlas-{k + 1}.tif", large_size + rng.randrange(MIB))
    return files, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path)
    p.add_argument("--pages", type=int, default=600)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--large", type=int, default=2, help="multipart-sized supplements (~12 MiB each)")
    a = p.parse_args()
    files, total = make_archive(a.dir, pages=a.pages, seed=a.seed, large=a.large)
    print(f"wrote {files} files, {total / MIB:.1f} MiB under {a.dir}")


if __name__ == "__main__":
    main()
