"""The journal: an embedded SQLite record (WAL) of what is safely stored, so a rerun does only what is left.

- `stored`: one row per object, written by the coordinator only after S3 confirmed the upload (or after a
  destination check proved the object matches). A file whose size, mtime and inode still match its row is
  neither hashed nor uploaded again.
- `multipart`: the upload id of each multipart upload in progress, with the identity and digest of the file
  it carries, written by the worker right after CreateMultipartUpload. Which parts S3 already has is asked
  of S3 itself (ListParts) on resume: the server is the truth for parts, the journal only says which
  upload belongs to which version of which file.
- `aborted`: uploads we aborted. A part still in flight when its upload is aborted may land afterwards and
  bring the upload back (S3 documents this), so each is aborted again at the end of the run until S3 says
  it is gone.
- `remote`: this run's listing of the destination, for destination-aware skipping without holding
  millions of keys in memory.

Several processes open the same file: WAL lets readers run beside the one writer, and busy_timeout makes a
writer wait for another instead of failing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import FatalError

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stored (
    key TEXT PRIMARY KEY, rel TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, digest TEXT NOT NULL, etag TEXT NOT NULL, stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS multipart (
    key TEXT PRIMARY KEY, upload_id TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, digest TEXT NOT NULL, part_size INTEGER NOT NULL, run_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aborted (key TEXT NOT NULL, upload_id TEXT NOT NULL, PRIMARY KEY (key, upload_id));
CREATE TABLE IF NOT EXISTS remote (key TEXT PRIMARY KEY, size INTEGER NOT NULL, etag TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mpupload"


def default_journal_path(*, source: str, endpoint_url: str | None, bucket: str, prefix: str) -> Path:
    """One journal per (source folder, destination): the same command finds the same journal."""
    ident = "\0".join([os.path.abspath(source), endpoint_url or "aws", bucket, prefix.strip("/")])
    name = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return state_dir() / "journals" / f"{name}.sqlite"


class JournalError(FatalError):
    """The journal cannot be written (disk full, quota, read-only or vanished folder): a fatal condition.
    Uploading on would store objects no journal records; stopping keeps what is recorded true."""

    def __init__(self, path: Path, error: BaseException):
        super().__init__("journal", f"cannot write the journal {path}: {error}. Free space there (or give "
                         "--journal PATH on another filesystem) and run the same command again: it resumes "
                         "from what the journal recorded, and finds the rest at the destination.")


def _writes(method: Callable[..., _T]) -> Callable[..., _T]:
    """A journal write that fails for a reason outside our control raises JournalError, not a traceback."""

    @functools.wraps(method)
    def wrapper(self: Journal, *args, **kwargs) -> _T:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            raise JournalError(self.path, exc) from None

    return wrapper


@dataclass(frozen=True)
class StoredRow:
    size: int
    mtime_ns: int
    inode: int
    digest: str
    etag: str


@dataclass(frozen=True)
class MultipartRow:
    key: str
    upload_id: str
    size: int
    mtime_ns: int
    inode: int
    digest: str
    part_size: int
    run_id: str


class Journal:
    """One connection; use one Journal per thread (sqlite3 connections are not shared across threads)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._open()

    @_writes
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the last commits,
        # and then the destination check on the rerun still finds what landed.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @_writes
    def set_info(self, **values: str) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO info(name, value) VALUES (?, ?)", values.items())

    # -- stored ---------------------------------------------------------------------------------------
    def stored(self, key: str) -> StoredRow | None:
        row = self.db.execute("SELECT size, mtime_ns, inode, digest, etag FROM stored WHERE key=?", (key,)).fetchone()
        return StoredRow(*row) if row else None

    @_writes
    def record_stored(self, rows: Iterable[tuple[str, str, int, int, int, str, str]]) -> None:
        """rows of (key, rel, size, mtime_ns, inode, digest, etag); one transaction for the lot."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO stored(key, rel, size, mtime_ns, inode, digest, etag, stored_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*r, now) for r in rows])

    @_writes
    def forget_stored(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM stored")

    def count_stored(self) -> int:
        return self.db.execute("SELECT count(*) FROM stored").fetchone()[0]

    # -- multipart ------------------------------------------------------------------------------------
    def multipart(self, key: str) -> MultipartRow | None:
        row = self.db.execute("SELECT key, upload_id, size, mtime_ns, inode, digest, part_size, run_id "
                              "FROM multipart WHERE key=?", (key,)).fetchone()
        return MultipartRow(*row) if row else None

    @_writes
    def record_multipart(self, m: MultipartRow) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO multipart VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (m.key, m.upload_id, m.size, m.mtime_ns, m.inode, m.digest, m.part_size, m.run_id,
                             time.time()))

    @_writes
    def touch_multipart(self, key: str, run_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE multipart SET run_id=? WHERE key=?", (run_id, key))

    @_writes
    def forget_multipart(self, key: str, upload_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM multipart WHERE key=? AND upload_id=?", (key, upload_id))

    def multipart_not_in_run(self, run_id: str) -> list[MultipartRow]:
        rows = self.db.execute("SELECT key, upload_id, size, mtime_ns, inode, digest, part_size, run_id "
                               "FROM multipart WHERE run_id != ?", (run_id,)).fetchall()
        return [MultipartRow(*r) for r in rows]

    @_writes
    def record_aborted(self, key: str, upload_id: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO aborted(key, upload_id) VALUES (?, ?)", (key, upload_id))

    def aborted(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT key, upload_id FROM aborted").fetchall()

    @_writes
    def forget_aborted(self, key: str, upload_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM aborted WHERE key=? AND upload_id=?", (key, upload_id))

    # -- remote listing -------------------------------------------------------------------------------
    @_writes
    def clear_remote(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM remote")

    @_writes
    def add_remote(self, rows: Iterable[tuple[str, int, str]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO remote(key, size, etag) VALUES (?, ?, ?)", rows)

    def remote_size(self, key: str) -> int | None:
        row = self.db.execute("SELECT size FROM remote WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
