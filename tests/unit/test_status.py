"""`mpupload status`'s computations on fixed samples (rates over a window, ETA), the progress document a
run writes, the lock holder read from a lock table, and the text view of a running / finished / killed run."""

from __future__ import annotations

import fcntl
import io
import json
import os
from dataclasses import replace

import pytest

from mpupload.core.messages import FAILED, UPLOADED, UploadResult
from mpupload.observe.progressfile import ProgressWriter, progress_path, read_progress
from mpupload.observe.runstatus import eta_seconds, lock_holder, rate_over, status_of
from mpupload.observe.stats import Stats
from mpupload.settings.config import Settings
from mpupload.ui.statusview import show, status_lines

# [wall time, files done, bytes done, bytes sent]: 10 files/s and 1 MB/s for 60 s, then 2 files/s, 0.2 MB/s
HISTORY = [[1000.0 + t, 10 * t, 1_000_000 * t, 1_000_000 * t] for t in range(0, 61, 5)] + \
          [[1060.0 + t, 600 + 2 * t, 60_000_000 + 200_000 * t, 60_000_000 + 200_000 * t] for t in range(5, 61, 5)]


def test_rate_over_the_last_minute_sees_the_slowdown_the_whole_history_averages_it():
    files_per_s, bytes_per_s = rate_over(HISTORY, window=60)
    assert files_per_s == pytest.approx(2.0) and bytes_per_s == pytest.approx(200_000)
    files_per_s, bytes_per_s = rate_over(HISTORY, window=float("inf"))
    assert files_per_s == pytest.approx(720 / 120) and bytes_per_s == pytest.approx(72_000_000 / 120)


def test_rate_needs_a_second_of_history():
    assert rate_over([], window=60) is None
    assert rate_over([[5.0, 1, 1, 1]], window=60) is None
    assert rate_over([[5.0, 1, 1, 1], [5.5, 9, 9, 9]], window=60) is None
    # Samples sparser than the window: the two newest still give a rate.
    assert rate_over([[0.0, 0, 0, 0], [100.0, 50, 0, 1000]], window=10) == (0.5, 10.0)


def test_eta_is_the_longer_of_the_file_and_byte_guesses():
    assert eta_seconds(left_files=100, left_bytes=1_000, rate=(10.0, 1_000.0)) == 10.0  # files bound
    assert eta_seconds(left_files=1, left_bytes=50_000, rate=(10.0, 1_000.0)) == 50.0  # bytes bound
    assert eta_seconds(left_files=0, left_bytes=0, rate=None) == 0.0
    assert eta_seconds(left_files=5, left_bytes=5, rate=None) is None
    assert eta_seconds(left_files=5, left_bytes=5, rate=(0.0, 0.0)) is None


class Wall:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _settings(tmp_path) -> Settings:
    journal = tmp_path / "j.sqlite"
    journal.write_bytes(b"")  # status needs the journal to exist; its content is not read when progress is there
    return replace(Settings(source=str(tmp_path / "src"), bucket="b", prefix="p"), journal=str(journal), run_id="r1")


def _run(tmp_path, *, seconds: int, finish: int | None = None):
    """A run of 100 files (10 per partition-year) doing 1 file and 1000 bytes a second, seen by the writer."""
    s, wall, clock = _settings(tmp_path), Wall(), Wall(0.0)
    stats = Stats(clock=clock)
    stats.found(100, 100_000, tuple((str(1900 + i), 10, 10_000) for i in range(10)))
    stats.scan_done = True
    writer = ProgressWriter(settings=s, wall=wall, every=2.0)
    writer.starting()
    for i in range(seconds):
        wall.t += 1
        clock.t += 1
        failed = i == 3
        stats.add(UploadResult(rel=f"{1900 + i // 10}/f{i}", key="k", status=FAILED if failed else UPLOADED,
                               size=1000, partition=str(1900 + i // 10), attempts=2 if failed else 1,
                               reason="SlowDown: reduce your rate" if failed else ""))
        stats.sent(1000)
        writer.update(stats.snapshot())
    if finish is not None:
        wall.t += 1
        writer.ended(stats.snapshot(), exit_code=finish)
    return s, wall


def test_the_progress_document_holds_counts_history_partitions_and_failures(tmp_path):
    s, wall = _run(tmp_path, seconds=30)
    doc = read_progress(progress_path(s.journal))
    assert doc["pid"] == os.getpid() and doc["state"] == "running" and doc["run_id"] == "r1"
    assert doc["total"] == {"files": 100, "bytes": 100_000, "known": True}
    assert (doc["uploaded"], doc["failed"], doc["retries"]) == (29, 1, 1)  # written every 2 s: the 30th second's
    times = [row[0] for row in doc["history"]]
    assert times == sorted(times) and times[0] == wall.t - 29 and all(b - a <= 5 for a, b in zip(times, times[1:], strict=False))
    parts = {p["name"]: (p["done"], p["files"], p["failed"]) for p in doc["partitions"]}
    assert parts["1900"] == (10, 10, 1) and parts["1902"] == (10, 10, 0) and parts["1903"] == (0, 10, 0)
    assert doc["recent_failures"] == [{"path": "1900/f3", "reason": "SlowDown: reduce your rate"}]
    assert oct(os.stat(progress_path(s.journal)).st_mode & 0o777) == "0o600"


def test_history_keeps_ten_minutes_at_five_second_steps(tmp_path):
    s, wall = _run(tmp_path, seconds=0)
    writer = ProgressWriter(settings=s, wall=wall, every=0)
    stats = Stats()
    for _ in range(1800):
        wall.t += 1
        writer.update(stats.snapshot())
    rows = read_progress(progress_path(s.journal))["history"]
    assert wall.t - rows[0][0] <= 600 and len(rows) <= 600 / 5 + 2 and rows[-1][0] == wall.t


def test_status_of_a_run_that_holds_the_journal(tmp_path):
    s, wall = _run(tmp_path, seconds=30)
    with open(f"{s.journal}.lock", "w") as lock:
        lock.write(f"{os.getpid()} {wall.t - 30:.0f}\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX)
        st = status_of(s.journal, now=wall.t)
    assert st["running"] and st["pid"] == os.getpid() and st["state"] == "running"
    assert (st["total_files"], st["done_files"], st["left_files"], st["failed"]) == (100, 30, 70, 1)
    assert st["files_per_min_1m"] == pytest.approx(60.0) and st["bytes_per_s_1m"] == 1000
    assert st["eta_seconds"] == 71  # 70 files at 1/s; 71,000 bytes (the failed file's not stored) at 1000 B/s
    text = "\n".join(status_lines(st, now=wall.t))
    assert f"running, pid {os.getpid()}" in text and "done      30 of 100 files (30%)" in text
    assert "left      70 files" in text and "ETA       1:11" in text and "SlowDown 1" in text


def test_status_of_a_finished_run_and_of_one_that_was_killed(tmp_path):
    s, wall = _run(tmp_path, seconds=100, finish=1)
    st = status_of(s.journal, now=wall.t)
    assert (st["running"], st["state"], st["outcome"], st["exit_code"]) == (False, "finished", "failures", 1)
    assert st["left_files"] == 0 and st["eta_seconds"] is None
    assert "finished" in status_lines(st)[1] and "failures (exit code 1)" in status_lines(st)[1]

    killed = tmp_path / "killed"
    killed.mkdir()
    s, wall = _run(killed, seconds=10)  # no lock held, no last word: killed
    st = status_of(s.journal, now=wall.t + 600)
    assert (st["running"], st["state"]) == (False, "stopped")
    assert "ended without finishing" in status_lines(st)[1]


def test_status_without_a_journal_raises_and_json_output_is_one_document(tmp_path):
    with pytest.raises(FileNotFoundError):
        status_of(tmp_path / "none.sqlite")
    s, _ = _run(tmp_path, seconds=5)
    out = io.StringIO()
    show(lambda: status_of(s.journal), json_output=True, out=out)
    assert json.loads(out.getvalue())["journal"] == s.journal


def test_lock_holder_from_the_lock_table(tmp_path):
    journal = tmp_path / "j.sqlite"
    lock = tmp_path / "j.sqlite.lock"
    lock.write_text("4242 1700000000\n")
    st = os.stat(lock)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    table = tmp_path / "locks"
    table.write_text(f"1: POSIX  ADVISORY  WRITE 77 {dev} 0 EOF\n"
                     f"2: FLOCK  ADVISORY  WRITE 4242 {dev} 0 EOF\n"
                     f"2: -> FLOCK  ADVISORY  WRITE 99 {dev} 0 EOF\n")
    h = lock_holder(journal, locks=str(table))
    assert (h.pid, h.since) == (4242, 1700000000.0)
    table.write_text(f"1: FLOCK  ADVISORY  WRITE 4242 00:00:{st.st_ino + 1} 0 EOF\n")
    assert lock_holder(journal, locks=str(table)) is None
    # An overlay filesystem may name another device: the inode and the pid written in the lock file agree.
    table.write_text(f"1: FLOCK  ADVISORY  WRITE 4242 00:2a:{st.st_ino} 0 EOF\n")
    assert lock_holder(journal, locks=str(table)).pid == 4242
    assert lock_holder(tmp_path / "other.sqlite", locks=str(table)) is None


def test_lock_holder_sees_a_real_flock_and_its_release(tmp_path):
    journal = tmp_path / "j.sqlite"
    from mpupload.state.runlock import RunLock

    lock = RunLock(journal)
    lock.acquire()
    try:
        if not os.path.exists("/proc/locks"):
            pytest.skip("no /proc/locks here")
        assert lock_holder(journal).pid == os.getpid()
    finally:
        lock.release()
    assert lock_holder(journal) is None


def test_status_command_without_a_journal_exits_2_with_one_line(tmp_path):
    from click.testing import CliRunner

    from mpupload.cli.main import main

    r = CliRunner().invoke(main, ["status", "--journal", str(tmp_path / "none.sqlite")])
    assert r.exit_code == 2 and "no journal at" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["status", str(tmp_path), "s3://bucket/prefix", "--endpoint-url", "http://h:1"])
    assert r.exit_code == 2 and "no journal at" in r.output and "through http://h:1" in r.output
    r = CliRunner().invoke(main, ["status"])
    assert r.exit_code == 2 and "give SOURCE and s3://BUCKET" in r.output


def test_watch_refreshes_while_the_run_holds_the_journal_and_ctrl_c_exits_130(tmp_path):
    import signal
    import subprocess
    import sys

    from helpers import wait_for

    s, _ = _run(tmp_path, seconds=5)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, fcntl; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); sys.stdin.read()"), f"{s.journal}.lock"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        doc = read_progress(progress_path(s.journal))
        doc["pid"] = holder.pid  # the document of the run that holds the lock
        progress_path(s.journal).write_text(json.dumps(doc))
        watch = subprocess.Popen([sys.executable, "-m", "mpupload", "status", "--journal", s.journal, "--json",
                                  "--watch", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        wait_for(lambda: lines.append(watch.stdout.readline()) or len(lines) >= 2, timeout=60, what="two refreshes")
        assert all(json.loads(line)["running"] and json.loads(line)["pid"] == holder.pid for line in lines)
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=30)
        assert watch.returncode == 130 and "Traceback" not in err
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # The run let go: --watch shows it once more and ends by itself.
    done = subprocess.run([sys.executable, "-m", "mpupload", "status", "--journal", s.journal, "--watch", "0.5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "not running" in done.stdout
