"""Where the journal lives: one run at a time, private files, and a word when the folder is unsafe.

- One run per journal: two runs on the same source and destination would share one journal, and the
  end-of-run sweep of one would abort the other's live multipart uploads. The coordinator holds an OS lock
  (flock) on `JOURNAL.lock` for the whole run, with its pid and start time written in it, so a second run
  refuses at once and names the first. The OS drops the lock when the process ends however it ends
  (kill -9 included): no stale lock to clean up.
- SQLite's WAL needs shared memory between the processes using the file, which a network filesystem does
  not give: on NFS, SMB or sshfs the journal can be corrupted. The run still goes on (it may be the only
  place there is), with a warning.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "ceph", "glusterfs",
                        "fuse.glusterfs", "lustre", "afs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "davfs"})
EXIT_BUSY = 2


class JournalBusy(Exception):
    """Another run holds the journal; exit 2 with `message`."""

    def __init__(self, path: Path, holder: str):
        pid, _, started = holder.partition(" ")
        when = ""
        if started:
            try:
                when = ", started " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started)))
            except ValueError:
                pass
        who = f"pid {pid}{when}" if pid else "another process"
        self.pid = int(pid) if pid.isdigit() else None
        self.message = (f"another mpupload run ({who}) is uploading this source to this destination with the "
                        f"journal {path}; wait for it to finish (or stop it), then run the command again")
        super().__init__(self.message)


class RunLock:
    """An exclusive flock on JOURNAL.lock, held from `acquire` until `release` (or the process ends)."""

    def __init__(self, journal_path: str | os.PathLike):
        self.path = Path(f"{journal_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise JournalBusy(Path(str(self.path)[:-5]), holder) from None
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            # The file stays: removing it would race with a run that opened it and waits for the lock.
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def filesystem_type(path: str | os.PathLike, *, mounts: str = "/proc/mounts") -> str | None:
    """The type of the filesystem holding `path` (the longest mount point above it), None when unknown."""
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        return None
    return kind


def network_fs_warning(journal_path: str | os.PathLike, *, mounts: str = "/proc/mounts") -> str | None:
    """A warning when the journal's folder is on a network filesystem, else None."""
    folder = Path(journal_path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    kind = filesystem_type(folder, mounts=mounts)
    if kind in NETWORK_FS:
        return (f"the journal {journal_path} is on a network filesystem ({kind}): SQLite's write-ahead log is "
                "not safe there and the journal may be corrupted; give --journal PATH on a local disk")
    return None
