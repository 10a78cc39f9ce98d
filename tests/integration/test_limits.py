"""--max-bandwidth and --max-requests-per-second hold for all processes together, measured where the
server would see them: through a relay with 40 ms of round trip that counts what it forwards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import list_keys, run_cli, summary_of

from bench.meter import Meter
from bench.relay import DelayRelay


def _files(root: Path, *, count: int, size: int) -> None:
    for i in range(count):
        p = root / str(2000 + i % 3) / f"f{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))


def _run_through_meter(s3server, s3env, src, bucket, prefix, *flags) -> tuple[Meter, dict]:
    host, port = s3server.endpoint_url.split("://", 1)[1].split(":")
    meter = Meter()
    with DelayRelay(upstream=(host, int(port)), rtt=0.040, meter=meter) as relay:
        r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", relay.url, "--json",
                     "--processes", "2", *flags], s3env, timeout=300)
    assert r.returncode == 0, r.stderr
    return meter, summary_of(r.stdout)


# Limits far below what any machine here manages through a 40 ms link (2 processes, tens of requests in
# flight each): the run is held back by the limit however busy the machine, so the limit's waits are sure.
@pytest.mark.parametrize("what,flag,limit,count,size", [
    ("bytes", "--max-bandwidth", 3e6, 36, 1_000_000),  # 36 MB: 12 s at 3 MB/s
    ("requests", "--max-requests-per-second", 20, 240, 3000),  # 12 s at 20 requests/s
])
def test_limit_holds_over_any_ten_seconds(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                         what, flag, limit, count, size):
    src = tmp_path / "src"
    _files(src, count=count, size=size)
    value = str(int(limit))  # bytes per second as a plain number (units are 1024-based)
    meter, summary = _run_through_meter(s3server, s3env, src, bucket, prefix, flag, value)
    assert summary["uploaded"] == count == len(list_keys(s3client, bucket, prefix))
    # Never above the limit, whatever the machine: the limiter's own slack (limits.py: the 0.25 s burst,
    # 2.5% of 10 s, and the one request crossing the window's end, a 1 MB file 3.3% of 30 MB) plus the
    # meter's 0.1 s slots.
    busiest = meter.busiest(what, window=10.0)
    assert busiest <= limit * 1.10, (busiest, limit)
    # The limit was in force: requests waited for it, and the traffic took at least the time the limit
    # allows for it (less the burst and one request), where unlimited it takes a second or two here. A
    # slower machine only makes the run longer; no machine makes it shorter.
    total = sum(meter.requests.values()) if what == "requests" else sum(meter.bytes.values())
    _rate, span = meter.average(what)
    assert summary["limit_waits"] > 0 and summary["limit_wait_seconds"] > 0, summary
    least = (total - (size if what == "bytes" else 1)) / limit - 0.25 - 0.2  # less burst and two 0.1 s slots
    assert span >= least, f"{total} {what} in {span:.1f} s: faster than {limit:g}/s allows ({least:.1f} s)"
