"""A/B of two checkouts of mpupload (e.g. before and after a refactor): the same upload of N x SIZE files with
each tree's own `.venv/bin/mpupload`, rounds interleaved (A B, B A, ...) against one throwaway SeaweedFS, so both
see the same load. Reports the medians and the median of the paired ratios (wall, client CPU of the process tree).

    python bench/ab_trees.py /path/to/before /path/to/after --files 2000 --size 262144 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mpupload import localserver  # noqa: E402


def _tree(root: Path, files: int, size: int) -> None:
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == f"{files}x{size}":
        return
    for i in range(files):
        p = root / str(1920 + i % 10) / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    marker.write_text(f"{files}x{size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256 * 1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "mpupload-ab-data")
    a = ap.parse_args()
    _tree(a.data, a.files, a.size)
    trees = {"a": a.a, "b": a.b}
    rows: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    with tempfile.TemporaryDirectory() as tmp:
        server = localserver.start(Path(tmp) / "s3")
        try:
            server.client().create_bucket(Bucket="ab-trees")
            for r in range(a.rounds):
                for name in ("a", "b") if r % 2 == 0 else ("b", "a"):
                    env = {**os.environ, **server.env(), "XDG_STATE_HOME": f"{tmp}/state-{name}-{r}"}
                    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
                    subprocess.run([str(trees[name] / ".venv/bin/mpupload"), "upload", str(a.data),
                                    f"s3://ab-trees/{name}-{r}", "--endpoint-url", server.endpoint_url, "--quiet"],
                                   env=env, check=True, capture_output=True)
                    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
                    rows[name].append((time.perf_counter() - t0, cpu))
                    print(f"{name} round {r}: wall {rows[name][-1][0]:.2f} s, CPU {cpu:.2f} s", flush=True)
        finally:
            server.stop()
    for name in ("a", "b"):
        print(f"{name} ({trees[name]}): median wall {statistics.median(w for w, _ in rows[name]):.2f} s, "
              f"median client CPU {statistics.median(c for _, c in rows[name]):.2f} s")
    pairs = list(zip(rows["b"], rows["a"], strict=False))
    print(f"b/a: wall {statistics.median(x[0] / y[0] for x, y in pairs):.3f}, "
          f"CPU {statistics.median(x[1] / y[1] for x, y in pairs):.3f} (median of paired rounds)")


if __name__ == "__main__":
    main()
