import os
import sqlite3

from mpupload.state.journal import Journal, MultipartRow, PartRecord, StoredFile, default_journal_path
from mpupload.state.journal_schema import SCHEMA_VERSION


def test_default_path_is_stable_per_source_and_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    a = default_journal_path(source="/data/atl", endpoint_url=None, bucket="b", prefix="atl/")
    assert a == default_journal_path(source="/data/atl/", endpoint_url=None, bucket="b", prefix="/atl")
    assert a != default_journal_path(source="/data/atl", endpoint_url="http://127.0.0.1:1", bucket="b", prefix="atl")
    assert a != default_journal_path(source="/data/atl", endpoint_url=None, bucket="b", prefix="other")
    assert str(a).startswith(str(tmp_path / "mpupload" / "journals"))


def test_stored_rows_round_trip_and_replace(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    d1, d3, e1 = "ab" * 16, "cd" * 16, "0f" * 16
    j.record_stored([StoredFile("k/a", "a", 10, 111, 5, d1, e1), StoredFile("k/b", "b", 0, 222, 6, d1, "e2-3")])
    j.record_stored([StoredFile("k/a", "a", 11, 333, 5, d3, "9a" * 16 + "-12")])
    row = j.stored_many(["k/a"]).get("k/a")
    assert (row.size, row.mtime_ns, row.inode, row.digest, row.etag) == (11, 333, 5, d3, "9a" * 16 + "-12")
    assert j.stored_many(["k/b", "missing", "k/a"]).keys() == {"k/a", "k/b"}
    assert j.stored_many(["k/b"])["k/b"].etag == "e2-3"
    assert j.stored_many(["missing"]).get("missing") is None and j.count_stored() == 2
    j.forget_everything_stored()
    assert j.count_stored() == 0


def test_wal_mode_and_a_second_connection_sees_commits(tmp_path):
    path = tmp_path / "j.sqlite"
    writer = Journal(path)
    reader = Journal(path)
    writer.record_stored([StoredFile("k", "r", 1, 2, 3, "d", "e")])
    assert reader.stored_many(["k"]).get("k") is not None
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_multipart_rows_by_run(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    old = MultipartRow(key="a", upload_id="u1", size=1, mtime_ns=2, inode=3, digest="d", part_size=5, run_id="r1")
    j.upload_started(old)
    j.upload_started(MultipartRow(key="b", upload_id="", size=1, mtime_ns=2, inode=3, digest="d", part_size=5,
                                    run_id="r2"))
    assert [r.key for r in j.uploads_left_behind("r2")] == ["a"]
    j.upload_resumed("a", "r2")
    assert j.uploads_left_behind("r2") == []
    j.upload_ended("a", "wrong-id")
    assert j.upload_in_progress("a") is not None
    j.upload_ended("a", "u1")
    assert j.upload_in_progress("a") is None


def test_aborted_uploads_are_kept_until_forgotten(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.upload_aborted("k", "u1")
    j.upload_aborted("k", "u1")  # the same abort twice is one row
    j.upload_aborted("k", "u2")
    assert sorted(j.aborted_uploads()) == [("k", "u1"), ("k", "u2")]
    j.abort_confirmed("k", "u1")
    assert j.aborted_uploads() == [("k", "u2")]


_V1 = """
CREATE TABLE stored (key TEXT PRIMARY KEY, rel TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, digest TEXT NOT NULL, etag TEXT NOT NULL, stored_at REAL NOT NULL);
CREATE TABLE multipart (key TEXT PRIMARY KEY, upload_id TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, digest TEXT NOT NULL, part_size INTEGER NOT NULL,
    run_id TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE aborted (key TEXT NOT NULL, upload_id TEXT NOT NULL, PRIMARY KEY (key, upload_id));
CREATE TABLE remote (key TEXT PRIMARY KEY, size INTEGER NOT NULL, etag TEXT NOT NULL);
CREATE TABLE info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def test_a_journal_of_the_first_layout_is_migrated_and_keeps_everything(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_V1)
    db.execute("INSERT INTO stored VALUES ('p/1920/a', '1920/a', 5, 6, 7, ?, ?, 1.0)", ("ab" * 16, "cd" * 16))
    db.execute("INSERT INTO stored VALUES ('renamed/x', 'orig/x y', 1, 2, 3, ?, 'ef-2', 1.0)", ("01" * 16,))
    db.execute("INSERT INTO multipart VALUES ('p/big', 'u1', 9, 8, 7, 'dd', 5, 'r0', 1.0)")
    db.execute("INSERT INTO remote VALUES ('p/1920/a', 5, 'x')")
    db.commit()
    db.close()
    j = Journal(path)
    assert j.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = j.stored_many(["p/1920/a", "renamed/x"])
    assert (rows["p/1920/a"].digest, rows["p/1920/a"].etag) == ("ab" * 16, "cd" * 16)
    assert (rows["renamed/x"].size, rows["renamed/x"].etag) == (1, "ef-2")
    assert j.upload_in_progress("p/big").upload_id == "u1"
    tables = {r[0] for r in j.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "remote" not in tables and "stored_v1" not in tables
    # rel is kept only where the key does not end with it; digests are bytes
    raw = dict(j.db.execute("SELECT key, rel FROM stored"))
    assert raw == {"p/1920/a": None, "renamed/x": "orig/x y"}
    assert isinstance(j.db.execute("SELECT digest FROM stored").fetchone()[0], bytes)
    j.close()
    assert Journal(path).stored_many(["p/1920/a"]).get("p/1920/a") is not None  # opening again migrates nothing twice


def test_part_records_belong_to_their_upload_and_go_with_it(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    row = MultipartRow(key="k", upload_id="u1", size=25, mtime_ns=2, inode=3, digest="d", part_size=10, run_id="r",
                       checksum="CRC64NVME FULL_OBJECT")
    j.upload_started(row)
    crc = "AAECAwQFBgc="  # 8 raw bytes, kept as a BLOB
    j.part_stored("k", "u1", PartRecord(2, 10, crc, '"e2"'))
    j.part_stored("k", "u1", PartRecord(1, 10, crc, '"e1"'))
    j.part_stored("k", "u1", PartRecord(1, 10, crc, '"e1b"'))  # the same part sent again replaces it
    got = j.upload_in_progress("k")
    assert got.checksum == "CRC64NVME FULL_OBJECT"
    assert got.parts == (PartRecord(1, 10, crc, '"e1b"'), PartRecord(2, 10, crc, '"e2"'))
    assert isinstance(j.db.execute("SELECT checksum FROM parts").fetchone()[0], bytes)
    # Another upload of the key (the old one aborted): its parts are not the new one's.
    j.upload_started(MultipartRow(key="k", upload_id="u2", size=25, mtime_ns=2, inode=3, digest="d", part_size=10,
                                  run_id="r"))
    assert j.upload_in_progress("k").parts == ()
    j.part_stored("k", "u2", PartRecord(1, 10, crc, '"x"'))
    j.upload_ended("k", "u2")
    assert j.db.execute("SELECT count(*) FROM parts").fetchone()[0] == 0


_V2 = """
CREATE TABLE stored (
    key TEXT PRIMARY KEY, rel TEXT, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
    digest BLOB NOT NULL, etag BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE multipart (
    key TEXT PRIMARY KEY, upload_id TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, digest TEXT NOT NULL, part_size INTEGER NOT NULL, run_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE aborted (key TEXT NOT NULL, upload_id TEXT NOT NULL, PRIMARY KEY (key, upload_id));
CREATE TABLE info (name TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version=2;
"""


def test_a_journal_of_schema_2_gains_part_records_and_keeps_everything(tmp_path):
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_V2)
    db.execute("INSERT INTO stored VALUES ('p/a', NULL, 5, 6, 7, ?, ?)", (bytes.fromhex("ab" * 16), b"e" * 16))
    db.execute("INSERT INTO multipart VALUES ('p/big', 'u1', 9, 8, 7, 'dd', 5, 'r0', 1.0)")
    db.execute("INSERT INTO aborted VALUES ('p/gone', 'u0')")
    db.commit()
    db.close()
    j = Journal(path)
    assert j.db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert j.stored_many(["p/a"]).get("p/a").digest == "ab" * 16
    old = j.upload_in_progress("p/big")
    # Journaled before: its checksum kind is unknown (the uploader aborts it rather than guess), no parts.
    assert (old.upload_id, old.size, old.part_size, old.checksum, old.parts) == ("u1", 9, 5, "", ())
    assert j.aborted_uploads() == [("p/gone", "u0")]
    j.part_stored("p/big", "u1", PartRecord(1, 5, "AAAAAA==", "e"))
    assert j.upload_in_progress("p/big").parts == (PartRecord(1, 5, "AAAAAA==", "e"),)
    j.close()
    again = Journal(path)  # opening again migrates nothing twice
    assert again.upload_in_progress("p/big").parts == (PartRecord(1, 5, "AAAAAA==", "e"),)
    again.close()


def test_a_journal_of_a_newer_mpupload_is_refused(tmp_path):
    import pytest

    from mpupload.core.errors import FatalError

    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=9")
    db.commit()
    db.close()
    with pytest.raises(FatalError, match="newer mpupload"):
        Journal(path)


def test_journal_files_are_private(tmp_path):
    import stat

    from mpupload.state.runlock import RunLock

    path = tmp_path / "state" / "j.sqlite"
    lock = RunLock(path)
    lock.acquire()
    j = Journal(path)
    j.record_stored([StoredFile("k", "k", 1, 2, 3, "ab" * 16, "cd" * 16)])
    for name in ("j.sqlite", "j.sqlite-wal", "j.sqlite-shm", "j.sqlite.lock"):
        assert stat.S_IMODE(os.stat(path.parent / name).st_mode) == 0o600, name
    j.close()
    lock.release()
    old = tmp_path / "old.sqlite"
    Journal(old).close()
    os.chmod(old, 0o644)
    Journal(old).close()
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o600  # an older, world-readable journal is closed up


def test_a_second_lock_on_the_same_journal_names_the_holder(tmp_path):
    import pytest

    from mpupload.state.runlock import JournalBusy, RunLock

    path = tmp_path / "j.sqlite"
    first = RunLock(path)
    first.acquire()
    with pytest.raises(JournalBusy) as busy:
        RunLock(path).acquire()
    assert busy.value.pid == os.getpid() and f"pid {os.getpid()}" in busy.value.message
    first.release()
    again = RunLock(path)
    again.acquire()  # released: the next run goes
    again.release()


def test_a_journal_on_a_network_filesystem_is_warned_about(tmp_path):
    from mpupload.state.runlock import filesystem_type, network_fs_warning

    mounts = tmp_path / "mounts"
    (tmp_path / "nfs" / "state").mkdir(parents=True)
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nserver:/export {tmp_path}/nfs nfs4 rw 0 0\n"
                      f"server:/x {tmp_path}/nfs-not nfs rw 0 0\n")
    assert filesystem_type(tmp_path / "nfs" / "a", mounts=str(mounts)) == "nfs4"
    assert filesystem_type(tmp_path / "nfsx", mounts=str(mounts)) == "ext4"
    assert "network filesystem (nfs4)" in network_fs_warning(tmp_path / "nfs" / "state" / "new" / "j.sqlite", mounts=str(mounts))
    assert network_fs_warning(tmp_path / "local" / "j.sqlite", mounts=str(mounts)) is None


def test_a_second_connection_in_the_process_keeps_the_wal_safe_from_other_processes(tmp_path):
    """Opening a second connection (the planner's, the Dask supervisor's) must not drop this process's POSIX
    locks on the journal: another process that reads and closes would then believe it was the last one and
    delete the WAL, and the run's commits would go to a deleted file, unseen and lost on a crash."""
    import subprocess
    import sys

    path = tmp_path / "j.sqlite"
    main = Journal(path)
    main.record_stored([StoredFile(key="a", rel="a", size=1, mtime_ns=1, inode=1, digest="00" * 16, etag="e")])
    second = Journal(path)  # as the planner's thread does
    read = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "print(db.execute('SELECT count(*) FROM stored').fetchone()[0]); db.close()")
    assert subprocess.run([sys.executable, "-c", read, str(path)], capture_output=True, text=True,
                          check=True).stdout.strip() == "1"
    main.record_stored([StoredFile(key="b", rel="b", size=1, mtime_ns=1, inode=1, digest="00" * 16, etag="e")])
    assert subprocess.run([sys.executable, "-c", read, str(path)], capture_output=True, text=True,
                          check=True).stdout.strip() == "2"
    second.close()
    main.close()
