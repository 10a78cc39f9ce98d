"""The real CLI, with real worker processes, against the real SeaweedFS server; checked independently."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
from helpers import MIB, assert_landed, json_events, list_keys, local_files, run_cli, summary_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_archive import make_archive  # noqa: E402


def odd_tree(root: Path, *, seed: int = 7) -> None:
    """Uneven years, nested folders, odd names, an empty file and a multipart-sized file."""
    rng = random.Random(seed)
    for year, n in ((1920, 2), (1943, 25), (1944, 9), (1969, 1)):
        for i in range(n):
            p = root / str(year) / f"issue-{i % 3}" / f"page {i:03d}.jp2"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(rng.randbytes(rng.randrange(1, 300_000)))
    (root / "1931" / "deep" / "er" / "still").mkdir(parents=True)
    (root / "1931" / "deep" / "er" / "still" / "empty.txt").write_bytes(b"")
    (root / "1950" / "Ünïcödé — naïve café").mkdir(parents=True)
    (root / "1950" / "Ünïcödé — naïve café" / "日本語 ページ.tif").write_bytes(rng.randbytes(4096))
    (root / "loose file with spaces & symbols (1).txt").write_bytes(b"no year folder: partition by mtime")
    (root / "1944" / "big-supplement.tif").write_bytes(rng.randbytes(13 * MIB + 12345))


def upload_args(src, bucket, prefix, server, *extra):
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", server.endpoint_url,
            "--json", *extra]


def test_odd_tree_lands_whole_with_two_processes(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "archive"
    odd_tree(src)
    files = local_files(src)
    r = run_cli(upload_args(src, bucket, prefix, s3server, "--processes", "2", "--threads", "8",
                            "--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB"), s3env)
    assert r.returncode == 0, r.stderr + r.stdout
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["skipped"], s["failed"]) == (len(files), 0, 0)
    assert s["bytes"] == sum(p.stat().st_size for p in files.values())
    assert_landed(s3client, bucket, prefix, files)


def test_multipart_object_is_really_multipart_and_carries_metadata(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "a"
    (src / "1944").mkdir(parents=True)
    data = os.urandom(11 * MIB)
    (src / "1944" / "big.bin").write_bytes(data)
    r = run_cli(upload_args(src, bucket, prefix, s3server, "--multipart-threshold", "5MiB",
                            "--multipart-chunksize", "5MiB"), s3env)
    assert r.returncode == 0, r.stderr
    head = s3client.head_object(Bucket=bucket, Key=f"{prefix}/1944/big.bin")
    # A multipart ETag ends in -<parts>: 11 MiB in 5 MiB parts is 3 parts.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["source-path"] == "1944/big.bin"
    assert head["Metadata"]["source-mtime"].split(".")[0] == str(int((src / "1944" / "big.bin").stat().st_mtime))
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_newspaper_archive_inline_workers(tmp_path, s3server, s3client, s3env, bucket, prefix):
    """processes=0 runs the same worker code as threads in the coordinator."""
    src = tmp_path / "news"
    n, _ = make_archive(src, pages=80, large=1, large_size=9 * MIB)
    r = run_cli(upload_args(src, bucket, prefix, s3server, "--processes", "0", "--threads", "4"), s3env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["uploaded"] == n
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_prefix_is_optional_and_key_is_the_relative_path(tmp_path, s3server, s3client, s3env):
    s3client.create_bucket(Bucket="t-noprefix")
    src = tmp_path / "s"
    (src / "1925" / "x").mkdir(parents=True)
    (src / "1925" / "x" / "p.jp2").write_bytes(b"abc")
    r = run_cli(["upload", str(src), "s3://t-noprefix", "--endpoint-url", s3server.endpoint_url, "--json"], s3env)
    assert r.returncode == 0, r.stderr
    assert [o["Key"] for o in s3client.list_objects_v2(Bucket="t-noprefix")["Contents"]] == ["1925/x/p.jp2"]


def test_include_exclude_and_dry_run(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "f"
    for rel in ("1930/a.jp2", "1930/a.txt", "1931/tmp/b.jp2", "1931/c.jp2"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    dry = run_cli(upload_args(src, bucket, prefix, s3server, "--include", "*.jp2", "--exclude", "*/tmp/*",
                              "--dry-run"), s3env)
    assert dry.returncode == 0, dry.stderr
    plan = [e for e in json_events(dry.stdout) if e["event"] == "plan"][0]
    assert plan["files"] == 2 and set(plan["partitions"]) == {"1930", "1931"}
    assert list_keys(s3client, bucket, prefix) == {}, "a dry run uploaded something"
    r = run_cli(upload_args(src, bucket, prefix, s3server, "--include", "*.jp2", "--exclude", "*/tmp/*"), s3env)
    assert r.returncode == 0, r.stderr
    assert set(list_keys(s3client, bucket, prefix)) == {f"{prefix}/1930/a.jp2", f"{prefix}/1931/c.jp2"}


def test_human_output_has_summary_and_progress(tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "h"
    (src / "1960").mkdir(parents=True)
    for i in range(30):
        (src / "1960" / f"{i}.jp2").write_bytes(os.urandom(2000))
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url], s3env)
    assert r.returncode == 0, r.stderr
    assert "Uploaded 30 files" in r.stdout
    assert "files/min" in r.stderr  # the plain (non-TTY) progress line


@pytest.mark.parametrize("args, message", [
    (["--threads", "0"], "--threads"),
    (["--multipart-chunksize", "1MiB"], "at least 5.0 MiB"),
    (["--multipart-chunksize", "lots"], "not a size"),
    (["--year-pattern", "(unclosed"], "year-pattern"),
])
def test_usage_errors_exit_2(tmp_path, s3server, s3env, bucket, args, message):
    r = run_cli(["upload", str(tmp_path), f"s3://{bucket}/x", "--endpoint-url", s3server.endpoint_url, *args], s3env)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_source_is_a_usage_error(tmp_path, s3env, s3server, bucket):
    r = run_cli(["upload", str(tmp_path / "nope"), f"s3://{bucket}/x", "--endpoint-url", s3server.endpoint_url], s3env)
    assert r.returncode == 2 and "not a folder" in r.stderr


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME", "SHA256", "none"])
def test_each_transport_checksum_is_accepted_by_the_server(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                                          algorithm):
    src = tmp_path / "c"
    (src / "1961").mkdir(parents=True)
    (src / "1961" / "small.jp2").write_bytes(os.urandom(50_000))
    (src / "1961" / "big.tif").write_bytes(os.urandom(6 * MIB + 3))
    r = run_cli(upload_args(src, bucket, prefix, s3server, "--checksum", algorithm, "--multipart-threshold", "5MiB",
                            "--multipart-chunksize", "5MiB"), s3env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert_landed(s3client, bucket, prefix, local_files(src))
    if algorithm != "none":
        head = s3client.head_object(Bucket=bucket, Key=f"{prefix}/1961/small.jp2", ChecksumMode="ENABLED")
        assert head.get(f"Checksum{algorithm}"), f"the server kept no {algorithm} checksum: {head}"


def test_a_checksum_the_server_disagrees_with_is_rejected(s3server, s3client, bucket, prefix):
    """The transport checksum is real protection: a body that does not match it is refused (400 BadDigest)."""
    import botocore.exceptions

    from mpupload.core.hashing import TransportChecksum

    crc = TransportChecksum("CRC32").of(b"the bytes we meant to send")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        s3client.put_object(Bucket=bucket, Key=f"{prefix}/x", Body=b"the bytes that arrived", ChecksumCRC32=crc)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_one_file_job_lands_and_clears_write_probes_a_killed_run_left(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    """The smallest job (run by threads in the coordinator: autotune): the file lands and is journaled (a
    rerun skips it), and a write probe left by a run killed between its create and its abort is aborted."""
    leftover = s3client.create_multipart_upload(Bucket=bucket, Key=f"{prefix}/.mpupload-write-probe-killed")
    src = tmp_path / "one"
    src.mkdir()
    (src / "page.jp2").write_bytes(os.urandom(100_000))
    r = run_cli(upload_args(src, bucket, prefix, s3server), s3env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["uploaded"] == 1
    assert_landed(s3client, bucket, prefix, local_files(src))
    uploads = s3client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/").get("Uploads", [])
    assert leftover["UploadId"] not in {u["UploadId"] for u in uploads} and not uploads
    again = run_cli(upload_args(src, bucket, prefix, s3server), s3env)
    assert again.returncode == 0, again.stderr
    assert summary_of(again.stdout)["skipped"] == 1
