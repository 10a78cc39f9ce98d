"""README, "--log-file": a log that cannot be written stops the run (exit 3), as a failures file does: one
message naming the path, a summary, and the rerun, with the log writable again, resumes without losing or
re-sending anything that was stored. Two ways it happens: the log cannot be opened at all (the run stops
before it sends anything), and the disk fills under it mid-run (a small tmpfs, as for the journal's
full-disk test in test_stopping.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import assert_landed, list_keys, local_files, run_cli, summary_of

from mpupload.core.messages import SKIP_JOURNAL

MESSAGE = "cannot write the log file"


def _tree(root: Path, n: int) -> dict[str, Path]:
    for i in range(n):
        p = root / str(1930 + i % 10) / f"p{i:04d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(1000 + i % 500))
    return local_files(root)


def _up(src: Path, bucket: str, prefix: str, endpoint: str, log: Path, *extra: str) -> list[str]:
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", endpoint, "--json",
            "--processes", "2", "--log-file", str(log), *extra]


def _files_of(client, bucket: str, prefix: str) -> dict[str, int]:
    return {k: v for k, v in list_keys(client, bucket, prefix).items() if "/.mpupload-" not in k}


def _run_records(log: Path) -> list[dict]:
    """The last run's lines (from its start line), each of which must be whole JSON."""
    lines = log.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith('{"event": "start"')]
    assert starts, "no start line"
    return [json.loads(line) for line in lines[starts[-1]:]]


def test_a_log_file_that_cannot_be_opened_stops_the_run_before_anything_is_sent(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    files = _tree(src, 20)
    log = tmp_path / "no-such-folder" / "run.jsonl"
    r = run_cli(_up(src, bucket, prefix, s3server.endpoint_url, log), s3env)
    assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    out = r.stdout + r.stderr
    assert out.count(f"{MESSAGE} {log}") == 1, out
    assert _files_of(s3client, bucket, prefix) == {}, "files were sent by a run that could not keep its log"
    log.parent.mkdir()
    again = run_cli(_up(src, bucket, prefix, s3server.endpoint_url, log), s3env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary_of(again.stdout)["uploaded"] == len(files)
    assert_landed(s3client, bucket, prefix, files)


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs for the log")
    where.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def _fills_then_rerun(tmp_path, s3server, s3client, s3env, bucket, prefix, *, endpoint: str, mid_run: bool) -> None:
    """A run whose log is on a disk that fills: exit 3 with one message naming the log, a summary; then,
    with room again, a rerun that sends exactly what is missing and leaves a whole record."""
    src = tmp_path / "src"
    n = len(_tree(src, 1500))
    disk = tmp_path / "small-disk"
    _mount_tmpfs(disk, "4m")
    log = disk / "run.jsonl"
    try:
        filler = disk / "filler"
        # Room for the start line and a few dozen file lines, not for 1500.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * (free - 24 * 1024))
        # Mid-run: 2 x 4 files in flight over 80 ms make 1500 files last ~15 s, far longer than the 2 s
        # after which the log's buffer is first written.
        r = run_cli(_up(src, bucket, prefix, endpoint, log, *(["--threads", "2"] if mid_run else [])), s3env)
        assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
        out = r.stdout + r.stderr
        assert out.count(MESSAGE) == 1, out[-3000:]
        s = summary_of(r.stdout)
        assert f"{MESSAGE} {log}" in s["fatal"]
        present = _files_of(s3client, bucket, prefix)
        if mid_run:
            assert 0 < len(present) < n, "the run did not stop mid-way: the test proves nothing"
        assert s["uploaded"] <= len(present)

        filler.unlink()  # room again
        again = run_cli(_up(src, bucket, prefix, endpoint, log), s3env)
        assert again.returncode == 0, again.stderr[-3000:]
        s2 = summary_of(again.stdout)
        assert s2["uploaded"] == n - len(present)  # nothing stored is sent again, nothing is missing
        assert s2["uploaded"] + s2["skipped"] == n
        # The journal kept every upload the first run counted: those are skipped by it, not looked up.
        assert s2["skips_by_reason"].get(SKIP_JOURNAL, 0) >= s["uploaded"], s2["skips_by_reason"]
        records = _run_records(log)  # the rerun's record is whole, whatever the full disk cut before it
        assert records[-1]["event"] == "end" and records[-1]["exit_code"] == 0
        assert len([x for x in records if x["event"] == "file"]) == n
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_a_log_file_on_a_disk_that_fills_mid_run_stops_it_and_the_rerun_loses_nothing(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    _fills_then_rerun(tmp_path, s3server, s3client, s3env, bucket, prefix, endpoint=slow_link.url, mid_run=True)


def test_a_log_file_that_cannot_take_its_last_lines_is_still_exit_3(tmp_path, s3server, s3client, s3env, bucket,
                                                                    prefix):
    # On loopback the whole run may fit in one flush interval: its lines reach the disk only at the end,
    # and a log that cannot take them must not end in exit 0 with the record lost.
    _fills_then_rerun(tmp_path, s3server, s3client, s3env, bucket, prefix, endpoint=s3server.endpoint_url,
                      mid_run=False)
