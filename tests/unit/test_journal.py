import sqlite3

from mpupload.journal import Journal, MultipartRow, default_journal_path


def test_default_path_is_stable_per_source_and_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    a = default_journal_path(source="/data/atl", endpoint_url=None, bucket="b", prefix="atl/")
    assert a == default_journal_path(source="/data/atl/", endpoint_url=None, bucket="b", prefix="/atl")
    assert a != default_journal_path(source="/data/atl", endpoint_url="http://127.0.0.1:1", bucket="b", prefix="atl")
    assert a != default_journal_path(source="/data/atl", endpoint_url=None, bucket="b", prefix="other")
    assert str(a).startswith(str(tmp_path / "mpupload" / "journals"))


def test_stored_rows_round_trip_and_replace(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.record_stored([("k/a", "a", 10, 111, 5, "d1", "e1"), ("k/b", "b", 0, 222, 6, "d2", "e2")])
    j.record_stored([("k/a", "a", 11, 333, 5, "d3", "e3")])
    row = j.stored("k/a")
    assert (row.size, row.mtime_ns, row.inode, row.digest, row.etag) == (11, 333, 5, "d3", "e3")
    assert j.stored("missing") is None and j.count_stored() == 2
    j.forget_stored()
    assert j.count_stored() == 0


def test_wal_mode_and_a_second_connection_sees_commits(tmp_path):
    path = tmp_path / "j.sqlite"
    writer = Journal(path)
    reader = Journal(path)
    writer.record_stored([("k", "r", 1, 2, 3, "d", "e")])
    assert reader.stored("k") is not None
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_multipart_rows_by_run(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    old = MultipartRow(key="a", upload_id="u1", size=1, mtime_ns=2, inode=3, digest="d", part_size=5, run_id="r1")
    j.record_multipart(old)
    j.record_multipart(MultipartRow(key="b", upload_id="", size=1, mtime_ns=2, inode=3, digest="d", part_size=5,
                                    run_id="r2"))
    assert [r.key for r in j.multipart_not_in_run("r2")] == ["a"]
    j.touch_multipart("a", "r2")
    assert j.multipart_not_in_run("r2") == []
    j.forget_multipart("a", "wrong-id")
    assert j.multipart("a") is not None
    j.forget_multipart("a", "u1")
    assert j.multipart("a") is None


def test_remote_listing_table(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.add_remote([("x/1", 5, "e"), ("x/2", 0, "f")])
    assert (j.remote_size("x/1"), j.remote_size("x/2"), j.remote_size("x/3")) == (5, 0, None)
    j.clear_remote()
    assert j.remote_size("x/1") is None


def test_aborted_uploads_are_kept_until_forgotten(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.record_aborted("k", "u1")
    j.record_aborted("k", "u1")  # the same abort twice is one row
    j.record_aborted("k", "u2")
    assert sorted(j.aborted()) == [("k", "u1"), ("k", "u2")]
    j.forget_aborted("k", "u1")
    assert j.aborted() == [("k", "u2")]
