"""bench/: medians and ratios of a session, and a tool that is not installed being skipped."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.results import derive, markdown, summarize  # noqa: E402
from bench.tools import Tool  # noqa: E402


def run(tool, wall, *, ok=True, cpu=2.0, ds="small", rnd=0):
    return derive({"dataset": ds, "tool": tool, "run": rnd, "ok": ok, "files": 1000, "bytes": 10**9, "wall_s": wall, "cpu_s": cpu,
                   "server_cpu_s": 1.0, "peak_rss": 100 * 10**6})


def test_medians_ratios_and_failed_runs_left_out():
    runs = [run("mpupload", 4.0), run("mpupload", 5.0, rnd=1), run("mpupload", 100.0, ok=False, rnd=2),
            run("s5cmd", 4.0, cpu=1.0), run("s5cmd", 10.0, cpu=1.0, rnd=1), run("seed_v2", 10.0, cpu=4.0)]
    rows = {r["tool"]: r for r in summarize(runs)}
    m = rows["mpupload"]
    assert (m["runs"], m["ok_runs"]) == (3, 2)
    assert m["wall_s"] == 4.5 and m["files_per_s"] == (250 + 200) / 2
    assert round(m["x_s5cmd"], 3) == round(225 / 175, 3) and round(m["x_seed_v2"], 3) == round(225 / 100, 3)
    # Paired: round 0 is 250/250, round 1 is 200/100: the median of 1.0 and 2.0.
    assert m["px_s5cmd"] == 1.5 and m["px_seed_v2"] == 2.5
    assert m["cpu_x_s5cmd"] == 2.0 and m["cpu_ms_per_file"] == 2.0 and m["cpu_s_per_gb"] == 2.0
    assert [r["tool"] for r in summarize(runs)] == ["mpupload", "s5cmd", "seed_v2"]
    assert "| mpupload | 2/3 |" in markdown(summarize(runs), meta={"datasets": {"small": {"files": 1000, "bytes": 10**9}}})


def test_a_missing_binary_is_reported_as_none():
    assert Tool("nope", "no-such-uploader-binary-here", lambda t, exe: None).path() is None


def test_round_trips_are_kept_apart_and_paired_with_s5cmd_at_its_defaults():
    def at(tool, wall, rtt, rnd, cpu=2.0):
        return {**run(tool, wall, rnd=rnd, cpu=cpu), "rtt_ms": rtt, "relay_conns": 16}

    runs = [at("mpupload", 4.0, 0.0, 0), at("mpupload", 5.0, 0.0, 1), at("s5cmd-default", 4.0, 0.0, 0, cpu=1.0),
            at("s5cmd-default", 10.0, 0.0, 1, cpu=1.0),
            at("mpupload", 20.0, 100.0, 0), at("mpupload", 20.0, 100.0, 1), at("s5cmd-default", 5.0, 100.0, 0),
            at("s5cmd-default", 10.0, 100.0, 1)]
    rows = {(r["rtt_ms"], r["tool"]): r for r in summarize(runs)}
    assert rows[(0.0, "mpupload")]["px_s5cmd_default"] == 1.5  # rounds: 250/250 and 200/100
    assert rows[(100.0, "mpupload")]["px_s5cmd_default"] == (0.25 + 0.5) / 2  # never paired across round trips
    assert rows[(100.0, "mpupload")]["relay_conns"] == 16
    md = markdown(summarize(runs), meta={"datasets": {"small": {"files": 1000, "bytes": 10**9}}})
    assert "### WAN table" in md
    # One row per tool; per round trip: files/s, paired ratio, CPU ms/file, connections.
    assert "| mpupload | 225 | 1.50 | 2.00 | 16 | 50 | 0.38 | 2.00 | 16 |" in md


def test_a_tuned_aws_cli_gets_its_own_config_file_in_the_scratch_folder(tmp_path):
    from bench.tools import TOOLS, Target, clean_env

    env = clean_env({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, tmp_path)
    inv = TOOLS["aws-tuned"].build(Target(tmp_path / "src", "b", "p", "http://127.0.0.1:1", env), "aws")
    config = Path(inv.env["AWS_CONFIG_FILE"])
    assert config.parent == tmp_path and "max_concurrent_requests = 64" in config.read_text()
    assert TOOLS["aws"].build(Target(tmp_path, "b", "p", "http://127.0.0.1:1", env), "aws").env["AWS_CONFIG_FILE"] == str(
        tmp_path / "no-aws-config")
    assert "--numworkers" not in TOOLS["s5cmd-default"].build(Target(tmp_path, "b", "p", "http://x", env), "s5cmd").argv
