"""--executor dask (a LocalCluster of worker processes, as the issue judges it) and --shard K/N, against the
real S3 server; a worker killed mid-run; four shards through a counting relay."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from helpers import MIB, assert_landed, local_files, run_cli, summary_of

pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_archive import make_archive  # noqa: E402


def up(src, bucket, prefix, server, *extra):
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", server.endpoint_url, "--json", *extra]


def journal_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM stored").fetchone()[0]


def test_local_cluster_of_three_lands_the_archive_whole(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "archive"
    make_archive(src, pages=120, large=2, large_size=10 * MIB, seed=7)  # two multipart files among them
    files = local_files(src)
    journal = tmp_path / "j.sqlite"
    done = run_cli(up(src, bucket, prefix, s3server, "--executor", "dask", "--processes", "3",
                      "--journal", str(journal)), s3env)
    assert done.returncode == 0, done.stderr[-3000:]
    s = summary_of(done.stdout)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (len(files), 0, 0)
    assert_landed(s3client, bucket, prefix, files)
    assert journal_rows(journal) == len(files)
    again = run_cli(up(src, bucket, prefix, s3server, "--executor", "dask", "--processes", "3",
                       "--journal", str(journal)), s3env)
    s = summary_of(again.stdout)
    assert again.returncode == 0 and (s["uploaded"], s["skipped"], s["bytes_sent"]) == (0, len(files), 0)
