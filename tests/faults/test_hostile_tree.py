"""Hostile source trees, through the (fault-free) proxy to the real server: nothing hangs, nothing
crashes, every good file lands, every bad entry is reported with its reason; exit 0 when only skips,
1 when something failed."""

from __future__ import annotations

import errno
import json
import os
import queue
import threading

import pytest
from helpers import assert_landed, json_events, run_cli, summary_of

from mpupload.core.messages import FAILED, UPLOADED
from mpupload.run.plan import task_for
from mpupload.s3.client import make_client
from mpupload.settings.config import Settings
from mpupload.source.scan import FileEntry, scan
from mpupload.worker.fileupload import FileUploader
from mpupload.worker.results import ResultSender

from .hostile import LONG_PART, followed, hostile_tree, long_key_file


def _args(src, bucket, prefix, proxy, *extra):
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url, "--json",
            "--processes", "2", "--threads", "4", *extra]


def _reported(stdout: str, status: str) -> dict[str, str]:
    return {e["path"]: e["reason"] for e in json_events(stdout) if e.get("event") == status}


def _check_reasons(reported: dict[str, str], expected: dict[str, str]) -> None:
    assert set(reported) == set(expected), f"reported {sorted(reported)}, expected {sorted(expected)}"
    for rel, words in expected.items():
        assert words in reported[rel], f"{rel!r}: {reported[rel]!r} does not say {words!r}"


@pytest.mark.parametrize("follow", [False, True], ids=["default", "follow-symlinks"])
def test_hostile_tree_good_files_land_bad_entries_reported(tmp_path, proxy, s3client, s3env, bucket, prefix, follow):
    src, outside = tmp_path / "src", tmp_path / "outside"
    good, bad = hostile_tree(src, outside)
    if follow:
        good, bad = followed(src, outside, good)
    r = run_cli(_args(src, bucket, prefix, proxy, *(["--follow-symlinks"] if follow else [])), s3env, timeout=90)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["skipped"], s["failed"]) == (len(good), len(bad), 0)
    _check_reasons(_reported(r.stdout, "skipped"), bad)
    assert sum(s["skips_by_reason"].values()) == len(bad)
    assert_landed(s3client, bucket, prefix, good)


def test_hostile_tree_human_summary_names_the_reasons(tmp_path, proxy, s3env, bucket, prefix):
    src = tmp_path / "src"
    good, bad = hostile_tree(src, tmp_path / "outside")
    r = run_cli(_args(src, bucket, prefix, proxy)[:-5] + ["--processes", "1"], s3env, timeout=90)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    assert f"Uploaded {len(good)} files" in r.stdout and f"skipped {len(bad)}" in r.stdout
    for words in ("symbolic link", "not a regular file"):
        assert words in r.stdout, r.stdout


def test_key_too_long_fails_with_reason_exit_1_and_failures_file(tmp_path, proxy, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    good, _ = hostile_tree(src, tmp_path / "outside")
    too_long = [long_key_file(src)]
    (src / LONG_PART / "second").mkdir(parents=True)
    rel2 = f"{LONG_PART}/second/" + "/".join([LONG_PART] * 4) + "/p.jp2"
    (src / rel2).parent.mkdir(parents=True)
    (src / rel2).write_bytes(b"another one")
    too_long.append(rel2)
    failures = tmp_path / "failures.jsonl"
    r = run_cli(_args(src, bucket, prefix, proxy, "--failures-file", str(failures)), s3env, timeout=90)
    assert r.returncode == 1, r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    s = summary_of(r.stdout)
    assert s["failed"] == 2 and s["uploaded"] == len(good)
    _check_reasons(_reported(r.stdout, "failed"), {rel: "S3 allows at most 1024" for rel in too_long})
    lines = [json.loads(line) for line in failures.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["path"] for line in lines) == sorted(too_long)
    for line in lines:
        assert "object key is" in line["reason"] and line["key"].endswith(line["path"])
    assert_landed(s3client, bucket, prefix, good)


def _uploader(s3server, proxy, bucket: str, prefix: str, tmp_path) -> tuple[FileUploader, Settings]:
    from concurrent.futures import ThreadPoolExecutor

    s = Settings(source=str(tmp_path / "src"), bucket=bucket, prefix=prefix, endpoint_url=proxy.endpoint_url,
                 file_attempts=2, backoff_base=0.01, backoff_cap=0.05)
    client = make_client(s)
    return FileUploader(client=client, parts_pool=ThreadPoolExecutor(2), settings=s,
                        sender=ResultSender(queue.Queue(), 0), stop=threading.Event()), s


def _replace_with(kind: str, path) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()


@pytest.mark.timeout(60)  # a FIFO opened for reading would block forever: this must not hang
@pytest.mark.parametrize("kind, words", [("vanish", "vanished"), ("fifo", "no longer a regular file"),
                                         ("folder", "became a directory")])
def test_file_changed_between_scan_and_upload_fails_with_reason(tmp_path, s3server, s3client, proxy, bucket, prefix,
                                                               monkeypatch, kind, words):
    """Deterministic, without racing a live run: scan, change the tree, then upload what the scan found."""
    for k, v in s3server.env().items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "src"
    (src / "1960").mkdir(parents=True)
    for name in ("stays.jp2", "goes.jp2"):
        (src / "1960" / name).write_bytes(name.encode() * 100)
    entries = [e for e in scan(str(src)) if isinstance(e, FileEntry)]
    _replace_with(kind, src / "1960" / "goes.jp2")
    uploader, _ = _uploader(s3server, proxy, bucket, prefix, tmp_path)
    results = {e.rel: uploader.upload(task_for(e, prefix=prefix, year_pattern=None), 1) for e in entries}
    assert results["1960/stays.jp2"].status == UPLOADED
    gone = results["1960/goes.jp2"]
    assert gone.status == FAILED and words in gone.reason, gone
    assert gone.attempts == 1  # permanent: not tried again
    assert_landed(s3client, bucket, prefix, {"1960/stays.jp2": src / "1960" / "stays.jp2"})


def _refuse_reading(path, monkeypatch) -> None:
    """Make `path` unreadable to this process, root included: chmod 000 stops anyone else, and where it
    cannot (root, as in CI) `os.open` of that one path fails as the kernel would for another user."""
    path.chmod(0)
    if os.geteuid() != 0:
        return
    real_open, target = os.open, os.fsencode(path)

    def refusing_open(file, flags, *args, **kwargs):
        if os.fsencode(file) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)


def test_file_unreadable_at_upload_fails_with_reason(tmp_path, s3server, s3client, proxy, bucket, prefix, monkeypatch):
    for k, v in s3server.env().items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "src"
    (src / "1960").mkdir(parents=True)
    (src / "1960" / "locked.jp2").write_bytes(b"secret")
    entries = [e for e in scan(str(src)) if isinstance(e, FileEntry)]
    uploader, _ = _uploader(s3server, proxy, bucket, prefix, tmp_path)
    _refuse_reading(src / "1960" / "locked.jp2", monkeypatch)
    r = uploader.upload(task_for(entries[0], prefix=prefix, year_pattern=None), 1)
    assert r.status == FAILED and "unreadable" in r.reason and "denied" in r.reason, r
    assert r.attempts == 1  # permanent: another try cannot fix a permission
    assert not s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("KeyCount")
