"""Conditions that make every upload pointless end the run before any file: fast, exit 3, one clear
message, never the secret, never a traceback."""

from __future__ import annotations

import socket
import time

import pytest
from helpers import list_keys, run_cli, summary_of

_FAST = 60.0  # seconds; the probe uses short timeouts and three attempts


def _dead_port() -> int:
    """A loopback port with nothing listening (bound then released; nobody else takes it this fast)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _source(tmp_path):
    src = tmp_path / "src"
    (src / "1950").mkdir(parents=True)
    for i in range(5):
        (src / "1950" / f"p{i}.jp2").write_bytes(b"x" * 1000)
    return src


def _run(tmp_path, env, bucket, prefix, endpoint, *extra):
    started = time.monotonic()
    r = run_cli(["upload", str(_source(tmp_path)), f"s3://{bucket}/{prefix}", "--endpoint-url", endpoint,
                 "--processes", "2", *extra], env, timeout=120)
    return r, time.monotonic() - started


def _check(r, took: float, secret: str, *must_say: str) -> str:
    assert r.returncode == 3, r.stderr + r.stdout
    assert took < _FAST, f"took {took:.0f}s"
    assert "Traceback" not in r.stderr + r.stdout
    assert secret not in r.stderr + r.stdout
    fatal_lines = [line for line in r.stderr.splitlines() if line.startswith("mpupload: fatal:")]
    assert len(fatal_lines) == 1, r.stderr
    for words in must_say:
        assert words in fatal_lines[0], fatal_lines[0]
    return fatal_lines[0]


@pytest.mark.parametrize("json_output", [False, True])
def test_wrong_secret(tmp_path, s3server, s3env, bucket, prefix, json_output):
    wrong = "WRONG" + s3server.secret_key[5:]
    env = {**s3env, "AWS_SECRET_ACCESS_KEY": wrong}
    r, took = _run(tmp_path, env, bucket, prefix, s3server.endpoint_url, *(["--json"] if json_output else []))
    _check(r, took, wrong, "SignatureDoesNotMatch", "secret key")
    assert s3server.secret_key not in r.stdout + r.stderr
    if json_output:
        assert summary_of(r.stdout)["fatal"]


def test_unknown_access_key(tmp_path, s3server, s3env, bucket, prefix):
    env = {**s3env, "AWS_ACCESS_KEY_ID": "AKIANOBODYKNOWSME"}
    r, took = _run(tmp_path, env, bucket, prefix, s3server.endpoint_url)
    _check(r, took, s3server.secret_key, "access key")


def test_missing_bucket_is_named(tmp_path, s3server, s3env, prefix):
    r, took = _run(tmp_path, s3env, "no-such-bucket-here", prefix, s3server.endpoint_url)
    _check(r, took, s3server.secret_key, "'no-such-bucket-here'", "does not exist")


def test_dead_endpoint(tmp_path, s3server, s3env, bucket, prefix):
    port = _dead_port()
    r, took = _run(tmp_path, s3env, bucket, prefix, f"http://127.0.0.1:{port}")
    _check(r, took, s3server.secret_key, "cannot reach", f"127.0.0.1:{port}")


def test_read_only_key_cannot_write(tmp_path, s3server, s3client, s3env, bucket, prefix):
    assert s3server.readonly_access_key, "the session server was started without a read-only identity"
    env = {**s3env, "AWS_ACCESS_KEY_ID": s3server.readonly_access_key,
           "AWS_SECRET_ACCESS_KEY": s3server.readonly_secret_key}
    r, took = _run(tmp_path, env, bucket, prefix, s3server.endpoint_url)
    _check(r, took, s3server.readonly_secret_key, "no permission to write", bucket)
    assert list_keys(s3client, bucket, prefix) == {}


@pytest.mark.parametrize("case", ["missing bucket", "read-only key"])
def test_a_job_run_in_the_coordinators_process_stops_at_the_probe_too(tmp_path, s3server, s3client, s3env, bucket,
                                                                       prefix, case):
    """Five files: with no --processes they run as threads in the coordinator (autotune), and the probe
    still ends the run before any file."""
    env, target = s3env, bucket
    if case == "missing bucket":
        target = "no-such-bucket-either"
    else:
        env = {**s3env, "AWS_ACCESS_KEY_ID": s3server.readonly_access_key,
               "AWS_SECRET_ACCESS_KEY": s3server.readonly_secret_key}
    started = time.monotonic()
    r = run_cli(["upload", str(_source(tmp_path)), f"s3://{target}/{prefix}", "--endpoint-url",
                 s3server.endpoint_url], env, timeout=120)
    assert "processes 0" in r.stderr, r.stderr  # the small job really ran without worker processes
    _check(r, time.monotonic() - started, s3server.secret_key,
           "does not exist" if case == "missing bucket" else "no permission to write")
    assert list_keys(s3client, bucket, prefix) == {}
