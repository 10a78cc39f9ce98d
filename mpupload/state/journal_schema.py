"""The journal's layout, its version (`PRAGMA user_version`) and the way from each older layout to this one.

Version 1 (user_version 0, the first layout): `stored` keyed by rowid with `rel` always filled, hex text
digests and ETags and a `stored_at` time, plus a `remote` table holding the destination listing.
Version 2: `stored` WITHOUT ROWID (the key is the primary index, no second copy of it), `rel` only where
the key does not end with it, digests and MD5 ETags as 16-byte BLOBs, no `stored_at`, no `remote`
(the listing is streamed, listing.py). About half the bytes per file.
Version 3: `multipart.checksum` (the upload's checksum kind, e.g. "CRC64NVME FULL_OBJECT"; '' for uploads
journaled before, whose kind is unknown) and `parts`: each part S3 confirmed, with its size, raw checksum and
ETag, so a resume combines the whole-object CRC without reading the parts S3 already holds.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3

_V3 = """
CREATE TABLE IF NOT EXISTS stored (
    key TEXT PRIMARY KEY, rel TEXT, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
    digest BLOB NOT NULL, etag BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS multipart (
    key TEXT PRIMARY KEY, upload_id TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, digest TEXT NOT NULL, part_size INTEGER NOT NULL, run_id TEXT NOT NULL,
    created_at REAL NOT NULL, checksum TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS parts (
    key TEXT NOT NULL, upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL,
    checksum BLOB NOT NULL, etag TEXT NOT NULL, PRIMARY KEY (key, upload_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aborted (key TEXT NOT NULL, upload_id TEXT NOT NULL, PRIMARY KEY (key, upload_id));
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _create(db: sqlite3.Connection) -> None:
    # Statement by statement: executescript would commit the migration's transaction half way.
    for statement in _V3.split(";"):
        if statement.strip():
            db.execute(statement)
    # A multipart table of version 1 or 2 is kept by CREATE IF NOT EXISTS: it gains the column.
    if "checksum" not in {r[1] for r in db.execute("PRAGMA table_info(multipart)")}:
        db.execute("ALTER TABLE multipart ADD COLUMN checksum TEXT NOT NULL DEFAULT ''")


def migrate(db: sqlite3.Connection) -> int:
    """Bring the journal to SCHEMA_VERSION (creating it when new); returns the version found, which is
    above SCHEMA_VERSION for a journal of a newer mpupload (left untouched)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        return version
    if version == SCHEMA_VERSION:
        return version
    db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find this version
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        migrated = version < 2 and "stored" in _tables(db)  # only the first layout's rewrite needs a VACUUM
        if version < SCHEMA_VERSION:
            if migrated:
                _from_v1(db)
            _create(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if migrated:
        db.execute("VACUUM")  # once: give back the pages of the old layout
    return version


def _from_v1(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE stored RENAME TO stored_v1")
    _create(db)
    cur = db.execute("SELECT key, rel, size, mtime_ns, inode, digest, etag FROM stored_v1")
    while rows := cur.fetchmany(5000):
        db.executemany("INSERT OR REPLACE INTO stored(key, rel, size, mtime_ns, inode, digest, etag) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(k, None if k.endswith(rel) else rel, size, mtime, inode, pack_hex(d), pack_hex(e))
                        for k, rel, size, mtime, inode, d, e in rows])
    db.execute("DROP TABLE stored_v1")
    db.execute("DROP TABLE IF EXISTS remote")


def pack_hex(value: str) -> bytes | str:
    """Hex digests and MD5 ETags are kept as bytes (half the size); anything else (a multipart ETag
    "…-12") as text."""
    if value and len(value) % 2 == 0:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return value


def unpack_hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value
