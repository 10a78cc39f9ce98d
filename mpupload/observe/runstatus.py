"""`mpupload status`: what a run on a journal has done and has left, from another terminal, while it runs
or after it ended. Read-only and never in the writer's way:

- the run's progress document (progressfile.py: census, counts, rate history, partitions, last failures),
  read whole (it is replaced atomically);
- whether a run holds the journal now: the kernel's table of file locks (/proc/locks) names the process
  holding the flock on JOURNAL.lock (runlock.py). Status never takes that lock itself, not even for a
  moment: a run starting in that moment would refuse to start;
- the journal itself only when there is no progress document (a run of an older mpupload): opened
  read-only (`mode=ro`), with a busy timeout, for its count of stored files.

The computations (rates over a window, ETA) are pure functions of the document, tested on fixed samples."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from mpupload.observe.progressfile import RUNNING, progress_path, read_progress

RECENT = 60.0  # seconds: "now" in the rate over the last minute
EXIT_NO_JOURNAL = 2


@dataclass(frozen=True)
class Holder:
    pid: int
    since: float | None  # wall time the run took the lock (from the lock file), None when unknown


def _lock_file_says(lock: Path) -> tuple[int | None, float | None]:
    try:
        pid, _, since = lock.read_text(encoding="ascii", errors="replace").strip().partition(" ")
        return (int(pid) if pid.isdigit() else None), (float(since) if since else None)
    except (OSError, ValueError):
        return None, None


def lock_holder(journal: str | os.PathLike, *, locks: str = "/proc/locks") -> Holder | None:
    """The process holding the run lock of `journal`, None when no run holds it."""
    lock = Path(f"{journal}.lock")
    try:
        st = os.stat(lock)
    except OSError:
        return None
    pid, since = _lock_file_says(lock)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open(locks, encoding="ascii", errors="replace") as f:
            table = f.read().splitlines()
    except OSError:  # no /proc (macOS): the pid in the lock file, if that process lives
        return Holder(pid, since) if pid is not None and _alive(pid) else None
    for line in table:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; waiters carry "->" after the number
        if len(fields) < 6 or "->" in fields or fields[1] != "FLOCK":
            continue
        holder, where = fields[4], fields[5]
        # On overlay filesystems the device in the table may not be the one stat() gives: then the inode and
        # the pid the run wrote in the lock file must both agree.
        if where == dev or (where.rsplit(":", 1)[-1] == str(st.st_ino) and holder == str(pid)):
            return Holder(int(holder), since if holder == str(pid) else None)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the computations ------------------------------------------------------------------------------------
def rate_over(history: list[list[float]], *, window: float) -> tuple[float, float] | None:
    """(files/s, bytes sent/s) over the last `window` seconds of the history ([t, done, done_bytes, sent]
    rows, oldest first), measured back from its newest row; None when it spans less than a second."""
    if len(history) < 2:
        return None
    newest = history[-1]
    oldest = next(row for row in history if row[0] >= newest[0] - window)
    if oldest is newest:
        oldest = history[-2]  # samples sparser than the window: the two newest
    span = newest[0] - oldest[0]
    if span < 1.0:
        return None
    return (newest[1] - oldest[1]) / span, (newest[3] - oldest[3]) / span


def eta_seconds(*, left_files: int, left_bytes: int, rate: tuple[float, float] | None) -> float | None:
    """The longer of the two guesses (files left at the file rate, bytes left at the byte rate): small files
    are bound by requests, big ones by bytes. None without a rate, 0 with nothing left."""
    if left_files <= 0 and left_bytes <= 0:
        return 0.0
    if rate is None:
        return None
    files_per_s, bytes_per_s = rate
    guesses = []
    if left_files > 0 and files_per_s > 0:
        guesses.append(left_files / files_per_s)
    if left_bytes > 0 and bytes_per_s > 0:
        guesses.append(left_bytes / bytes_per_s)
    return max(guesses) if guesses else None


def _stored_in_journal(journal: Path) -> int | None:
    """Files the journal records as stored, read-only; None if it cannot be read now."""
    # A WAL journal no process has open has no -wal file. A plain read-only open of it would create -wal and
    # -shm beside it and leave them there (a read-only connection cannot remove them): status would write.
    # Opened as immutable it takes no lock and makes no file; with a -wal present (a run has it open, or one
    # was killed) the WAL must be read too, so the ordinary read-only open.
    mode = "mode=ro" if Path(f"{journal}-wal").exists() else "mode=ro&immutable=1"
    try:
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?{mode}", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        db.execute("PRAGMA busy_timeout=2000")
        return db.execute("SELECT count(*) FROM stored").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        db.close()


def status_of(journal: str | os.PathLike, *, now: float | None = None) -> dict:
    """Everything `status` shows, as plain JSON values. Raises FileNotFoundError when there is no journal."""
    path = Path(journal)
    if not path.exists():
        raise FileNotFoundError(str(path))
    now = time.time() if now is None else now
    doc = read_progress(progress_path(path))
    holder = lock_holder(path)
    out: dict = {"journal": str(path), "running": holder is not None,
                 "pid": holder.pid if holder else None,
                 "since": holder.since if holder else None}
    if doc is None or (holder is not None and doc.get("pid") != holder.pid):
        # A run of an older mpupload, or one that holds the lock but has not written its first document yet.
        out.update(state="starting" if holder else "unknown", stored_in_journal=_stored_in_journal(path))
        return out
    state = doc.get("state")
    if holder is None and state == RUNNING:
        state = "stopped"  # ended without its last word: killed (kill -9, OOM, power)
    out.update({k: doc.get(k) for k in ("source", "destination", "endpoint", "run_id", "host", "started_at",
                                          "updated_at", "finished_at", "exit_code", "outcome", "signal", "message")})
    out["state"] = state
    out["run_pid"] = doc.get("pid")
    out["updated_seconds_ago"] = round(max(0.0, now - doc.get("updated_at", now)), 1)
    if "total" not in doc:
        return out  # the run holds the lock but has not counted anything yet
    total = doc["total"]
    done = doc["uploaded"] + doc["skipped"] + doc["failed"]
    done_bytes = doc["bytes_uploaded"] + doc["bytes_skipped"]
    left_files, left_bytes = max(0, total["files"] - done), max(0, total["bytes"] - done_bytes)
    history = doc.get("history") or []
    recent, longer = rate_over(history, window=RECENT), rate_over(history, window=float("inf"))
    running = state == RUNNING
    out.update({
        "total_files": total["files"], "total_bytes": total["bytes"], "total_known": total["known"],
        "done_files": done, "done_bytes": done_bytes, "uploaded": doc["uploaded"], "skipped": doc["skipped"],
        "failed": doc["failed"], "bytes_uploaded": doc["bytes_uploaded"], "bytes_sent": doc["bytes_sent"],
        "left_files": left_files, "left_bytes": left_bytes, "retries": doc.get("retries", 0),
        "throttles": doc.get("throttles", 0), "outages": doc.get("outages", 0),
        "files_per_min_1m": round(recent[0] * 60, 1) if recent and running else None,
        "bytes_per_s_1m": round(recent[1]) if recent and running else None,
        "rate_window_seconds": round(history[-1][0] - history[0][0], 1) if len(history) > 1 else 0.0,
        "files_per_min": round(longer[0] * 60, 1) if longer else None,
        "bytes_per_s": round(longer[1]) if longer else None,
        "eta_seconds": _rounded(eta_seconds(left_files=left_files, left_bytes=left_bytes, rate=longer))
        if running and total["known"] else None,
        "partitions": doc.get("partitions", []),
        "recent_failures": doc.get("recent_failures", []),
        "failures_by_reason": doc.get("failures_by_reason", {}),
    })
    return out


def _rounded(x: float | None) -> int | None:
    return None if x is None else round(x)
