"""How a run ended, and the exit code that tells it: 0 every file settled well, 1 a file failed or was left
(or the run halted itself, e.g. an outage outlasted --outage-timeout), 3 fatal, 128 + n for signal n."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from mpupload.core.errors import FatalError
from mpupload.core.stopping import exit_code_for
from mpupload.observe.stats import Snapshot


@dataclass
class Outcome:
    snapshot: Snapshot
    failures: list
    interrupted: str | bool = False  # the name of the signal that stopped the run
    fatal: FatalError | None = None
    early: bool = False  # stopped by the preflight probe, before any file was looked at
    halted: str | None = None  # the run stopped itself, e.g. an outage outlasted --outage-timeout
    signum: int | None = None  # the signal that stopped it (SIGINT, SIGTERM, SIGHUP)

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return 3
        if self.interrupted:
            return exit_code_for(self.signum or signal.SIGINT)
        if self.halted:
            return 1
        mirror = self.snapshot.mirror  # --delete refused or failed a deletion: the bucket is not the source
        if mirror and (mirror.get("refused") or mirror.get("delete_failed")):
            return 1
        return 1 if self.snapshot.failed or self.snapshot.pending else 0
