"""Progress per partition (year), for the live view and `mpupload status`: how many files and bytes each
partition holds (from the census ahead of the planner, or the planner's own walk once it is done), how many
are done, how many failed, and when the last one finished (to put the active partitions first).

Bounded without a cap: partitions are years between 1800 and 2100 (plan.year_of), plus "" for entries that
never got one (special files, unreadable names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NO_PARTITION = ""


@dataclass(frozen=True, slots=True)
class PartitionRow:
    name: str
    files: int  # the partition's total (or what was found so far, while `known` is False)
    bytes: int
    done: int  # uploaded + skipped + failed
    done_bytes: int
    failed: int
    last: float  # clock time of its last finished file, 0.0 when none yet
    known: bool

    @property
    def complete(self) -> bool:
        return self.known and self.done >= self.files

    @property
    def started(self) -> bool:
        return self.done > 0


class _Count:
    __slots__ = ("files", "bytes", "done", "done_bytes", "failed", "last")

    def __init__(self):
        self.files = self.bytes = self.done = self.done_bytes = self.failed = 0
        self.last = 0.0


class PartitionTally:
    def __init__(self):
        self._found: dict[str, _Count] = {}
        self._census: Mapping[str, tuple[int, int]] = {}

    def _of(self, name: str) -> _Count:
        c = self._found.get(name)
        if c is None:
            c = self._found[name] = _Count()
        return c

    def found(self, name: str, files: int, nbytes: int) -> None:
        c = self._of(name)
        c.files += files
        c.bytes += nbytes

    def census(self, counts: Mapping[str, tuple[int, int]]) -> None:
        """The census' counts so far (a fresh mapping: it is replaced, never changed in place)."""
        self._census = counts

    def finished(self, name: str, *, files: int, nbytes: int, failed: bool, now: float) -> None:
        c = self._of(name)
        c.done += files
        c.done_bytes += nbytes
        if failed:
            c.failed += files
        c.last = now

    def rows(self, *, scan_done: bool, census_done: bool) -> tuple[PartitionRow, ...]:
        """Every partition, sorted by name. Totals: the planner's walk once it finished, else the census once it
        finished, else the larger of the two so far (not known yet)."""
        census = self._census
        out = []
        for name in sorted(set(self._found) | set(census)):
            c = self._found.get(name) or _Count()
            if scan_done:
                files, nbytes, known = c.files, c.bytes, True
            else:
                cf, cb = census.get(name, (0, 0))
                files, nbytes, known = max(c.files, cf), max(c.bytes, cb), census_done
            out.append(PartitionRow(name=name, files=max(files, c.done), bytes=max(nbytes, c.done_bytes), done=c.done,
                                    done_bytes=c.done_bytes, failed=c.failed, last=c.last, known=known))
        return tuple(out)


def busiest_first(rows: tuple[PartitionRow, ...] | list[PartitionRow]) -> list[PartitionRow]:
    """The order to show partitions in: those under way (started, not complete) first, the most recently
    active at the top; then those not started, in name order; then the complete ones, last finished first."""
    under_way = sorted((r for r in rows if r.started and not r.complete), key=lambda r: -r.last)
    waiting = [r for r in rows if not r.started and not r.complete]
    complete = sorted((r for r in rows if r.complete), key=lambda r: -r.last)
    return under_way + waiting + complete
