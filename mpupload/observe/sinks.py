"""The one interface between a run and everyone who watches it (after restic's progress printers and
s3transfer's subscribers): the coordinator and the ledger emit to a Sink and never format anything. The
terminal views (ui/), the progress file for `mpupload status`, the run recorder behind report.json and tune's
quiet trials are sinks; a FanOut hands every event to each of them, in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mpupload.core.messages import UploadResult
from mpupload.observe.stats import Snapshot


@dataclass(frozen=True)
class RunStart:
    """What a run says as it begins: where from, where to, what runs it and how much at once."""

    source: str
    destination: str  # s3://BUCKET/PREFIX
    pool: str  # e.g. "2 process(es)", "a local Dask cluster of 4 worker process(es)"
    concurrency: str  # e.g. "8 threads each", "60 files in flight each to start (round trip 100 ms; ...)"
    journal: str

    @property
    def text(self) -> str:
        return (f"Uploading {self.source} to {self.destination} with {self.pool}, {self.concurrency}; "
                f"journal {self.journal}")


class Sink:
    """Every event a run emits. Each method does nothing here, so a sink writes only what it listens to.
    `redraw_every`: how often (seconds) this sink wants a progress snapshot, None for the run's default."""

    redraw_every: float | None = None

    def start(self, run: RunStart) -> None:
        """The run begins (`run.text` says so in a sentence, for a person)."""

    def progress(self, snap: Snapshot) -> None:
        """A snapshot of the counts, every tick of the coordinator's main loop."""

    def result(self, r: UploadResult) -> None:
        """One file settled: uploaded, skipped or failed, with its reason."""

    def warn(self, text: str) -> None:
        """Something the operator should know; the run goes on. Each text once per run (the ledger's job)."""

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool,
               fatal: str | None) -> None:
        """The run is over: the final counts, every failure, and why it stopped if it did not finish."""

    def close(self) -> None:
        """Give back what the sink holds (a live display, a file)."""


class FanOut(Sink):
    """Sinks behind one Sink. The first sink is the view the operator sees: its warnings are where other sinks
    report their own trouble (a progress file that cannot be written)."""

    def __init__(self, *sinks: Sink):
        self.sinks: list[Sink] = list(sinks)

    @property
    def redraw_every(self) -> float | None:  # type: ignore[override]
        wanted = [s.redraw_every for s in self.sinks if s.redraw_every]
        return min(wanted) if wanted else None

    def _each(self, call: Callable[[Sink], None]) -> None:
        for sink in self.sinks:
            call(sink)

    def start(self, run: RunStart) -> None:
        self._each(lambda s: s.start(run))

    def progress(self, snap: Snapshot) -> None:
        self._each(lambda s: s.progress(snap))

    def result(self, r: UploadResult) -> None:
        self._each(lambda s: s.result(r))

    def warn(self, text: str) -> None:
        self._each(lambda s: s.warn(text))

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool,
               fatal: str | None) -> None:
        self._each(lambda s: s.finish(snap, failures, interrupted=interrupted, fatal=fatal))

    def close(self) -> None:
        self._each(lambda s: s.close())
