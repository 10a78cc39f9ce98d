"""The --log-file writer fed by the ledger: buffered lines reach the disk on the clock and at the end, and a
log that cannot be written stops the run as the failures file does."""

from __future__ import annotations

import json
import os

import pytest

from mpupload.core.messages import FAILED, SKIP_JOURNAL, UPLOADED, Skips, UploadResult, WorkerReport
from mpupload.observe.eventlog import FLUSH_EVERY, EventLog, close_log
from mpupload.observe.stats import Stats
from mpupload.run.ledger import Ledger
from mpupload.settings.config import Settings
from mpupload.state.journal import Journal


class Quiet:
    def warn(self, text):
        pass

    def result(self, r):
        pass


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_lines_are_buffered_then_flushed_on_the_clock(tmp_path):
    clock, path = Clock(), tmp_path / "log.jsonl"
    log = EventLog(str(path), clock=clock)
    log.start(Settings(source="/src", bucket="b", run_id="r1"))
    ledger = Ledger(journal=Journal(tmp_path / "j.sqlite"), stats=Stats(), sink=Quiet(), log=log)
    ledger.take(Skips(reason=SKIP_JOURNAL, files=2, nbytes=3, listed=(("a", "p/a", 1, "1920"), ("b", "p/b", 2, "1920"))))
    ledger.take(WorkerReport(worker=1, bytes_sent=5, results=(
        UploadResult(rel="c", key="p/c", status=UPLOADED, size=5, attempts=2, seconds=0.5, partition="1921"),
        UploadResult(rel="d", key="p/d", status=FAILED, reason="BadDigest", size=6, attempts=5))))
    assert [x["event"] for x in _lines(path)] == ["start"]  # the start line at once, the rest buffered
    ledger.tick()
    assert len(_lines(path)) == 1  # not due yet
    clock.now += FLUSH_EVERY
    ledger.tick()
    got = _lines(path)
    assert [(x["relpath"], x["status"], x["reason"], x["attempt"]) for x in got[1:]] == [
        ("a", "skipped", SKIP_JOURNAL, 0), ("b", "skipped", SKIP_JOURNAL, 0), ("c", "uploaded", "", 2),
        ("d", "failed", "BadDigest", 5)]
    assert got[0]["settings"]["source"] == "/src" and got[0]["run_id"] == "r1"


def test_the_end_line_without_an_outcome_says_so(tmp_path):
    path = tmp_path / "log.jsonl"
    close_log(EventLog(str(path)), run_id="r", outcome=None, warn=print)
    assert _lines(path) == [{**_lines(path)[0], "event": "end", "exit_code": None, "summary": {}}]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_log_that_cannot_be_written_is_fatal(tmp_path):
    clock = Clock()
    ledger = Ledger(journal=Journal(tmp_path / "j.sqlite"), stats=Stats(), sink=Quiet(),
                    log=EventLog("/dev/full", clock=clock))
    clock.now += FLUSH_EVERY
    stop = ledger.take(WorkerReport(worker=1, bytes_sent=1, results=(
        UploadResult(rel="c", key="p/c", status=UPLOADED, size=1),)))
    assert stop and ledger.fatal.kind == "log-file" and "/dev/full" in ledger.fatal.message


def test_a_run_after_one_cut_mid_line_starts_on_a_line_of_its_own(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"event": "start"}\n{"event": "file", "rel', encoding="utf-8")  # a full disk cut it here
    log = EventLog(str(path))
    log.end(run_id="r2", exit_code=0, summary={})
    log.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"event": "file", "rel'  # the cut line is left as it was: that run's record
    assert json.loads(lines[2])["run_id"] == "r2"
