"""One run at a time per journal: a second run on the same source and destination refuses with exit 2 and
names the first run's pid; the first lands everything, its multipart upload untouched by the second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import MIB, assert_landed, local_files, run_cli, summary_of


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_a_second_run_refuses_with_exit_2_and_the_first_lands_everything(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "a"
    (src / "0000").mkdir(parents=True)  # first in the scan: its multipart upload is under way early
    (src / "0000" / "atlas.tif").write_bytes(os.urandom(30 * MIB))
    for i in range(200):
        p = src / str(1920 + i % 5) / f"p{i:03d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(500 + i))
    # Through an 80 ms link one thread needs seconds for the parts: the second run starts mid-upload.
    args = [sys.executable, "-m", "mpupload", "upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url",
            slow_link.url, "--json", "--processes", "1", "--threads", "1", "--multipart-threshold", "5MiB",
            "--multipart-chunksize", "5MiB"]
    first = subprocess.Popen(args, env=s3env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        key = f"{prefix}/0000/atlas.tif"
        uploads = wait_for(lambda: [u["UploadId"] for u in s3client.list_multipart_uploads(
            Bucket=bucket, Prefix=key).get("Uploads", []) if u["Key"] == key], timeout=120, what="the multipart upload")
        second = run_cli(args[3:], s3env)
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "another mpupload run" in second.stderr
        assert "Traceback" not in second.stderr
        still = {u["UploadId"] for u in s3client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])}
        done = key in {o["Key"] for o in s3client.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])}
        assert set(uploads) <= still or done  # not aborted by the second run
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    s = summary_of(out)
    assert (s["uploaded"], s["failed"]) == (201, 0)
    assert_landed(s3client, bucket, prefix, local_files(Path(src)))
    lock = next((Path(s3env["XDG_STATE_HOME"]) / "mpupload" / "journals").glob("*.lock"))
    assert oct(lock.stat().st_mode & 0o777) == "0o600"
