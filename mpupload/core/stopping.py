"""How a run is stopped from outside, and why no worker outlives it.

Migrations are stopped by more than Ctrl-C: `kill`, systemd, docker, Kubernetes, Slurm and cron send
SIGTERM (then SIGKILL after a grace period), a closed SSH session sends SIGHUP. All three mean the same
here: stop taking work, let the requests in flight end within a grace period, keep the journal, print the
summary, exit 128 + the signal's number. A second signal means "now".

The handler only records the signal (a flag the coordinator's main loop reads every tick): raising in the
middle of a journal write or a queue operation would be far harder to reason about than a loop that looks
at a flag. Only the second signal raises (`ForcedStop`), because then the user asked for exactly that.

Worker processes ignore all three: only the coordinator decides when to stop (a terminal's Ctrl-C, or
systemd's default KillMode, signals the whole group). A worker instead watches its parent: when the
coordinator is gone, however it ended (kill -9, OOM killer), the worker ends at once rather than upload
files no one will journal. What it had finished is recognised by the next run's destination check; a
multipart upload in flight stays journaled (by the worker itself) and is resumed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A worker whose coordinator vanished: distinct from a crash (1) and from being killed (-9).
EXIT_ORPHANED = 75


class ForcedStop(BaseException):
    """A second stop signal: stop now (the journal is still safe: SQLite rolls back a cut transaction)."""


def exit_code_for(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class StopRequests:
    """Installs handlers for SIGINT, SIGTERM and SIGHUP while active (main thread only; elsewhere, e.g. a
    test calling the coordinator from a thread, it does nothing)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._count = 0
        self._saved: dict[int, object] = {}
        # Until the main loop runs (start-up, the preflight probe) nothing is in flight and no loop reads
        # the flag: the first signal stops at once.
        self.graceful = False

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._saved[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def _on_signal(self, signum, frame) -> None:
        self._count += 1
        if self.signum is None:
            self.signum = signum
        if self._count == 2 or (self._count == 1 and not self.graceful):  # later ones: already stopping
            raise ForcedStop()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return signal_name(self.signum) if self.signum is not None else None


class Interrupted(Exception):
    """Raised by `raise_on_stop_signals` handlers: a command without a coordinator loop (verify, tune,
    start-up) unwinds through its own cleanup and exits 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


def raise_on_stop_signals() -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C in code that has no stop flag to read: they raise."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def become_worker() -> None:
    """In a worker process: leave stopping to the coordinator, and end at once when it is gone."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    # The parent's end of a pipe that the OS closes when the parent dies, however it dies: join() returns
    # within milliseconds of that, with no polling.
    threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_when_gone(parent) -> None:
    parent.join()
    # No cleanup on purpose: nothing we could still send would be journaled, and the next run recognises
    # whatever landed. os._exit skips the queue feeder threads that would block on a dead reader.
    os._exit(EXIT_ORPHANED)
