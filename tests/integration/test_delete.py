"""--delete, the mirror pass of a cutover, through the CLI against the real server: after files are deleted
from the source the pass leaves the bucket equal to the source; it refuses a deletion larger than
--max-delete, deletes nothing after a failed walk, and never touches keys outside the run's key space."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import json_events, list_keys, run_cli, summary_of


def _tree(root: Path, n: int = 10) -> None:
    for i in range(n):
        year = 1950 + i % 2
        (root / str(year)).mkdir(parents=True, exist_ok=True)
        (root / str(year) / f"page-{i:02d}.txt").write_text(f"page {i}\n")


def _expected(root: Path, prefix: str) -> set[str]:
    return {f"{prefix}/{p.relative_to(root).as_posix()}" for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def uploaded(s3server, s3env, s3client, bucket, prefix, tmp_path):
    src = tmp_path / "src"
    _tree(src)
    common = [f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json"]
    first = run_cli(["upload", str(src), *common], s3env)
    assert first.returncode == 0, first.stderr
    assert set(list_keys(s3client, bucket, prefix)) == _expected(src, prefix)
    return src, common


def test_the_mirror_pass_leaves_the_bucket_equal_to_the_source(uploaded, s3env, s3client, bucket, prefix,
                                                               tmp_path):
    src, common = uploaded
    gone = [src / "1950" / "page-00.txt", src / "1951" / "page-03.txt"]
    for path in gone:
        path.unlink()
    (src / "1951" / "new.txt").write_text("added after the first pass\n")
    log = tmp_path / "run.log"

    dry = run_cli(["upload", str(src), *common, "--delete", "--max-delete", "50%", "--dry-run"], s3env)
    assert dry.returncode == 0, dry.stderr
    would = [e for e in json_events(dry.stdout) if e.get("event") == "would_delete"]
    assert len(would) == 1 and sorted(would[0]["keys"]) == sorted(f"{prefix}/{p.relative_to(src).as_posix()}"
                                                                 for p in gone)
    assert len(list_keys(s3client, bucket, prefix)) == 10  # a dry run deletes nothing

    r = run_cli(["upload", str(src), *common, "--delete", "--max-delete", "50%", "--log-file", str(log)], s3env)
    assert r.returncode == 0, r.stderr
    assert set(list_keys(s3client, bucket, prefix)) == _expected(src, prefix)
    summary = summary_of(r.stdout)
    assert summary["delete"]["deleted"] == 2 and summary["delete"]["refused"] is None, summary["delete"]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(e["key"] for e in logged if e["event"] == "deleted") == sorted(would[0]["keys"])

    again = run_cli(["upload", str(src), *common, "--delete"], s3env)
    assert again.returncode == 0, again.stderr
    assert summary_of(again.stdout)["delete"]["deleted"] == 0


def test_max_delete_refuses_a_larger_deletion_and_deletes_nothing(uploaded, s3env, s3client, bucket, prefix):
    src, common = uploaded
    for path in sorted(src.rglob("*.txt"))[:3]:  # 3 of 10: more than the default 10%
        path.unlink()
    r = run_cli(["upload", str(src), *common, "--delete"], s3env)
    assert r.returncode == 1
    assert "--max-delete" in summary_of(r.stdout)["delete"]["refused"]
    assert len(list_keys(s3client, bucket, prefix)) == 10
    ok = run_cli(["upload", str(src), *common, "--delete", "--max-delete", "3"], s3env)
    assert ok.returncode == 0, ok.stderr
    assert set(list_keys(s3client, bucket, prefix)) == _expected(src, prefix)


def test_keys_outside_the_run_are_never_deleted(uploaded, s3env, s3client, bucket, prefix):
    """Objects --exclude leaves out, and objects beside the prefix, are not the run's to delete."""
    src, common = uploaded
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1950/notes.md", Body=b"kept: excluded by the run")
    s3client.put_object(Bucket=bucket, Key=f"{prefix}-other/x.txt", Body=b"kept: another prefix")
    r = run_cli(["upload", str(src), *common, "--delete", "--max-delete", "100%", "--exclude", "*.md"], s3env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["delete"]["deleted"] == 0
    assert f"{prefix}/1950/notes.md" in list_keys(s3client, bucket, prefix)
    assert list_keys(s3client, bucket, f"{prefix}-other")


def test_a_walk_that_cannot_see_a_folder_deletes_nothing(uploaded, s3env, s3client, bucket, prefix, tmp_path):
    """A folder the walk cannot read would look like deleted files. Root reads any folder whatever its mode,
    so the walk is blinded another way that holds as root too: the folder is replaced by a link to itself
    through its parent, which the walk reports as a loop it cannot follow (with --follow-symlinks)."""
    src, common = uploaded
    before = set(list_keys(s3client, bucket, prefix))
    year = src / "1951"
    for path in year.iterdir():
        path.unlink()
    year.rmdir()
    os.symlink("..", year)  # 1951 -> src: a loop, the walk cannot see what 1951 held
    r = run_cli(["upload", str(src), *common, "--delete", "--max-delete", "100%", "--follow-symlinks"], s3env)
    assert r.returncode == 1
    refused = summary_of(r.stdout)["delete"]["refused"]
    assert refused and "1951" in refused, refused
    assert before <= set(list_keys(s3client, bucket, prefix))  # what 1951 held is still there


def test_delete_with_files_from_is_a_usage_error(uploaded, s3env, tmp_path):
    src, common = uploaded
    listing = tmp_path / "list.txt"
    listing.write_text("1950/page-00.txt\n")
    r = run_cli(["upload", str(src), *common, "--delete", "--files-from", str(listing)], s3env)
    assert r.returncode == 2 and "--files-from" in r.stderr
