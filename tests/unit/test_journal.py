import sqlite3

from mpupload.journal import Journal, MultipartRow, StoredFile, default_journal_path


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
    row = j.stored("k/a")
    assert (row.size, row.mtime_ns, row.inode, row.digest, row.etag) == (11, 333, 5, d3, "9a" * 16 + "-12")
    assert j.stored_many(["k/b", "missing", "k/a"]).keys() == {"k/a", "k/b"}
    assert j.stored_many(["k/b"])["k/b"].etag == "e2-3"
    assert j.stored("missing") is None and j.count_stored() == 2
    j.forget_everything_stored()
    assert j.count_stored() == 0


def test_wal_mode_and_a_second_connection_sees_commits(tmp_path):
    path = tmp_path / "j.sqlite"
    writer = Journal(path)
    reader = Journal(path)
    writer.record_stored([StoredFile("k", "r", 1, 2, 3, "d", "e")])
    assert reader.stored("k") is not None
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
