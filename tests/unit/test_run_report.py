"""The run report's pieces without a run: the recorder's bounds, the document, the page and its charts."""

from __future__ import annotations

import json

import pytest

from mpupload.core.messages import FAILED, SKIPPED, UPLOADED, UploadResult
from mpupload.observe.recorder import OTHER, RunRecorder
from mpupload.observe.stats import Stats
from mpupload.settings.config import Settings
from mpupload.ui.charts import bar_chart, line_chart, nice_ticks
from mpupload.ui.reportpage import render
from mpupload.ui.runreport import list_reports, reports_root, rerender, run_folder, write


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _settings(**kw) -> Settings:
    return Settings(source="/src", bucket="b", prefix="p", journal="/state/j.sqlite", run_id="abcdef0123", **kw)


def _run(results: list[UploadResult], *, ticks: int, max_samples: int = 720) -> tuple[RunRecorder, Stats]:
    clock = Clock()
    stats = Stats(clock=clock)
    rec = RunRecorder(settings=_settings(), max_samples=max_samples)
    per_tick = max(1, len(results) // max(ticks, 1))
    for i in range(ticks):
        clock.t += 1.0
        for r in results[i * per_tick:(i + 1) * per_tick]:
            stats.add(r)
            rec.result(r)
        stats.sent(1_000_000)
        rec.sample(stats.snapshot({"cpu_percent": 50.0 + i % 7, "rss": 10 << 20,
                                   "processes": {"coordinator": {"cpu_percent": 5.0}, "worker-1": {"cpu_percent": 45.0}}}))
    rec.finish(stats.snapshot(), interrupted=False)
    return rec, stats


def _results(n: int) -> list[UploadResult]:
    status = (UPLOADED, UPLOADED, SKIPPED, FAILED)
    return [UploadResult(rel=f"{1900 + i % 5}/f{i}", key=f"p/{1900 + i % 5}/f{i}", status=status[i % 4],
                         reason="AccessDenied: no" if status[i % 4] == FAILED else "", size=100 + i,
                         partition=str(1900 + i % 5)) for i in range(n)]


@pytest.mark.parametrize("ticks", [1, 50, 10_000])
def test_samples_stay_bounded_and_keep_the_end(ticks):
    rec, _ = _run(_results(40), ticks=ticks, max_samples=100)
    assert len(rec.samples) <= 101
    assert rec.samples[-1]["t"] == ticks  # the final snapshot is always there
    times = [s["t"] for s in rec.samples]
    assert times == sorted(times)


def test_partition_totals_add_up_to_the_summary():
    results = _results(200)
    rec, stats = _run(results, ticks=20)
    doc = rec.document(exit_code=1)
    parts = doc["partitions"]
    assert set(parts) == {"1900", "1901", "1902", "1903", "1904"}
    assert sum(p["files"] for p in parts.values()) == len(results)
    assert sum(p.get("uploaded", 0) for p in parts.values()) == doc["summary"]["uploaded"] == stats.counts[UPLOADED]
    assert sum(p.get("failed", 0) for p in parts.values()) == doc["summary"]["failed"]
    assert sum(p["bytes"] for p in parts.values()) == sum(r.size for r in results)
    assert doc["summary"]["failures_by_reason"] == {"AccessDenied": 50}
    assert doc["run"]["exit_code"] == 1 and doc["settings"]["bucket"] == "b"
    json.dumps(doc)  # plain JSON values only


def test_partitions_past_the_cap_are_counted_together():
    rec = RunRecorder(settings=_settings(), max_partitions=3)
    for i in range(10):
        rec.result(UploadResult(rel=str(i), key=str(i), status=UPLOADED, size=1, partition=str(2000 + i)))
    assert len(rec.partitions) == 4 and rec.partitions[OTHER]["files"] == 7


def test_page_is_self_contained_and_escapes_names(tmp_path):
    hostile = '<script>alert(1)</script>'
    results = [UploadResult(rel=hostile, key="k", status=FAILED, reason=f"{hostile}: boom", partition=hostile)]
    rec, _ = _run(results + _results(20), ticks=5)
    page = render(rec.document(exit_code=1))
    assert "<script" not in page  # escaped: a file name never runs in the reader's browser
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    assert "https://" not in page
    assert page.count('<svg class="chart"') == 5
    assert page.count("<polyline") >= 2 and page.count('class="bar"') >= 5


def test_write_list_and_rerender(tmp_path):
    rec, _ = _run(_results(20), ticks=4)
    doc = rec.document(exit_code=0)
    folder = run_folder(journal=str(tmp_path / "j.sqlite"), started_at="2024-01-02T03:04:05Z", run_id="abcdef0123",
                        chosen=None)
    assert folder == reports_root(tmp_path / "j.sqlite") / "20240102T030405Z-abcdef01"
    j, h = write(doc, folder)
    h.unlink()
    assert rerender(folder) == h and h.read_text().startswith("<!DOCTYPE html>")
    (tmp_path / "j.sqlite-reports" / "broken").mkdir()
    (tmp_path / "j.sqlite-reports" / "broken" / "report.json").write_text("{not json")
    listed = list_reports([tmp_path])
    assert [x.path for x in listed] == [folder] and listed[0].failed == 5


def test_rerender_refuses_a_file_that_is_not_a_report(tmp_path):
    p = tmp_path / "report.json"
    p.write_text('{"a": 1}')
    with pytest.raises(ValueError):
        rerender(p)


@pytest.mark.parametrize("top,expect", [(0, [0.0, 1.0]), (9, [0, 2, 4, 6, 8, 10]), (0.3, [0, 0.1, 0.2, 0.3])])
def test_nice_ticks(top, expect):
    assert nice_ticks(top) == pytest.approx(expect)


def test_charts_say_why_they_are_empty():
    assert "not enough samples" in line_chart(title="t", unit="u", series=[("a", [(1.0, 2.0)])])
    assert "nothing to show" in bar_chart(title="t", unit="u", bars=[])
