"""The journal: an embedded SQLite store (WAL) of what is safely stored, so a rerun does only what is left.

Its API speaks of the domain, not of rows:
- *stored* objects: written by the ledger only after S3 confirmed the upload (or a check proved the object
  holds the file's bytes). A file whose size, mtime and inode still match is neither hashed nor uploaded.
- *uploads in progress*: the upload id of each multipart upload, with the identity and digest of the file
  version it carries, written by the worker around CreateMultipartUpload. Which parts S3 holds is asked of
  S3 itself (ListParts): the server is the truth for parts, the journal says which upload belongs to
  which version of which file, with which checksum, and keeps each confirmed part's size, checksum and ETag
  (a resume combines the whole-object CRC from them without reading again the parts S3 holds).
- *aborted* uploads: a part still in flight when its upload is aborted may land afterwards and bring the
  upload back (S3 documents this), so each is aborted again at the end of the run until S3 says it is gone.

The destination listing is not kept here any more (listing.py streams it).

Schema versions live in `PRAGMA user_version` (0 with tables: the first layout, migrated on open). Files
are created 0600: the journal names every file and object. One run at a time holds it (runlock.py);
within a run several processes open it: WAL lets readers run beside the one writer, and busy_timeout makes
a writer wait for another instead of failing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from mpupload.core.errors import FatalError
from mpupload.core.keys import printable_name
from mpupload.core.shard import Shard
from mpupload.settings.config import Settings
from mpupload.state.journal_schema import SCHEMA_VERSION, migrate, pack_hex, unpack_hex

_T = TypeVar("_T")
_LOOKUP_CHUNK = 900  # keys per query: below SQLite's oldest host-parameter limit (999)


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mpupload"


def default_journal_path(*, source: str, endpoint_url: str | None, bucket: str, prefix: str,
                         shard: str | None = None) -> Path:
    """One journal per (source folder, destination, --shard): the same command finds the same journal, and
    each shard of a migration its own (`shard` is its label, e.g. '2of4')."""
    ident = "\0".join([os.path.abspath(source), endpoint_url or "aws", bucket, prefix.strip("/")])
    name = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return state_dir() / "journals" / (f"{name}-shard{shard}.sqlite" if shard else f"{name}.sqlite")


def journal_path(*, source: str, endpoint_url: str | None, bucket: str, prefix: str, shard: str | None = None,
                 given: str | None = None) -> str:
    """The journal a run on these arguments uses: `given` (--journal), else one per source, destination and
    --shard K/N. The one resolver: upload, `config show` and `status` all ask here, so they agree."""
    if given:
        return given
    label = Shard.parse(shard).label if shard else None
    return str(default_journal_path(source=source, endpoint_url=endpoint_url, bucket=bucket, prefix=prefix,
                                    shard=label))


def journal_for(s: Settings) -> str:
    """The journal of a run with these settings (see journal_path)."""
    return journal_path(source=s.source, endpoint_url=s.endpoint_url, bucket=s.bucket, prefix=s.prefix,
                        shard=s.shard, given=s.journal)


class JournalError(FatalError):
    """The journal cannot be written (disk full, quota, read-only or vanished folder): a fatal condition.
    Uploading on would store objects no journal records; stopping keeps what is recorded true."""

    def __init__(self, path: Path, error: BaseException | str):
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




class StoredFile(NamedTuple):
    """One object S3 confirmed, and the version of the file it holds."""

    key: str
    rel: str
    size: int
    mtime_ns: int
    inode: int
    digest: str
    etag: str


@dataclass(frozen=True)
class StoredRow:
    size: int
    mtime_ns: int
    inode: int
    digest: str
    etag: str


class PartRecord(NamedTuple):
    """One part S3 confirmed: its number, size, checksum (S3's base64 form) and ETag."""

    number: int
    size: int
    checksum: str
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
    checksum: str = ""  # the upload's checksum kind ("CRC64NVME FULL_OBJECT"); '' journaled before schema 3
    parts: tuple[PartRecord, ...] = ()  # filled by upload_in_progress; never written from here


_MP_COLUMNS = "key, upload_id, size, mtime_ns, inode, digest, part_size, run_id, checksum"


class Journal:
    """One connection; use one Journal per thread (sqlite3 connections are not shared across threads)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._open()

    @_writes
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the mode of the database.
        # Only when new: closing any descriptor of a file drops every POSIX lock this process holds on it, the
        # locks of another connection to this journal in this process (the ledger's, when the planner or the
        # Dask supervisor opens its own) included; another process's connection then believes it is the last
        # one, checkpoints and deletes the WAL under the run's feet, and the run's commits go to a deleted file.
        if not self.path.exists():
            try:
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
            except FileExistsError:
                pass
        for suffix in ("", "-wal", "-shm"):  # a journal from before this rule may be world-readable
            try:
                os.chmod(f"{self.path}{suffix}", 0o600)
            except FileNotFoundError:
                pass
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=True)
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the last commits,
        # and then the destination check on the rerun still finds what landed.
        self.db.execute("PRAGMA synchronous=NORMAL")
        version = migrate(self.db)
        if version > SCHEMA_VERSION:
            self.db.close()
            raise FatalError("journal", f"the journal {self.path} was written by a newer mpupload (schema "
                             f"{version}; this one knows up to {SCHEMA_VERSION}): upgrade, or give --journal PATH")

    def close(self) -> None:
        self.db.close()

    @_writes
    def set_info(self, **values: str) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO info(name, value) VALUES (?, ?)", values.items())

    # -- stored objects -------------------------------------------------------------------------------
    def stored_many(self, keys: list[str]) -> dict[str, StoredRow]:
        """The stored row of each of `keys` the journal knows: one query per few hundred keys."""
        found: dict[str, StoredRow] = {}
        for i in range(0, len(keys), _LOOKUP_CHUNK):
            part = keys[i:i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            for key, size, mtime_ns, inode, digest, etag in self.db.execute(
                    f"SELECT key, size, mtime_ns, inode, digest, etag FROM stored WHERE key IN ({marks})", part):
                found[key] = StoredRow(size, mtime_ns, inode, unpack_hex(digest), unpack_hex(etag))
        return found

    @_writes
    def record_stored(self, files: Iterable[StoredFile]) -> None:
        """One transaction for the lot. `rel` is kept only where the key does not end with it (it is the
        key minus the prefix otherwise)."""
        # A name with undecodable bytes is kept as text SQLite can store (its key holds it reversibly).
        rows = [(f.key, None if f.key.endswith(f.rel) else printable_name(f.rel), f.size, f.mtime_ns, f.inode,
                 pack_hex(f.digest), pack_hex(f.etag)) for f in files]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO stored(key, rel, size, mtime_ns, inode, digest, etag) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    @_writes
    def forget_stored(self, keys: Iterable[str]) -> None:
        """These objects are gone from the destination (--delete)."""
        with self.db:
            self.db.executemany("DELETE FROM stored WHERE key = ?", ((k,) for k in keys))

    @_writes
    def forget_everything_stored(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM stored")

    def count_stored(self) -> int:
        return self.db.execute("SELECT count(*) FROM stored").fetchone()[0]

    # -- uploads in progress --------------------------------------------------------------------------
    def upload_in_progress(self, key: str) -> MultipartRow | None:
        """The journaled upload of `key`, with the parts S3 confirmed for it."""
        row = self.db.execute(f"SELECT {_MP_COLUMNS} FROM multipart WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        parts = tuple(PartRecord(n, size, base64.b64encode(raw).decode("ascii"), etag)
                      for n, size, raw, etag in self.db.execute(
                          "SELECT number, size, checksum, etag FROM parts WHERE key=? AND upload_id=? ORDER BY number",
                          (key, row[1])))
        return MultipartRow(*row, parts=parts)

    @_writes
    def upload_started(self, m: MultipartRow) -> None:
        """Record (or replace) the upload of `m.key`; an empty upload id marks a create not yet answered."""
        with self.db:
            self.db.execute(f"INSERT OR REPLACE INTO multipart({_MP_COLUMNS}, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (m.key, m.upload_id, m.size, m.mtime_ns, m.inode, m.digest, m.part_size, m.run_id,
                             m.checksum, time.time()))
            self.db.execute("DELETE FROM parts WHERE key=? AND upload_id!=?", (m.key, m.upload_id))

    @_writes
    def part_stored(self, key: str, upload_id: str, part: PartRecord) -> None:
        """S3 confirmed this part (and checked its checksum): a resume need not read it again."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO parts(key, upload_id, number, size, checksum, etag) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (key, upload_id, part.number, part.size, base64.b64decode(part.checksum), part.etag))

    @_writes
    def upload_resumed(self, key: str, run_id: str) -> None:
        """This run carries the upload on: the end-of-run sweep leaves it alone."""
        with self.db:
            self.db.execute("UPDATE multipart SET run_id=? WHERE key=?", (run_id, key))

    @_writes
    def upload_ended(self, key: str, upload_id: str) -> None:
        """Completed, or given up (aborted, gone): no longer in progress."""
        with self.db:
            self.db.execute("DELETE FROM multipart WHERE key=? AND upload_id=?", (key, upload_id))
            self.db.execute("DELETE FROM parts WHERE key=? AND upload_id=?", (key, upload_id))

    def uploads_left_behind(self, run_id: str) -> list[MultipartRow]:
        """Uploads in progress that run `run_id` did not touch."""
        rows = self.db.execute(f"SELECT {_MP_COLUMNS} FROM multipart WHERE run_id != ?", (run_id,)).fetchall()
        return [MultipartRow(*r) for r in rows]

    # -- aborted uploads ------------------------------------------------------------------------------
    @_writes
    def upload_aborted(self, key: str, upload_id: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO aborted(key, upload_id) VALUES (?, ?)", (key, upload_id))

    def aborted_uploads(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT key, upload_id FROM aborted").fetchall()

    @_writes
    def abort_confirmed(self, key: str, upload_id: str) -> None:
        """S3 says the aborted upload is gone."""
        with self.db:
            self.db.execute("DELETE FROM aborted WHERE key=? AND upload_id=?", (key, upload_id))
