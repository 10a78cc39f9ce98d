"""The live view as a person sees it: a real upload in a tmux pane 80 and 200 columns wide, through an 80 ms
link so it lasts several seconds. The pane is captured while the run goes on and after it ended: every line
fits the width (captured with wrapped lines joined, so a wrapped line shows as a long one), the partition
rows are there, the numbers parse, and the last frame agrees with the run report's summary and with what
is in the bucket. Meanwhile `mpupload status --json`, in another process, reports the same run: the pid
holding the journal is the upload's, done <= total, total = the number of files."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from helpers import list_keys, run_cli, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux): the live view test needs a terminal")

YEARS = [str(y) for y in range(1920, 1926)]
FILES_PER_YEAR = 50  # 300 files through 80 ms with 2 threads: ~10 s, time to look twice
HEIGHT = 40
REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> int:
    n = 0
    for y in YEARS:
        for i in range(FILES_PER_YEAR):
            p = root / y / f"page-{i:03d}.jp2"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(2000 + 97 * i))
            n += 1
    return n


class Tmux:
    """A private tmux server (its own socket) with one detached session of a fixed size."""

    def __init__(self, sock: Path, env: dict, *, width: int, height: int):
        self.sock, self.env, self.width = sock, env, width
        self._run("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), "-c", str(REPO))
        self._run("set-option", "-t", "t", "remain-on-exit", "on")

    def _run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.sock), *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=30).stdout

    def start(self, command: str) -> None:
        self._run("respawn-pane", "-k", "-t", "t", "-c", str(REPO), command)

    def pane_pid(self) -> int:
        return int(self._run("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def capture(self) -> list[str]:
        # -J joins lines the terminal wrapped: a line that did not fit comes back longer than the width.
        return self._run("capture-pane", "-p", "-J", "-t", "t").rstrip("\n").split("\n")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", str(self.sock), "kill-server"], env=self.env, capture_output=True, timeout=30)


def _overall(lines: list[str]) -> tuple[int, int] | None:
    """(done, total) from the overall bar's line: `━━━──  61%  1834/3000 files  1.2 GiB/2.0 GiB`."""
    for line in lines:
        m = re.search(r"\d+%\s+(\d+)/(\d+) files\s", line)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def _partition_rows(lines: list[str]) -> dict[str, tuple[int, int]]:
    rows = {}
    for line in lines:
        m = re.match(r"^(\d{4}) [━─]+\s+(\d+)/(\d+)\s", line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return rows


def _readable(lines: list[str], width: int) -> None:
    long = [line for line in lines if len(line) > width]
    assert not long, f"lines wider than {width} columns (wrapped): {long}"
    assert not any("Traceback" in line for line in lines), "\n".join(lines)


@pytest.mark.parametrize("width", [80, 200])
def test_live_view_in_tmux_agrees_with_summary_bucket_and_status(
        width, tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "src"
    count = _tree(src)
    dest = f"s3://{bucket}/{prefix}"
    report = tmp_path / "report"
    out, rc = tmp_path / "stdout.txt", tmp_path / "rc.txt"
    upload = [sys.executable, "-m", "mpupload", "upload", str(src), dest, "--endpoint-url", slow_link.url,
              "--processes", "1", "--threads", "2", "--report", str(report)]
    # stdout (the summary, the report's path) to a file; stderr, where the live view draws, is the pane.
    command = f"{shlex.join(upload)} > {shlex.quote(str(out))}; echo $? > {shlex.quote(str(rc))}"
    tmux = Tmux(tmp_path / "tmux.sock", {**s3env, "TERM": "xterm-256color"}, width=width, height=HEIGHT)
    try:
        tmux.start(f"sh -c {shlex.quote(command)}")
        shell = psutil.Process(tmux.pane_pid())
        upload_pid = wait_for(lambda: next((p.pid for p in shell.children() if "upload" in p.cmdline()), None),
                              timeout=30, what="the upload process in the pane")

        # While it runs: the view, mid-run, from the pane.
        def mid_frame():
            lines = tmux.capture()
            overall = _overall(lines)
            return lines if overall and 0 < overall[0] < count and _partition_rows(lines) else None

        lines = wait_for(mid_frame, timeout=120, what="a frame with progress under way and partition rows")
        _readable(lines, width)
        assert any(re.search(r"\d+ files/min\s+\d+\.\d MB/s \(now \d+\.\d, run \d+\.\d\)\s+ETA \S+", ln) for ln in lines)
        assert any(re.search(r"^up \d+\s+skipped \d+\s+failed \d+\s+retries \d+\s+left \d+\+? files", ln) for ln in lines)
        assert any(re.search(r"worker-\d+ \d+% [\d.]+ \w?i?B", ln) for ln in lines), "\n".join(lines)
        # Requests in flight now, from the worker's own count: --threads 2 lets it hold 4 files (2 queued).
        held = [int(m.group(1)) for ln in lines if (m := re.search(r"in flight (\d+) \(<=4/process\)", ln))]
        assert held and 0 <= held[0] <= 4 and any("throttles 0" in ln for ln in lines), "\n".join(lines)

        # While it runs: `mpupload status --json` from another process names the same run.
        def running_status():
            r = run_cli(["status", str(src), dest, "--endpoint-url", slow_link.url, "--json"], s3env, timeout=60)
            assert r.returncode == 0, r.stderr
            st = json.loads(r.stdout)
            return st if st["running"] and st.get("total_known") and st["done_files"] > 0 else None

        st = wait_for(running_status, timeout=120, what="status to report the run with its census")
        assert st["pid"] == upload_pid and st["run_pid"] == upload_pid and st["state"] == "running"
        assert st["total_files"] == count and 0 < st["done_files"] <= st["total_files"]
        assert st["left_files"] == count - st["done_files"]

        wait_for(lambda: rc.exists() and rc.read_text().strip(), timeout=240, what="the upload to end")
        assert rc.read_text().strip() == "0", out.read_text()
        final = tmux.capture()
    finally:
        tmux.kill()
    _readable(final, width)
    summary = json.loads((report / "report.json").read_text())["summary"]
    assert (summary["uploaded"], summary["failed"], summary["found"]) == (count, 0, count)
    assert _overall(final) == (count, count), "\n".join(final)
    up = [re.search(r"^up (\d+)\s+skipped (\d+)\s+failed (\d+)", ln) for ln in final]
    assert [m.groups() for m in up if m][-1] == (str(summary["uploaded"]), str(summary["skipped"]),
                                                 str(summary["failed"]))
    rows = _partition_rows(final)
    assert rows == {y: (FILES_PER_YEAR, FILES_PER_YEAR) for y in YEARS}, "\n".join(final)
    assert len(list_keys(s3client, bucket, prefix)) == count == summary["uploaded"]
    # After the run: status says it finished, and how.
    after = run_cli(["status", str(src), dest, "--endpoint-url", slow_link.url, "--json"], s3env, timeout=60)
    st = json.loads(after.stdout)
    assert (st["running"], st["state"], st["outcome"], st["exit_code"]) == (False, "finished", "ok", 0)
    assert (st["done_files"], st["uploaded"], st["left_files"]) == (count, count, 0)


def test_quiet_prints_only_the_summary(tmp_path, s3env, bucket, prefix, s3server):
    src = tmp_path / "src"
    for i in range(5):
        (src / "1930").mkdir(parents=True, exist_ok=True)
        (src / "1930" / f"{i}.txt").write_bytes(b"x" * (i + 1))
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--quiet",
                 "--progress-interval", "0.1"], s3env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("Uploaded 5 files")
    assert "files/min |" not in r.stderr and "Uploading" not in r.stderr  # no start line, no progress lines
