"""README, "Limits for a shared link": `--partition-pause SECONDS` waits, before the first batch of each new
partition (year), until the work handed out so far came back and then SECONDS more: the link is quiet
between years.

Seen from the wire: a proxy in front of an 80 ms link records when each request arrived and when its answer
went back. The slow link makes a year's last batch take long enough that a pause which did not wait for it
to come back would be caught overlapping it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from faults.proxy import FaultProxy
from helpers import assert_landed, local_files, run_cli, summary_of

PAUSE = 2.0
YEARS = ("1921", "1922", "1923")


@pytest.fixture
def recorder(slow_link):
    proxy = FaultProxy(slow_link.url).start()  # no faults: it only records what passes
    yield proxy
    proxy.stop()


def _tree(root: Path) -> dict[str, Path]:
    for year in YEARS:
        for i in range(12):
            p = root / year / f"page-{i:02d}.jp2"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(3000 + i))
    return local_files(root)


def test_partition_pause_keeps_the_link_quiet_between_years(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                                            recorder):
    src = tmp_path / "src"
    files = _tree(src)
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", recorder.endpoint_url, "--json",
                 "--processes", "1", "--threads", "1", "--batch-files", "4", "--partition-pause", str(PAUSE)],
                s3env)
    assert r.returncode == 0, r.stderr[-3000:]
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"]) == (len(files), 0)
    assert s["partition_pauses"] == len(YEARS) - 1
    assert f"pausing {PAUSE:g} s between partitions (--partition-pause)" in r.stdout + r.stderr
    assert_landed(s3client, bucket, prefix, files)

    trail = recorder.trail()
    year_of = re.compile(rf"^/{re.escape(bucket)}/{re.escape(prefix)}/(\d{{4}})/")
    puts: dict[str, list] = {}
    for x in trail:
        m = year_of.match(x.target)
        if x.method == "PUT" and m:
            puts.setdefault(m.group(1), []).append(x)
    assert sorted(puts) == list(YEARS) and sum(map(len, puts.values())) >= len(files)
    order = sorted(puts, key=lambda y: min(x.began for x in puts[y]))
    for before, after in zip(order, order[1:], strict=False):
        last_answer = max(x.answered for x in puts[before])
        first_sent = min(x.began for x in puts[after])
        # The whole of the year before came back, then PAUSE seconds passed, before the next year's first PUT.
        assert first_sent - last_answer >= PAUSE - 0.02, (before, after, first_sent - last_answer)
        # Quiet means quiet: no request of any kind arrived in between.
        between = [(x.method, x.target) for x in trail if last_answer < x.began < first_sent]
        assert not between, between
