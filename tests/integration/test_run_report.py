"""Every run leaves report.json and report.html; the page opens in a real headless browser without a
complaint and its charts are drawn; `mpupload report` finds and re-draws them."""

from __future__ import annotations

import json
import random
from pathlib import Path

from browser import console_problems, count_colour, load
from helpers import json_events, list_keys, run_cli, summary_of

BLUE = (31, 119, 180)  # charts.COLORS[0]: throughput line, bars


def _tree(root: Path) -> int:
    rng = random.Random(3)
    n = 0
    for year, count in ((1931, 4), (1944, 12), (1960, 6)):
        for i in range(count):
            p = root / str(year) / f"p{i}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(rng.randbytes(rng.randrange(1000, 200_000)))
            n += 1
    return n


def test_report_agrees_with_the_run_and_the_bucket(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    n = _tree(src)
    out = tmp_path / "rep"
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json",
                 "--report", str(out), "--progress-interval", "0.2"], s3env)
    assert r.returncode == 0, r.stderr
    summary = summary_of(r.stdout)
    [event] = [e for e in json_events(r.stdout) if e.get("event") == "report"]
    assert event["json"] == str(out / "report.json")
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["uploaded"] == summary["uploaded"] == n == len(list_keys(s3client, bucket, prefix))
    assert {p: c["files"] for p, c in doc["partitions"].items()} == {"1931": 4, "1944": 12, "1960": 6}
    assert doc["run"]["exit_code"] == 0 and doc["samples"][-1]["uploaded"] == n
    assert doc["settings"]["prefix"] == prefix

    # Without --report: beside the journal, and `mpupload report --journal` lists it.
    journal = tmp_path / "j.sqlite"
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--journal", str(journal)], s3env)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("Report: ")]
    assert line and Path(line[0][8:]).parent.parent == tmp_path / "j.sqlite-reports"
    listed = run_cli(["report", "--journal", str(journal), "--json"], s3env)
    [row] = [json.loads(x) for x in listed.stdout.splitlines()]
    assert row["outcome"] == "ok" and row["uploaded"] == 0  # the rerun skipped everything
    html = Path(line[0][8:])
    html.unlink()
    again = run_cli(["report", str(html.parent)], s3env)
    assert again.returncode == 0 and html.exists()


def test_report_page_loads_in_chromium_with_its_charts(tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "src"
    _tree(src)
    out = tmp_path / "rep"
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--report", str(out), "--progress-interval", "0.2"], s3env)
    assert r.returncode == 0, r.stderr
    page = load(out / "report.html", tmp_path / "chromium", size="800,1500")
    assert console_problems(page.log) == []
    assert page.dom.count('class="chart"') == 5, page.dom[:2000]
    assert page.dom.count("<polyline") >= 2  # throughput and CPU lines
    assert page.dom.count('class="bar"') >= 6  # files and bytes for three years
    # Drawn, not just present: the first screen holds the throughput line and the per-year bars.
    assert count_colour(page.png, BLUE) > 2000
