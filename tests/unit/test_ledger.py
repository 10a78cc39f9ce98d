"""The ledger fed messages by hand: counts, journal rows, notices once, fatal on a journal it cannot write."""

from __future__ import annotations

from mpupload.core.errors import FatalError
from mpupload.core.messages import (
    FAILED,
    SKIP_JOURNAL,
    SKIP_SAME_MD5,
    UPLOADED,
    Notice,
    ScanProgress,
    Skips,
    UploadResult,
    WorkerReport,
)
from mpupload.observe.stats import Stats
from mpupload.run.ledger import Ledger
from mpupload.state.journal import Journal, JournalError


class Quiet:
    def __init__(self):
        self.warnings, self.results = [], []

    def warn(self, text):
        self.warnings.append(text)

    def result(self, r):
        self.results.append(r)


def test_results_and_planner_skips_are_counted_and_journaled(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    stats, out = Stats(), Quiet()
    ledger = Ledger(journal=j, stats=stats, sink=out)
    assert not ledger.take(ScanProgress(files=5, nbytes=50))
    assert not ledger.take(Skips(reason=SKIP_JOURNAL, files=3, nbytes=30))
    assert not ledger.take(Skips(reason=SKIP_SAME_MD5, files=1, nbytes=10,
                                 stored=(("p/a", "a", 10, 1, 2, "ab" * 16, "cd" * 16),)))
    assert not ledger.take(WorkerReport(worker=1, bytes_sent=10, results=(
        UploadResult(rel="b", key="p/b", status=UPLOADED, size=10, digest="ef" * 16, etag="01" * 16),)))
    snap = stats.snapshot()
    assert (snap.skipped, snap.uploaded, snap.bytes_skipped, snap.pending) == (4, 1, 40, 0)
    assert dict(snap.skip_reasons) == {SKIP_JOURNAL: 3, SKIP_SAME_MD5: 1}
    assert set(j.stored_many(["p/a", "p/b"])) == {"p/a", "p/b"}
    assert [r.rel for r in out.results] == ["b"]  # the planner's skips are counts, not lines


def test_the_same_notice_is_said_once_and_a_journal_failure_is_fatal(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    out = Quiet()
    ledger = Ledger(journal=j, stats=Stats(), sink=out)
    ledger.take(Notice("lean path off"))
    ledger.take(Notice("lean path off"))
    assert out.warnings == ["lean path off"]

    def full(_rows):
        raise JournalError(j.path, "database or disk is full")

    j.record_stored = full
    stop = ledger.take(WorkerReport(worker=1, bytes_sent=0, results=(
        UploadResult(rel="c", key="p/c", status=UPLOADED, size=1, digest="ab" * 16),
        UploadResult(rel="d", key="p/d", status=FAILED, reason="x"))))
    assert stop and isinstance(ledger.fatal, FatalError) and "disk is full" in ledger.fatal.message


def test_requests_in_flight_are_each_workers_last_word(tmp_path):
    """The live view's "in flight": the sum of what each worker said it held at its last report; a report
    that does not know (-1) changes nothing."""
    stats = Stats()
    ledger = Ledger(journal=Journal(tmp_path / "j.sqlite"), stats=stats, sink=Quiet())
    for worker, held in ((1, 30), (2, 12), (1, 25), (2, -1)):
        ledger.take(WorkerReport(worker=worker, results=(), bytes_sent=0, inflight=held))
    assert stats.inflight == {1: 25, 2: 12} and sum(stats.inflight.values()) == 37


def test_a_worker_reports_a_changed_in_flight_count_even_with_nothing_finished():
    """The count must reach the live view while every request is still on the wire (a long link): a flush
    with no results sends it when it changed, and stays quiet when it did not."""
    import queue

    from mpupload.worker.results import ResultSender

    out: queue.Queue = queue.Queue()
    sender = ResultSender(out, 7)
    sender.flush()
    assert out.empty()  # nothing to say, and no count known
    held = [12]
    sender.inflight = lambda: held[0]
    sender.flush()
    assert out.get_nowait().inflight == 12
    sender.flush()
    assert out.empty()
    held[0] = 0
    sender.flush()
    assert out.get_nowait().inflight == 0
