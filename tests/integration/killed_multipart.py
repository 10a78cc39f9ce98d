"""A run killed (kill -9 of its whole process group) in the middle of a multipart upload, for the tests of
what later runs do with the upload it left behind. The run goes over the slow link and under
--max-bandwidth, so the kill lands mid-file however fast or busy the machine is: the limit, a product
promise, bounds how soon the file could finish."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from helpers import MIB, list_keys, start_cli, wait_for

PART = 5 * MIB
SIZE = 64 * MIB + 123  # 13 parts: at 16 MiB/s at least 4 s, the kill comes after the second part
MULTIPART = ["--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB"]


def big_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(SIZE // MIB):
            f.write(os.urandom(MIB))
        f.write(os.urandom(SIZE % MIB))
    return path


def open_uploads(client, bucket: str, prefix: str) -> list[dict]:
    """Every multipart upload open under prefix/ ({"Key", "UploadId", ...})."""
    out = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix + "/"):
        out.extend(page.get("Uploads", []))
    return out


def _parts_stored(client, bucket: str, key: str, prefix: str) -> int:
    for u in open_uploads(client, bucket, prefix):
        if u["Key"] != key:  # the preflight's write probe is a multipart upload too
            continue
        try:
            return len(client.list_parts(Bucket=bucket, Key=key, UploadId=u["UploadId"]).get("Parts", []))
        except client.exceptions.NoSuchUpload:
            return 0
    return 0


def kill_mid_multipart(args: list[str], env: dict, client, *, bucket: str, prefix: str, key: str) -> str:
    """Run `mpupload ARGS` (slow: see above) until S3 holds 2 parts of `key`, then kill -9 the whole run.
    Returns the id of the upload it left open (the one it journaled before creating it)."""
    proc = start_cli([*args, "--processes", "1", "--threads", "1", "--max-bandwidth", "16MB/s", *MULTIPART], env)
    try:
        wait_for(lambda: _parts_stored(client, bucket, key, prefix) >= 2, timeout=120, what="2 parts of the file",
                 interval=0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert key not in list_keys(client, bucket, prefix), "the file was completed before the kill"
    ids = [u["UploadId"] for u in open_uploads(client, bucket, prefix) if u["Key"] == key]
    assert len(ids) == 1, ids
    return ids[0]
