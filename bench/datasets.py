"""The benchmark data sets, generated once and cached: a `.complete` marker holding the spec means a
folder is whole and matches, so an interrupted generation is redone rather than half-used."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

KIB, MIB = 1024, 1024**2
_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # small | news | large
    files: int  # small/large: file count; news: pages
    size: int  # bytes per file (small/large); unused for news

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.files}x{self.size}" if self.kind != "news" else f"{self.name}-{self.files}p"


def specs(*, quick: bool) -> dict[str, Spec]:
    """Full sizes match the reference numbers measured earlier; quick keeps a whole run under 5 minutes."""
    # `many` is not in the default comparison: it is the memory check (peak RSS with 6000 files).
    many = Spec("many", "small", 6000, 256 * KIB)
    if quick:
        return {"small": Spec("small", "small", 600, 256 * KIB), "news": Spec("news", "news", 500, 0),
                "large": Spec("large", "large", 2, 64 * MIB), "many": many}
    return {"small": Spec("small", "small", 2000, 256 * KIB), "news": Spec("news", "news", 2000, 0),
            "large": Spec("large", "large", 4, 256 * MIB), "many": many}


DEFAULT = ("small", "news", "large")


@dataclass(frozen=True)
class Dataset:
    spec: Spec
    root: Path
    files: int
    nbytes: int


def _write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:  # bounded chunks: a 256 MiB file never sits in memory whole
            n = min(left, 16 * MIB)
            f.write(os.urandom(n))
            left -= n


def _generate(spec: Spec, root: Path) -> None:
    if spec.kind == "news":
        sys.path.insert(0, str(_SCRIPTS))
        from make_archive import make_archive

        make_archive(root, pages=spec.files, seed=1, large=2)
        return
    for i in range(spec.files):
        # Spread over year folders (like the archive) so mpupload's partitions are exercised.
        _write_random(root / str(1920 + i % 50) / f"file-{i:05d}.bin", spec.size)


def _count(root: Path) -> tuple[int, int]:
    files = nbytes = 0
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            files += 1
            nbytes += os.stat(os.path.join(dirpath, n)).st_size
    return files, nbytes


def ensure(spec: Spec, data_dir: Path) -> Dataset:
    """The data set under data_dir, generated unless a complete copy with the same spec is there."""
    root = data_dir / spec.folder
    marker = data_dir / f"{spec.folder}.complete"
    want = asdict(spec)
    if marker.exists() and root.is_dir():
        saved = json.loads(marker.read_text())
        if saved.get("spec") == want:
            return Dataset(spec, root, saved["files"], saved["bytes"])
    shutil.rmtree(root, ignore_errors=True)
    marker.unlink(missing_ok=True)
    _generate(spec, root)
    files, nbytes = _count(root)
    marker.write_text(json.dumps({"spec": want, "files": files, "bytes": nbytes}))
    return Dataset(spec, root, files, nbytes)
