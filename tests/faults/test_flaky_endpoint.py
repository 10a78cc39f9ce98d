"""Through the fault proxy: throttling, server errors, dropped connections and stalls past the read
timeout, all at once. The archive must land whole anyway, and the proxy must really have injected each."""

from __future__ import annotations

import time

from helpers import assert_landed, run_cli, summary_of

from .archive import small_archive, upload_args
from .proxy import INTERNAL, RESET, SLOWDOWN, STALL, STALL_LATE, FaultPlan


def test_archive_lands_whole_through_throttling_errors_resets_and_stalls(tmp_path, proxy, s3client, s3env, bucket,
                                                                         prefix):
    files = small_archive(tmp_path / "src")
    # Stalls: one in 60 writes, each 5 s against the client's 3 s read timeout; every second one after
    # the server stored the write.
    proxy.plan = FaultPlan(slowdown=0.08, internal=0.02, reset=0.03, stall_every=60, stall_seconds=5)
    started = time.monotonic()
    r = run_cli(upload_args(tmp_path / "src", bucket, prefix, proxy.endpoint_url), s3env, timeout=150)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "Traceback" not in r.stderr
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (len(files), 0, 0)
    assert s["throttles"] >= 1, "no worker reported the SlowDowns to the shared pace"
    counts = proxy.snapshot()
    for kind in (SLOWDOWN, INTERNAL, RESET, STALL, STALL_LATE):
        assert counts[kind] >= 1, f"the proxy never injected {kind}: {counts}"
    assert counts["forwarded"] >= len(files)
    # Every SlowDown the workers met reached the shared pace (the preflight's own client may have met one).
    assert counts[SLOWDOWN] - 1 <= s["throttles"] <= counts[SLOWDOWN], (s["throttles"], counts)
    assert_landed(s3client, bucket, prefix, files)
    print(f"flaky endpoint: {took:.1f}s, proxy {dict(counts)}")
