"""The planner's skip decisions, without processes or a server: a fake journal, a fake destination."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace

import pytest
import xxhash

from mpupload.core.messages import (
    SKIP_JOURNAL,
    SKIP_SAME_MD5,
    SKIP_SAME_SIZE,
    Batch,
    FileTask,
    Notice,
    ScanProgress,
    Skips,
    WorkerReport,
)
from mpupload.run.planner import CHECK, MD5, SAME_SIZE, STORED, UPLOAD, Planner, decide
from mpupload.s3.listing import UNKNOWN
from mpupload.settings.config import Settings
from mpupload.source.scan import FileEntry, Skipped
from mpupload.state.journal import StoredRow

MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5(b"a")
TASK = FileTask(path="/x", rel="1920/a", key="p/1920/a", size=10, mtime_ns=5, inode=7, partition="1920")


@pytest.mark.parametrize("mode, stored, remote, verdict", [
    ("checksum", StoredRow(10, 5, 7, "d", "e"), None, STORED),
    ("checksum", StoredRow(10, 6, 7, "d", "e"), None, UPLOAD),  # mtime changed, nothing at the key
    ("journal", StoredRow(10, 5, 7, "d", "e"), None, STORED),
    ("never", StoredRow(10, 5, 7, "d", "e"), (10, MD5_A), UPLOAD),
    ("checksum", None, None, UPLOAD),
    ("checksum", None, (11, MD5_A), UPLOAD),  # another size at the key
    ("checksum", None, (10, MD5_A), MD5),  # single PUT: the MD5 decides
    ("checksum", None, (10, MD5_A[:30] + "-2"), CHECK),  # multipart ETag: the worker HEADs
    ("checksum", None, UNKNOWN, CHECK),  # the listing failed: the worker HEADs
    ("size", None, (10, MD5_A[:30] + "-2"), SAME_SIZE),
])
def test_decide(mode, stored, remote, verdict):
    assert decide(TASK, mode=mode, stored=stored, remote=remote, md5_limit=1 << 20) == verdict


def test_a_large_single_put_object_is_left_to_the_head():
    assert decide(TASK, mode="checksum", stored=None, remote=(10, MD5_A), md5_limit=9) == CHECK


class FakeJournal:
    def __init__(self, rows: dict[str, StoredRow]):
        self.rows, self.asked, self.forgotten = rows, [], False

    def stored_many(self, keys):
        self.asked.append(len(keys))
        return {k: self.rows[k] for k in keys if k in self.rows}

    def count_stored(self):
        return len(self.rows)

    def forget_everything_stored(self):
        self.forgotten = True
        self.rows = {}

    def close(self):
        pass


class FakeDestination:
    def __init__(self, objects: dict[str, tuple[int, str]]):
        self.objects, self.looked_up = objects, []

    def is_empty(self):
        return not self.objects

    def lookup(self, key):
        self.looked_up.append(key)
        return self.objects.get(key)

    def close(self):
        pass


def plan(tmp_path, files: dict[str, bytes], *, journal: dict | None = None, objects=None, mode="checksum",
         extra=()) -> tuple[list, list[Batch], FakeJournal, FakeDestination]:
    entries = []
    for rel, data in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        st = p.stat()
        entries.append(FileEntry(path=str(p), rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino))
    settings = replace(Settings(), source=str(tmp_path), bucket="b", prefix="p", skip_existing=mode)
    fj = FakeJournal({} if journal is None else journal(entries))
    fd = FakeDestination(objects or {})
    posted, batches = [], []
    planner = Planner(settings, open_journal=lambda: fj, open_destination=lambda: fd,
                      entries=lambda: iter([*entries, *extra]))
    planner.run(post=posted.append, hand_out=lambda b: batches.append(b) or True, stop=threading.Event())
    return posted, batches, fj, fd


def skips(posted) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in posted:
        if isinstance(m, Skips):
            out[m.reason] = out.get(m.reason, 0) + m.files
    return out


def tasks(batches) -> list[FileTask]:
    return [t for b in batches for t in b.tasks]


def known(entries):
    return {f"p/{e.rel}": StoredRow(e.size, e.mtime_ns, e.inode, "d", "e") for e in entries}


def test_a_rerun_the_journal_knows_is_counted_not_sent(tmp_path):
    files = {f"1920/f{i:04d}": b"x" * (i % 7) for i in range(1200)}
    posted, batches, fj, fd = plan(tmp_path, files, journal=known, objects={"p/other": (1, MD5_A)})
    assert batches == [] and skips(posted) == {SKIP_JOURNAL: 1200}
    assert not any(isinstance(m, WorkerReport) for m in posted)  # no message per file
    assert len(fj.asked) == 3 and fd.looked_up == []  # keys asked in chunks; no listing needed
    assert sum(m.files for m in posted if isinstance(m, ScanProgress)) == 1200
    assert isinstance(posted[-1], ScanProgress) and posted[-1].done


def test_a_lost_journal_is_rebuilt_from_md5_etags_without_a_head(tmp_path):
    files = {"1920/a": b"a", "1920/b": b"bb", "1920/c": b"cc", "1920/d": b"dd", "1920/e": b"new"}
    objects = {"p/1920/a": (1, MD5_A),
               "p/1920/b": (2, hashlib.md5(b"XX").hexdigest()),  # other bytes (or an SSE-KMS ETag)
               "p/1920/c": (2, hashlib.md5(b"cc").hexdigest()[:30] + "-1"),  # multipart
               "p/1920/d": (3, hashlib.md5(b"ddd").hexdigest())}  # another size
    posted, batches, _, _ = plan(tmp_path, files, objects=objects)
    assert skips(posted) == {SKIP_SAME_MD5: 1}
    (row,) = [r for m in posted if isinstance(m, Skips) for r in m.stored]
    assert row == ("p/1920/a", "1920/a", 1, row[3], row[4], xxhash.xxh3_128_hexdigest(b"a"), MD5_A)
    sent = {t.key: t.remote_size for t in tasks(batches)}
    # Undecided by the listing: the worker compares the xxh3-128 metadata (remote_size set) before sending.
    assert sent == {"p/1920/b": 2, "p/1920/c": 2, "p/1920/d": -1, "p/1920/e": -1}


def test_a_file_changed_since_the_scan_is_not_skipped_by_md5(tmp_path):
    posted, batches, _, _ = plan(tmp_path, {"1920/a": b"a"}, objects={"p/1920/a": (1, MD5_A)},
                                 extra=())
    assert skips(posted) == {SKIP_SAME_MD5: 1}
    path = tmp_path / "1920/a"
    entry = FileEntry(path=str(path), rel="1920/a", size=1, mtime_ns=path.stat().st_mtime_ns - 1, inode=1)
    settings = replace(Settings(), source=str(tmp_path), bucket="b", prefix="p")
    got: list[Batch] = []
    Planner(settings, open_journal=lambda: FakeJournal({}), open_destination=lambda: FakeDestination(
        {"p/1920/a": (1, MD5_A)}), entries=lambda: iter([entry])).run(
        post=lambda m: None, hand_out=lambda b: got.append(b) or True, stop=threading.Event())
    assert [t.remote_size for t in tasks(got)] == [1]


def test_size_mode_and_never_mode(tmp_path):
    files = {"1920/a": b"a"}
    posted, batches, _, _ = plan(tmp_path, files, objects={"p/1920/a": (1, "x" * 30 + "-1")}, mode="size")
    assert skips(posted) == {SKIP_SAME_SIZE: 1} and batches == []
    posted, batches, fj, fd = plan(tmp_path, files, journal=known, objects={"p/1920/a": (1, MD5_A)}, mode="never")
    assert skips(posted) == {} and len(tasks(batches)) == 1 and fj.asked == [] and fd.looked_up == []


def test_an_empty_destination_voids_the_journal(tmp_path):
    posted, batches, fj, _ = plan(tmp_path, {"1920/a": b"a"}, journal=known, objects={})
    assert fj.forgotten and len(tasks(batches)) == 1
    assert any(isinstance(m, Notice) and "destination is empty" in m.text for m in posted)


def test_files_that_cannot_be_uploaded_are_reported_one_by_one(tmp_path):
    posted, batches, _, _ = plan(tmp_path, {"1920/a": b"a"}, extra=[Skipped("fifo", "not a regular file: named pipe")])
    (report,) = [m for m in posted if isinstance(m, WorkerReport)]
    assert [r.rel for r in report.results] == ["fifo"] and len(tasks(batches)) == 1


def test_a_stop_ends_planning_without_the_done_message(tmp_path):
    stop = threading.Event()
    stop.set()
    posted: list = []
    settings = replace(Settings(), source=str(tmp_path), bucket="b", prefix="p")
    Planner(settings, open_journal=lambda: FakeJournal({}), open_destination=None,
            entries=lambda: iter([FileEntry(path="/x", rel="a", size=1, mtime_ns=1, inode=1)])).run(
        post=posted.append, hand_out=lambda b: True, stop=stop)
    assert not any(isinstance(m, ScanProgress) and m.done for m in posted)
