"""Filters through the real CLI against the real server: an excluded folder is not walked, --exclude-from,
--min/--max-size, --min/--max-age, --one-file-system; each from a flag, the environment or the settings file;
the dry run counts what each removed; what they leave out is neither uploaded nor failed (exit 0), and verify
with the same filters neither misses the files nor calls their objects extra."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from helpers import json_events, list_keys, run_cli, summary_of

DAY = 86400


def _files(root, spec: dict[str, int], *, age: dict[str, float] | None = None) -> None:
    for rel, size in spec.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        if age and rel in age:
            t = time.time() - age[rel]
            os.utime(p, (t, t))


def _up(src, bucket, prefix, server, *extra) -> list[str]:
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", server.endpoint_url, "--json",
            "--processes", "1", *extra]


def _verify(src, bucket, prefix, server, *extra) -> list[str]:
    return ["verify", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", server.endpoint_url, "--json", *extra]


def _plan(stdout: str) -> dict:
    [plan] = [e for e in json_events(stdout) if e["event"] == "plan"]
    return plan


def _verified(stdout: str) -> dict:
    [s] = [e for e in json_events(stdout) if e["event"] == "verify_summary"]
    return s


def test_an_excluded_folder_is_not_walked_and_its_objects_are_not_extra(tmp_path, s3server, s3client, s3env,
                                                                        bucket, prefix):
    src = tmp_path / "src"
    _files(src, {"1920/a.jp2": 100, "1920/b.jp2": 100, "1921/c.jp2": 100})
    for i in range(200):  # snapshot folders: at the top and below it
        _files(src, {f".snapshot/hourly.{i % 4}/1920/a{i}.jp2": 10, f"1921/.snapshot/s{i}.jp2": 10})
    os.mkfifo(src / ".snapshot" / "pipe")  # walked, it would be reported skipped (not a regular file)
    globs = ["--exclude", ".snapshot/*", "--exclude", "*/.snapshot/*"]
    dry = run_cli(_up(src, bucket, prefix, s3server, "--dry-run", *globs), s3env)
    assert dry.returncode == 0, dry.stderr
    plan = _plan(dry.stdout)
    # Two folders not walked, not one of their 401 entries looked at: had they been walked, each file would
    # count as removed by --exclude one by one, and the FIFO would be in the plan as not uploadable.
    assert plan["filtered"] == {"--exclude": {"files": 0, "folders": 2}}
    assert (plan["files"], plan["not_uploadable"]) == (3, 0)
    # A glob that names the files one by one still walks the folder (and removes them one by one).
    one_by_one = _plan(run_cli(_up(src, bucket, prefix, s3server, "--dry-run", "--exclude", "*.jp2"), s3env).stdout)
    assert one_by_one["filtered"] == {"--exclude": {"files": 403, "folders": 0}}
    # Objects under the excluded folders (an earlier run without the filter) are not extra for verify.
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/.snapshot/hourly.0/gone.jp2", Body=b"old")
    r = run_cli(_up(src, bucket, prefix, s3server, *globs), s3env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["uploaded"] == 3 and summary_of(r.stdout)["failed"] == 0
    assert sorted(list_keys(s3client, bucket, prefix)) == sorted(
        f"{prefix}/{k}" for k in ("1920/a.jp2", "1920/b.jp2", "1921/c.jp2", ".snapshot/hourly.0/gone.jp2"))
    v = run_cli(_verify(src, bucket, prefix, s3server, *globs), s3env)
    assert v.returncode == 0 and _verified(v.stdout)["ok"] == 3, v.stdout + v.stderr
    unfiltered = run_cli(_verify(src, bucket, prefix, s3server), s3env)
    assert unfiltered.returncode == 1 and _verified(unfiltered.stdout)["extra"] == 1  # the check can fail


def test_exclude_from_a_file_and_from_the_settings_file(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    _files(src, {"1920/a.jp2": 50, "1920/a.tmp": 50, "1920/cache/x.jp2": 50, "1921/b.jp2": 50})
    (tmp_path / "exclude.txt").write_text("# scratch files\n\n*.tmp\n  1920/cache/*\n")
    (tmp_path / "mp.toml").write_text(f'exclude_from = "{tmp_path / "exclude.txt"}"\n')
    env = {**s3env, "MPUPLOAD_CONFIG": str(tmp_path / "mp.toml")}
    shown = json.loads(run_cli(["config", "show", str(src), "--json"], env).stdout)["settings"]["exclude_from"]
    assert shown["value"] == [str(tmp_path / "exclude.txt")] and "mp.toml" in shown["origin"]
    plan = _plan(run_cli(_up(src, bucket, prefix, s3server, "--dry-run"), env).stdout)
    assert plan["filtered"] == {"--exclude-from": {"files": 1, "folders": 1}} and plan["files"] == 2
    r = run_cli(_up(src, bucket, prefix, s3server), env)
    assert r.returncode == 0 and summary_of(r.stdout)["uploaded"] == 2, r.stderr
    assert set(list_keys(s3client, bucket, prefix)) == {f"{prefix}/1920/a.jp2", f"{prefix}/1921/b.jp2"}
    v = run_cli(_verify(src, bucket, prefix, s3server), env)
    assert v.returncode == 0 and _verified(v.stdout)["ok"] == 2, v.stdout + v.stderr
    missing = run_cli(_up(src, bucket, prefix, s3server, "--exclude-from", str(tmp_path / "nope.txt")), s3env)
    assert missing.returncode == 2 and "--exclude-from" in missing.stderr


def test_size_bounds_from_flags_and_the_environment(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    _files(src, {"1920/tiny.jp2": 100, "1920/edge.jp2": 1024, "1920/mid.jp2": 3000, "1920/top.jp2": 8192,
                 "1920/big.jp2": 9000})
    env = {**s3env, "MPUPLOAD_MAX_SIZE": "8KB"}
    plan = _plan(run_cli(_up(src, bucket, prefix, s3server, "--dry-run", "--min-size", "1KB"), env).stdout)
    assert plan["filtered"] == {"--min-size": {"files": 1, "folders": 0}, "--max-size": {"files": 1, "folders": 0}}
    r = run_cli(_up(src, bucket, prefix, s3server, "--min-size", "1KB"), env)
    assert r.returncode == 0, r.stderr
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (3, 0, 0)  # bounds inclusive: 1024 and 8192 land
    assert set(list_keys(s3client, bucket, prefix)) == {f"{prefix}/1920/{n}.jp2" for n in ("edge", "mid", "top")}
    # An object of a size the bounds leave out is not extra, with no local file at all.
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1920/gone.jp2", Body=b"x" * 10)
    v = run_cli(_verify(src, bucket, prefix, s3server, "--min-size", "1KB"), env)
    assert v.returncode == 0 and _verified(v.stdout)["ok"] == 3, v.stdout + v.stderr
    bad = run_cli(_up(src, bucket, prefix, s3server, "--min-size", "9KB"), env)
    assert bad.returncode == 2 and "--min-size is larger than --max-size" in bad.stderr


def test_age_bounds_and_verify_of_objects_whose_files_they_leave_out(tmp_path, s3server, s3client, s3env, bucket,
                                                                     prefix):
    src = tmp_path / "src"
    ages = {"1920/old.jp2": 30 * DAY, "1920/week.jp2": 3 * DAY, "1920/new.jp2": 60}
    _files(src, {rel: 100 for rel in ages}, age=ages)
    # The first pass took everything; the next passes pick up what changed in the last week, settled files only.
    assert run_cli(_up(src, bucket, prefix, s3server), s3env).returncode == 0
    window = ["--max-age", "7d", "--min-age", "30m"]
    plan = _plan(run_cli(_up(src, bucket, prefix, s3server, "--dry-run", *window), s3env).stdout)
    assert plan["files"] == 1 and plan["filtered"] == {"--min-age": {"files": 1, "folders": 0},
                                                       "--max-age": {"files": 1, "folders": 0}}
    r = run_cli(_up(src, bucket, prefix, s3server, *window), s3env)
    assert r.returncode == 0 and summary_of(r.stdout)["skipped"] == 1, r.stderr  # week.jp2, already there
    # The objects of old.jp2 and new.jp2 are the files' own, left out by age: neither missing nor extra.
    v = run_cli(_verify(src, bucket, prefix, s3server, *window), s3env)
    assert v.returncode == 0, v.stdout + v.stderr
    assert (_verified(v.stdout)["ok"], _verified(v.stdout)["extra"]) == (1, 0)
    # An object whose file is gone is still extra: age cannot be told from an object.
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1920/deleted.jp2", Body=b"x")
    v = run_cli(_verify(src, bucket, prefix, s3server, *window), s3env)
    assert v.returncode == 1 and [e["key"] for e in json_events(v.stdout) if e["event"] == "extra"] == [
        f"{prefix}/1920/deleted.jp2"]
    bad = run_cli(_up(src, bucket, prefix, s3server, "--max-age", "7 days"), s3env)
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_one_file_system_does_not_enter_another_mount(tmp_path, s3server, s3client, s3env, bucket, prefix):
    other = "/dev/shm"
    if not os.access(other, os.W_OK) or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no writable folder on another file system than the temp folder")
    src = tmp_path / "src"
    _files(src, {"1920/here.jp2": 100})
    with tempfile.TemporaryDirectory(dir=other) as mount:
        _files(Path(mount), {"there.jp2": 100, "deeper/more.jp2": 100})
        (src / "1921").symlink_to(mount, target_is_directory=True)  # a folder on another device, as a mount is
        args = ["--follow-symlinks", "--one-file-system"]
        plan = _plan(run_cli(_up(src, bucket, prefix, s3server, "--dry-run", *args), s3env).stdout)
        assert plan["filtered"] == {"--one-file-system": {"files": 0, "folders": 1}} and plan["files"] == 1
        r = run_cli(_up(src, bucket, prefix, s3server, *args), s3env)
        assert r.returncode == 0 and summary_of(r.stdout)["uploaded"] == 1, r.stderr
        assert set(list_keys(s3client, bucket, prefix)) == {f"{prefix}/1920/here.jp2"}
        # An object under the folder not entered (an earlier run that crossed) is not extra.
        s3client.put_object(Bucket=bucket, Key=f"{prefix}/1921/deeper/more.jp2", Body=b"x")
        v = run_cli(_verify(src, bucket, prefix, s3server, *args), s3env)
        assert v.returncode == 0 and _verified(v.stdout)["ok"] == 1, v.stdout + v.stderr
        # Without the flag the walk follows the link onto the other file system.
        crossing = _plan(run_cli(_up(src, bucket, prefix, s3server, "--dry-run", "--follow-symlinks"), s3env).stdout)
        assert crossing["files"] == 3 and crossing["filtered"] == {}
