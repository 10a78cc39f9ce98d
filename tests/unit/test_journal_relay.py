"""A Dask worker's multipart journal: rows from the batches, writes to the coordinator, applied there."""

from __future__ import annotations

from mpupload.cluster.journal_relay import RelayedJournal, apply, rows_for
from mpupload.core.messages import FileTask
from mpupload.state.journal import Journal, MultipartRow, PartRecord


def _row(key: str, upload_id: str) -> MultipartRow:
    return MultipartRow(key=key, upload_id=upload_id, size=20, mtime_ns=1, inode=2, digest="d" * 32, part_size=10,
                        run_id="r1")


def test_writes_go_to_the_coordinator_in_order_and_land_in_its_journal(tmp_path):
    sent = []
    relayed = RelayedJournal(sent.append)
    relayed.learn([_row("a", "old")])
    assert relayed.upload_in_progress("a").upload_id == "old"
    relayed.upload_started(_row("b", ""))  # the marker before the create
    relayed.upload_started(_row("b", "u1"))
    assert relayed.upload_in_progress("b").upload_id == "u1"
    part = PartRecord(1, 10, "AAECAwQFBgc=", '"e1"')
    relayed.part_stored("b", "u1", part)
    assert relayed.upload_in_progress("b").parts == (part,)  # a retry of the file in this process sees it
    relayed.upload_resumed("a", "r2")
    relayed.upload_ended("a", "old")
    relayed.upload_aborted("c", "u9")
    assert relayed.upload_in_progress("a") is None
    assert [op.op for op in sent] == ["upload_started", "upload_started", "part_stored", "upload_resumed",
                                      "upload_ended", "upload_aborted"]
    journal = Journal(tmp_path / "j.sqlite")
    journal.upload_started(_row("a", "old"))
    for op in sent:
        apply(journal, op)
    assert journal.upload_in_progress("a") is None
    assert journal.upload_in_progress("b").upload_id == "u1"
    assert journal.upload_in_progress("b").parts == (part,)
    assert ("c", "u9") in journal.aborted_uploads()
    tasks = [FileTask(path="/x", rel=k, key=k, size=size, mtime_ns=1, inode=2, partition="") for k, size in
             (("b", 20), ("small", 3))]
    assert [(r.key, r.parts) for r in rows_for(journal, tasks, threshold=10)] == [("b", (part,))]
    journal.close()


def test_only_the_relayed_writes_can_be_applied(tmp_path):
    import pytest

    from mpupload.core.messages import JournalOp

    journal = Journal(tmp_path / "j.sqlite")
    with pytest.raises(ValueError):
        apply(journal, JournalOp("forget_everything_stored", ()))
    journal.close()
