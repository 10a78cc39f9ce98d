"""The endpoint goes away mid-run. Within --outage-timeout the run holds every worker, probes, and
finishes whole once the endpoint is back; past it, the run stops with exit 1 and says how to resume."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import assert_landed, summary_of

from .archive import small_archive, upload_args
from .proxy import OUTAGE


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mpupload", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def _outage_once_uploading(proxy, run: subprocess.Popen, *, landed: int) -> None:
    """Bounded polling: once `landed` requests went through, cut the endpoint off."""
    assert proxy.wait_for("forwarded", landed, timeout=60), "the run never got going"
    assert run.poll() is None, "the run ended before the outage could start"
    proxy.set_outage(True)


def _hold_outage(run: subprocess.Popen, *, seconds: float) -> None:
    """Keep the endpoint down for `seconds` (the scenario's length), failing at once if the run ends."""
    try:
        run.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return  # still running, still waiting for the endpoint: as it should
    raise AssertionError(f"the run gave up during the outage (exit {run.returncode})")


@pytest.mark.parametrize("outage_seconds, processes", [(25, "2"), (8, "0")], ids=["25s-2-processes", "8s-inline"])
def test_run_waits_out_an_outage_and_finishes_whole(tmp_path, proxy, s3client, s3env, bucket, prefix, outage_seconds,
                                                    processes):
    files = small_archive(tmp_path / "src", files=300)
    run = _start(upload_args(tmp_path / "src", bucket, prefix, proxy.endpoint_url, "--outage-timeout", "120",
                             "--processes", processes), s3env)
    try:
        _outage_once_uploading(proxy, run, landed=40)
        before = proxy.snapshot()[OUTAGE]
        _hold_outage(run, seconds=outage_seconds)
        refused = proxy.snapshot()[OUTAGE] - before
        proxy.set_outage(False)
        out, err = run.communicate(timeout=150)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=10)
    assert run.returncode == 0, err[-3000:] + out[-3000:]
    assert "Traceback" not in err
    s = summary_of(out)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (len(files), 0, 0)
    assert s["seconds"] >= outage_seconds
    assert s["outages"] >= 1, "the workers never marked the outage"
    # The workers held back and one prober knocked about once a second, rather than every thread
    # burning its retries against a dead endpoint.
    assert 3 <= refused <= outage_seconds * 8, refused
    assert_landed(s3client, bucket, prefix, files)


def test_outage_longer_than_the_timeout_stops_with_exit_1_and_says_how_to_resume(tmp_path, proxy, s3env, bucket,
                                                                                  prefix):
    small_archive(tmp_path / "src", files=300)
    run = _start(upload_args(tmp_path / "src", bucket, prefix, proxy.endpoint_url, "--outage-timeout", "5"), s3env)
    try:
        _outage_once_uploading(proxy, run, landed=40)
        started = time.monotonic()
        out, err = run.communicate(timeout=90)
        took = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=10)
    assert run.returncode == 1, err[-3000:] + out[-3000:]
    assert "Traceback" not in err
    assert took < 60, f"took {took:.0f}s to give up after a 5 s outage timeout"
    assert "run the same command again" in err
    s = summary_of(out)
    assert "--outage-timeout" in (s["fatal"] or "")
    assert s["uploaded"] >= 1 and s["uploaded"] < s["found"]
