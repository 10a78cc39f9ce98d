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


@pytest.mark.parametrize("what,flag,limit,count,size", [
    ("bytes", "--max-bandwidth", 6e6, 36, 2_000_000),  # 72 MB: 12 s at 6 MB/s
    ("requests", "--max-requests-per-second", 40, 480, 3000),  # 12 s at 40 requests/s
])
def test_limit_holds_over_any_ten_seconds(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                         what, flag, limit, count, size):
    src = tmp_path / "src"
    _files(src, count=count, size=size)
    value = str(int(limit))  # bytes per second as a plain number (units are 1024-based)
    meter, summary = _run_through_meter(s3server, s3env, src, bucket, prefix, flag, value)
    assert summary["uploaded"] == count == len(list_keys(s3client, bucket, prefix))
    busiest = meter.busiest(what, window=10.0)
    assert busiest <= limit * 1.10, (busiest, limit)
    assert busiest >= limit * 0.90, (busiest, limit)  # the limit, not something else, set the pace
    assert summary["limit_waits"] > 0
