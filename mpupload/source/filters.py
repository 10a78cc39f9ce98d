"""What the selection leaves out: --include / --exclude / --exclude-from globs, --min-size / --max-size,
--min-age / --max-age and --one-file-system, applied by the walk (scan.py) and the --files-from reader
(manifest.py) alike, with a count of what each filter removed (the dry run shows it).

Globs are fnmatch patterns on the path relative to SOURCE ("/" separated; `*` and `?` also match "/"); a
pattern without "/" also matches the file name alone. Exclusion wins over inclusion.

A folder is not walked (pruned) when nothing below it could be uploaded:
- an --exclude / --exclude-from pattern that ends in `*` matches the folder's path followed by "/": every
  path below it (`FOLDER/x`, `x` anything) then matches that pattern as well, since the final `*` takes the
  rest. `.snapshot/*` prunes the top-level `.snapshot`, `*/.snapshot/*` every `.snapshot` below the top,
  `*` everything. A pattern that excludes the folder's files one by one (`.snapshot/*.jpg`) prunes nothing:
  a folder holds more than its own name says. This is exact: no file a walk would have uploaded is pruned.
- --one-file-system: the folder is on another device than SOURCE (a mount point; st_dev differs).

Order: a file is counted once, under the first filter that removes it: --include, --exclude,
--exclude-from, --min-size, --max-size, --min-age, --max-age, --one-file-system. Sizes are inclusive
bounds (min <= size <= max), as rclone's; age is the time since the file's mtime, measured from the moment
the walk starts, inclusive too.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from mpupload.core.errors import SettingsError

INCLUDE, EXCLUDE, EXCLUDE_FROM = "--include", "--exclude", "--exclude-from"
MIN_SIZE, MAX_SIZE, MIN_AGE, MAX_AGE = "--min-size", "--max-size", "--min-age", "--max-age"
ONE_FS = "--one-file-system"


@dataclass(frozen=True, slots=True)
class Filtered:
    """A file a size, age or file-system filter left out, yielded in key order only when asked for (verify:
    an object at its key is the source's, not extra)."""

    rel: str
    why: str


def read_patterns(path: str) -> tuple[str, ...]:
    """The globs of an --exclude-from file: one per line; blank lines and lines starting with # ignored;
    surrounding whitespace kept out (a pattern for a name with leading spaces is rare; a stray space is not)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = [line.strip() for line in f]
    except OSError as exc:
        raise SettingsError(f"--exclude-from {path}: cannot read: {exc.strerror or exc}") from None
    return tuple(line for line in lines if line and not line.startswith("#"))


class _Globs:
    """Patterns compiled once: one regex for full paths, one for names (the patterns without "/"); the
    prefixes that prune a folder (patterns ending in `*`)."""

    def __init__(self, patterns: tuple[str, ...]):
        self.patterns = patterns
        self._full = _union(patterns)
        self._name = _union(tuple(p for p in patterns if "/" not in p))
        self._prune = _union(tuple(p for p in patterns if p.endswith("*")))

    def hit(self, rel: str) -> bool:
        if self._full is not None and self._full(rel):
            return True
        return self._name is not None and self._name(rel.rpartition("/")[2]) is not None

    def prunes(self, rel_dir: str) -> bool:
        return self._prune is not None and self._prune(rel_dir + "/") is not None


def _union(patterns: tuple[str, ...]) -> Callable[[str], object] | None:
    # Each translate() is anchored at both ends; their alternation matches what fnmatchcase of any one does.
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match if patterns else None


class Filters:
    """The selection of one walk: what it keeps, and `removed` / `pruned` counts by filter (files left out,
    folders not walked). `mark`: left-out files of the size, age and file-system filters come out as
    `Filtered` entries instead of nothing."""

    def __init__(self, *, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                 exclude_from: tuple[str, ...] = (), min_size: int | None = None, max_size: int | None = None,
                 min_age: float | None = None, max_age: float | None = None, one_file_system: bool = False,
                 now: float | None = None, mark: bool = False):
        self._include = _Globs(include) if include else None
        self._exclude = _Globs(exclude)
        self._exclude_from = _Globs(tuple(p for path in exclude_from for p in read_patterns(path)))
        self.min_size, self.max_size = min_size, max_size
        now = time.time() if now is None else now
        # Ages as mtime bounds (ns): newest allowed from --min-age, oldest from --max-age.
        self._newest = int((now - min_age) * 1e9) if min_age is not None else None
        self._oldest = int((now - max_age) * 1e9) if max_age is not None else None
        self.one_file_system, self.mark = one_file_system, mark
        self.root_dev: int | None = None  # SOURCE's device, set by the walk
        self.removed: Counter[str] = Counter()
        self.pruned: Counter[str] = Counter()
        self.pruned_mounts: list[str] = []  # relative paths of folders --one-file-system did not enter

    @classmethod
    def from_settings(cls, s, *, mark: bool = False) -> Filters:
        return cls(include=s.include, exclude=s.exclude, exclude_from=s.exclude_from, min_size=s.min_size,
                   max_size=s.max_size, min_age=s.min_age, max_age=s.max_age, one_file_system=s.one_file_system,
                   mark=mark)

    @property
    def active(self) -> bool:
        """Whether anything at all is left out (verify: objects may be the selection's, not extra)."""
        return bool(self._include or self._exclude.patterns or self._exclude_from.patterns or self.one_file_system
                    or self.min_size is not None or self.max_size is not None or self._newest is not None
                    or self._oldest is not None)

    def _pattern_drop(self, rel: str) -> str | None:
        if self._include is not None and not self._include.hit(rel):
            return INCLUDE
        if self._exclude.hit(rel):
            return EXCLUDE
        if self._exclude_from.hit(rel):
            return EXCLUDE_FROM
        return None

    def wants(self, rel: str) -> bool:
        """Whether the globs keep `rel` (counting it when they do not): links, missing listed files."""
        why = self._pattern_drop(rel)
        if why:
            self.removed[why] += 1
        return why is None

    def file(self, rel: str, st: os.stat_result) -> str | None:
        """The filter that leaves out the file `rel` (its stat, a link's target's when following), or None."""
        why = self._pattern_drop(rel) or self._attribute_drop(st)
        if why:
            self.removed[why] += 1
        return why

    def _attribute_drop(self, st: os.stat_result) -> str | None:
        if self.min_size is not None and st.st_size < self.min_size:
            return MIN_SIZE
        if self.max_size is not None and st.st_size > self.max_size:
            return MAX_SIZE
        if self._newest is not None and st.st_mtime_ns > self._newest:
            return MIN_AGE
        if self._oldest is not None and st.st_mtime_ns < self._oldest:
            return MAX_AGE
        if self.one_file_system and self.root_dev is not None and st.st_dev != self.root_dev:
            return ONE_FS
        return None

    def marked(self, why: str) -> bool:
        """Whether a file left out by `why` comes out as a Filtered entry."""
        return self.mark and why not in (INCLUDE, EXCLUDE, EXCLUDE_FROM)

    def prunes(self, rel: str, st: os.stat_result) -> str | None:
        """The filter that keeps the walk out of folder `rel` (its stat), or None to walk it."""
        if self.one_file_system and self.root_dev is not None and st.st_dev != self.root_dev:
            self.pruned[ONE_FS] += 1
            self.pruned_mounts.append(rel + "/")
            return ONE_FS
        for why, globs in ((EXCLUDE, self._exclude), (EXCLUDE_FROM, self._exclude_from)):
            if globs.prunes(rel):
                self.pruned[why] += 1
                return why
        return None

    def leaves_out_object(self, rel: str, size: int) -> bool:
        """Whether an object at relative key `rel` of `size` bytes is outside the selection (verify does not
        call it extra): the globs leave its path out, its size is outside the size bounds, or it lies under a
        folder --one-file-system did not enter. (Objects whose local file an age filter left out come as
        Filtered entries: an object's own date is its upload's, not its file's.)"""
        if self._pattern_drop(rel):
            return True
        if (self.min_size is not None and size < self.min_size) or (self.max_size is not None and size > self.max_size):
            return True
        return any(rel.startswith(folder) for folder in self.pruned_mounts)

    def report(self) -> dict[str, dict[str, int]]:
        """{filter: {"files": removed, "folders": not walked}} for the filters that removed anything."""
        names = sorted(set(self.removed) | set(self.pruned), key=_ORDER.index)
        return {n: {"files": self.removed[n], "folders": self.pruned[n]} for n in names}


_ORDER = [INCLUDE, EXCLUDE, EXCLUDE_FROM, MIN_SIZE, MAX_SIZE, MIN_AGE, MAX_AGE, ONE_FS]
