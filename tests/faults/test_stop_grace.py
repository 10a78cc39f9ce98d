"""README, "Stopping": after one Ctrl-C / SIGTERM, requests in flight get `--stop-grace` seconds to finish;
past it the workers are stopped, the run ends with 128 + the signal and a summary naming it, the journal
keeps every confirmed upload, and the next run resumes what was cut.

Here every PUT hangs (the fault proxy answers none of them) when the one signal comes, so the grace runs
out for certain: the run must wait it out, and no longer than the grace plus a margin that keeps the
whole stop under the 10 s docker and Kubernetes allow before SIGKILL (the README's reason for the default).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from helpers import alive, assert_landed, list_keys, local_files, run_cli, start_cli, summary_of, wait_for, year_tree

from .proxy import STALL, STALL_LATE, FaultPlan

GRACE = 3.0
MARGIN = 7.0  # grace + margin = 10 s: docker's and Kubernetes' wait before SIGKILL




def _file_objects(client, bucket: str, prefix: str) -> dict[str, int]:
    """The objects of the source's files (not the preflight's checksum probe, which lives under the prefix
    too until its delete, beside the first uploads, is through)."""
    return {k: size for k, size in list_keys(client, bucket, prefix).items() if "/.mpupload-" not in k}


def _logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_one_signal_with_requests_hanging_ends_within_the_grace_and_loses_nothing(
        tmp_path, s3server, s3client, s3env, bucket, prefix, proxy, sig, code):
    src = tmp_path / "news"
    n = len(year_tree(src, 400, size=2000))
    log = tmp_path / "run.jsonl"
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url, "--json",
            "--processes", "1", "--threads", "2", "--read-timeout", "300", "--log-file", str(log)]
    proc = start_cli([*args, "--stop-grace", str(GRACE)], s3env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # stdout as printed
    reader.start()
    kids: list[psutil.Process] = []
    try:
        wait_for(lambda: _file_objects(s3client, bucket, prefix), timeout=60, what="a file to land")
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert kids, "no worker process: --processes 1 should have started one"
        # Every PUT from now on hangs for a minute (every second one after the server stored it, so the run
        # never hears of an object that did land); a 300 s read timeout keeps the client waiting on them.
        proxy.plan = FaultPlan(stall=1.0, stall_seconds=60)
        wait_for(lambda: proxy.snapshot()[STALL] + proxy.snapshot()[STALL_LATE] >= 2, timeout=60,
                 what="two hanging PUTs")
        assert proc.poll() is None, "the run ended before the signal"
        os.kill(proc.pid, sig)  # once; the coordinator alone, as `kill PID` or systemd sends it
        sent = time.monotonic()
        try:
            proc.wait(timeout=GRACE + MARGIN + 20)  # beyond the bound, so an overrun is measured, not cut
        except subprocess.TimeoutExpired:
            raise AssertionError(f"one {sig.name} with requests hanging did not end the run "
                                 f"{GRACE + MARGIN + 20:.0f} s later (--stop-grace {GRACE:g})") from None
        took = time.monotonic() - sent
        reader.join(timeout=30)
        err = proc.stderr.read()
    finally:
        proxy.plan = FaultPlan()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err
    # The hanging requests got their grace (they could not finish sooner), and not much more.
    assert took >= GRACE - 0.1, f"stopped {took:.1f}s after the signal: the grace was not given"
    assert took <= GRACE + MARGIN, f"stopped {took:.1f}s after the signal with --stop-grace {GRACE:g}"
    wait_for(lambda: not alive(kids), timeout=10, what="the run's worker processes to end")
    s = summary_of("".join(lines))
    assert s["interrupted"] is True and s["signal"] == sig.name

    # Nothing is reported uploaded that is not in the bucket, byte for byte.
    records = _logged(log)
    assert records[-1]["event"] == "end" and records[-1]["exit_code"] == code
    uploaded = {r["relpath"] for r in records if r["event"] == "file" and r["status"] == "uploaded"}
    assert len(uploaded) == s["uploaded"] > 0
    present = _file_objects(s3client, bucket, prefix)
    assert len(present) < n, "everything landed before the signal: the test proves nothing"
    assert not {f"{prefix}/{rel}" for rel in uploaded} - set(present), "reported uploaded, not in the bucket"
    for key in present:  # and every object there is whole
        body = s3client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (src / key.removeprefix(prefix + "/")).read_bytes(), f"bytes differ for {key}"

    # The journal kept what was confirmed; the rest (the cut requests included) is resumed, nothing twice.
    again = run_cli(args, s3env)
    assert again.returncode == 0, again.stderr[-3000:]
    s2 = summary_of(again.stdout)
    assert s2["uploaded"] == n - len(present)
    assert s2["uploaded"] + s2["skipped"] == n
    assert_landed(s3client, bucket, prefix, local_files(src))
