"""The live view's frame at 80 and 200 columns: every line fits, the partition rows are cut to the height
with a "+k more" line, the busiest partitions come first; the per-partition counts behind it."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from mpupload.core.messages import FAILED, UPLOADED, UploadResult
from mpupload.observe.stats import PartitionTally, Stats, busiest_first
from mpupload.ui.liveview import Frame


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _snapshot():
    clock = Clock()
    st = Stats(clock=clock)
    st.found(3000, 3000 * 50_000, tuple((str(y), 100, 100 * 50_000) for y in range(1900, 1930)))
    st.scan_done = True
    for i in range(1500):
        clock.t += 0.01
        y = str(1900 + i // 100 + (i % 3 == 0) * 20)  # 1900..1914 mostly, a trickle into 1920..1934
        y = y if int(y) < 1930 else "1929"
        st.add(UploadResult(rel=f"{y}/" + "very-long-folder-name/" * 6 + f"f{i}.jp2", key="k",
                            status=FAILED if i % 500 == 7 else UPLOADED, size=50_000, partition=y,
                            reason="SlowDown: " + "please reduce your request rate " * 4 if i % 500 == 7 else ""))
    st.sent(1500 * 50_000)
    res = {"processes": {"coordinator": {"cpu_percent": 12.0, "rss": 81 << 20},
                         **{f"worker-{w}": {"cpu_percent": 95.0, "rss": 110 << 20} for w in range(1, 9)}},
           "net_sent_per_s": 12.6e6, "inflight_limit": 16, "inflight_now": 97, "throttles": 3, "outages": 1}
    return st.snapshot(res)


def _render(snap, width, height):
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None, legacy_windows=False)
    console.print(Frame(snap, now_rate=12.4e6, title="s3://archive/atlanta-constitution-" + "x" * 150, spinner="*"))
    return console.file.getvalue().rstrip("\n").split("\n")


@pytest.mark.parametrize(("width", "height"), [(80, 24), (200, 50), (80, 60)])
def test_every_line_fits_and_the_partitions_fit_the_height(width, height):
    snap = _snapshot()
    lines = _render(snap, width, height)
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    assert len(lines) < height
    rows = [line for line in lines if re.match(r"^\d{4} [━─]+", line)]
    more = [line for line in lines if line.startswith("+")]
    assert rows and len(rows) + bool(more) <= height
    if len(rows) < 30:
        hidden = int(re.match(r"^\+(\d+) more partitions", more[0]).group(1))
        assert len(rows) + hidden == 30
    else:
        assert not more
    assert any(re.search(r"^up 1497\s+skipped 0\s+failed 3\s+retries 0\s+left 1500 files", line) for line in lines)
    assert any("1500/3000 files" in line for line in lines)
    assert sum(line.startswith("failed ") for line in lines) == 3
    assert any("in flight 97 (<=16/process)" in line for line in lines)


def test_busiest_partitions_first_then_waiting_then_complete():
    tally = PartitionTally()
    for name in ("1900", "1901", "1902", "1903"):
        tally.found(name, 10, 100)
    tally.finished("1900", files=10, nbytes=100, failed=False, now=1.0)  # complete
    tally.finished("1901", files=3, nbytes=30, failed=True, now=5.0)  # under way, most recent
    tally.finished("1902", files=4, nbytes=40, failed=False, now=2.0)  # under way
    rows = tally.rows(scan_done=True, census_done=False)
    assert [r.name for r in busiest_first(rows)] == ["1901", "1902", "1903", "1900"]
    assert {r.name: (r.done, r.files, r.failed, r.complete) for r in rows}["1901"] == (3, 10, 3, False)


def test_partition_totals_come_from_the_census_until_the_walk_is_done():
    tally = PartitionTally()
    tally.found("1900", 5, 50)
    tally.census({"1900": (20, 200), "1901": (7, 70)})
    rows = {r.name: r for r in tally.rows(scan_done=False, census_done=True)}
    assert (rows["1900"].files, rows["1901"].files, rows["1900"].known) == (20, 7, True)
    rows = {r.name: r for r in tally.rows(scan_done=False, census_done=False)}
    assert rows["1900"].files == 20 and not rows["1900"].known
    tally.found("1900", 15, 150)
    rows = {r.name: r for r in tally.rows(scan_done=True, census_done=True)}
    assert rows["1900"].files == 20 and rows["1901"].files == 0  # the walk is the truth once done
