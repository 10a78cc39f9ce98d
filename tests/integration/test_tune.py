"""`mpupload tune` against the real server: it recommends settings, writes them where `upload --config`
reads them, and leaves no scratch object behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from helpers import list_keys, local_files, run_cli, summary_of


def test_tune_writes_a_config_that_upload_reads_and_cleans_up(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    for i in range(40):
        p = src / str(1940 + i % 4) / f"page-{i:03d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(20_000 + i))
    cfg = tmp_path / "tuned.toml"
    r = run_cli(["tune", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--budget", "8", "--write-config", str(cfg)], s3env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "recommended: --processes" in r.stdout
    assert any(b in r.stdout for b in ("CPU-bound", "server-bound", "latency-bound"))
    assert "link: " in r.stderr and " ms per request" in r.stderr  # it measured the round trip
    values = tomllib.loads(cfg.read_text())["upload"]
    assert values["processes"] >= 1 and values["threads"] >= 1 and values["multipart_chunksize"].endswith("MiB")

    # Nothing of the sweep is left: no scratch objects, no unfinished multipart uploads.
    assert list_keys(s3client, bucket, prefix) == {}
    assert not s3client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads")

    # upload --config reads it (the start line shows the file's processes x threads); a flag still wins.
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--config", str(cfg), "--json"], s3env)
    assert r.returncode == 0, r.stderr
    assert f"with {values['processes']} process(es), {values['threads']} threads each" in r.stdout
    assert summary_of(r.stdout)["uploaded"] == len(local_files(src))
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}-2", "--endpoint-url", s3server.endpoint_url,
                 "--config", str(cfg), "--threads", "3", "--json"], s3env)
    assert r.returncode == 0, r.stderr
    assert f"with {values['processes']} process(es), 3 threads each" in r.stdout


def test_upload_rejects_a_config_with_unknown_settings(tmp_path, s3server, s3env, bucket):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[upload]\nthreadz = 4\n")
    r = run_cli(["upload", str(tmp_path), f"s3://{bucket}/x", "--endpoint-url", s3server.endpoint_url,
                 "--config", str(cfg)], s3env)
    assert r.returncode == 2 and "threadz" in r.stderr


def test_sigterm_stops_tune_and_its_scratch_objects_are_deleted(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    for i in range(300):
        p = src / str(1940 + i % 4) / f"page-{i:03d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(30_000 + i))
    proc = subprocess.Popen([sys.executable, "-m", "mpupload", "tune", str(src), f"s3://{bucket}/{prefix}",
                             "--endpoint-url", s3server.endpoint_url, "--budget", "120"], env=s3env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list_keys(s3client, bucket, prefix):  # the sweep has stored scratch objects
            assert time.monotonic() < deadline and proc.poll() is None, "tune never uploaded anything"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "deleted" in err
    assert list_keys(s3client, bucket, prefix) == {}
    assert not s3client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads")
