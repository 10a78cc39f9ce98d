"""Stopping and failing well: SIGTERM / SIGHUP to the coordinator alone behave like Ctrl-C, no worker
outlives a coordinator killed with SIGKILL, a second signal stops at once, a journal on a full disk is a
fatal error, and a file S3 cannot hold fails at once.

The runs go through a relay that adds 80 ms of round trip (bench/relay.py), as a real link does, so a
run is long enough to be stopped mid-way whatever the machine's load: signals land while work is left.
Signals go to the coordinator's pid alone (not its process group), as `kill PID`, docker and the OOM
killer send them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import (
    alive,
    assert_landed,
    json_events,
    list_keys,
    local_files,
    run_cli,
    settled_count,
    start_cli,
    summary_of,
    wait_for,
)

from .proxy import FaultPlan


def small_tree(root: Path, n: int) -> dict[str, Path]:
    for i in range(n):
        p = root / str(1920 + i % 30) / f"p{i:04d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(2000 + i))
    return local_files(root)


def up(src, bucket, prefix, endpoint, *extra):
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", endpoint, "--json", *extra]


def run_processes(proc: subprocess.Popen) -> list[psutil.Process]:
    """The coordinator's descendants once its workers run (forked or spawned; multiprocessing's resource
    tracker too, when it has one)."""
    return wait_for(lambda: [p for p in psutil.Process(proc.pid).children(recursive=True)
                             if "resource_tracker" not in " ".join(p.cmdline())] and
                    psutil.Process(proc.pid).children(recursive=True), timeout=30, what="worker processes")



def kill_leftovers(procs: list[psutil.Process]) -> None:
    for p in alive(procs):
        p.kill()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_or_sighup_to_the_coordinator_alone_stops_like_ctrl_c_then_resumes(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link, sig, code):
    src = tmp_path / "news"
    n = len(small_tree(src, 600))
    args = up(src, bucket, prefix, slow_link.url, "--processes", "2", "--threads", "2")
    proc = start_cli(args, s3env)
    kids = []
    try:
        kids = run_processes(proc)
        wait_for(lambda: len(list_keys(s3client, bucket, prefix)) >= 40, timeout=120, what="40 objects")
        os.kill(proc.pid, sig)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    gone_by = time.monotonic() + 10
    wait_for(lambda: not alive(kids), timeout=max(0.1, gone_by - time.monotonic()),
             what="every process of the run to end")
    assert proc.returncode == code, err
    assert took < 10, f"stopping took {took:.1f}s"
    s = summary_of(out)
    assert s["interrupted"] is True and s["signal"] == sig.name
    assert "Traceback" not in err
    present = len(list_keys(s3client, bucket, prefix))
    assert present < n, "the run finished before the signal; the test proves nothing"
    again = run_cli(up(src, bucket, prefix, slow_link.url, "--processes", "2", "--threads", "16"), s3env)
    assert again.returncode == 0, again.stderr
    s2 = summary_of(again.stdout)
    assert s2["uploaded"] == n - present  # nothing that was stored is sent again
    assert s2["uploaded"] + s2["skipped"] == n
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_sigkill_of_the_coordinator_alone_leaves_no_worker_behind(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "news"
    n = len(small_tree(src, 600))
    args = up(src, bucket, prefix, slow_link.url, "--processes", "2", "--threads", "2")
    proc = start_cli(args, s3env)
    kids: list[psutil.Process] = []
    try:
        kids = run_processes(proc)
        wait_for(lambda: len(list_keys(s3client, bucket, prefix)) >= 40, timeout=120, what="40 objects")
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator only, as the OOM killer does
        proc.communicate(timeout=30)
        wait_for(lambda: not alive(kids), timeout=10, what="the workers to notice their coordinator is gone")
    finally:
        kill_leftovers(kids)
    # With every process of the run gone nothing new is sent, but requests already on the wire still arrive
    # (the relay, like a real link, delivers what was sent): count once the count holds for a second.
    present = settled_count(s3client, bucket, prefix)
    assert present < n, "the run finished before the kill; the test proves nothing"
    # The rerun recognises all that landed.
    again = run_cli(up(src, bucket, prefix, slow_link.url, "--processes", "2", "--threads", "16"), s3env)
    assert again.returncode == 0, again.stderr
    s2 = summary_of(again.stdout)
    assert s2["uploaded"] == n - present
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_a_second_signal_stops_at_once_even_with_requests_hanging(
        tmp_path, s3server, s3client, s3env, bucket, prefix, proxy):
    src = tmp_path / "news"
    small_tree(src, 400)
    proc = start_cli(up(src, bucket, prefix, proxy.endpoint_url, "--processes", "1", "--threads", "2",
                        "--stop-grace", "120", "--read-timeout", "300"), s3env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # every line, as printed
    reader.start()
    try:
        wait_for(lambda: list_keys(s3client, bucket, prefix), timeout=60, what="the upload to start")
        proxy.plan = FaultPlan(stall=1.0, stall_seconds=60, alternate_late_stalls=False)  # every PUT hangs
        wait_for(lambda: proxy.counts["stall"] >= 2, timeout=60, what="two hanging PUTs")
        os.kill(proc.pid, signal.SIGTERM)
        # The first signal waits for the requests in flight (up to --stop-grace): still running once the
        # coordinator said it is stopping.
        wait_for(lambda: proc.poll() is not None or any("SIGTERM: stopping" in line for line in lines), timeout=30,
                 what="the coordinator to start stopping")
        assert proc.poll() is None, "the first signal should have waited for the requests in flight"
        os.kill(proc.pid, signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - sent
        reader.join(timeout=30)
        err = proc.stderr.read()
    finally:
        proxy.plan = FaultPlan()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 143, err
    assert took < 8, f"the second signal took {took:.1f}s to stop the run"
    assert "Traceback" not in err
    assert summary_of("".join(lines))["signal"] == "SIGTERM"
    # The journal survived being cut short: the rerun finishes the job.
    again = run_cli(up(src, bucket, prefix, proxy.endpoint_url), s3env)
    assert again.returncode == 0, again.stderr
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_a_signal_during_the_preflight_stops_at_once(tmp_path, s3server, s3env, bucket, prefix, proxy):
    src = tmp_path / "news"
    small_tree(src, 10)
    proxy.plan = FaultPlan(stall=1.0, stall_seconds=60, alternate_late_stalls=False)  # the write probe hangs
    proc = start_cli(up(src, bucket, prefix, proxy.endpoint_url), s3env)
    try:
        wait_for(lambda: proxy.counts["stall"] >= 1, timeout=60, what="the write probe to hang")
        os.kill(proc.pid, signal.SIGTERM)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proxy.plan = FaultPlan()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert took < 8, f"{took:.1f}s to stop a run that had not started"
    assert "Traceback" not in err
    assert summary_of(out)["signal"] == "SIGTERM"


def test_a_file_too_big_for_s3_fails_at_once_and_the_rest_lands(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "a"
    files = small_tree(src, 5)
    huge = src / "1921" / "sparse.img"
    with open(huge, "wb") as f:
        f.truncate(6 * 1024**4)  # 6 TiB, sparse: S3's object limit is 5 TiB
    started = time.monotonic()
    r = run_cli(up(src, bucket, prefix, s3server.endpoint_url), s3env, timeout=120)
    took = time.monotonic() - started
    assert r.returncode == 1, r.stderr
    assert took < 30, f"{took:.0f}s: the big file was read before it was refused"
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"]) == (len(files), 1)
    failed = [e for e in json_events(r.stdout) if e["event"] == "failed"]
    assert [e["path"] for e in failed] == ["1921/sparse.img"] and "5.0 TiB" in failed[0]["reason"]
    assert_landed(s3client, bucket, prefix, files)


@contextlib.contextmanager
def _small_disk(where: Path, size: str) -> Iterator[tuple[Path, list[str]]]:
    """A tmpfs of `size` at `where`; yields the path this process reaches it by and the command prefix that
    runs the CLI where it is mounted. As root: mounted here, no prefix. Otherwise in a user and mount
    namespace of its own (no root needed where unprivileged user namespaces are allowed): a holder process
    keeps it mounted, this process reaches it through /proc/HOLDER/root/..., and the CLI runs inside the
    namespace (nsenter): SQLite resolves /proc/HOLDER/root to "/", so the journal must see the real path.

    Skipped only where neither works, and never in CI (CI set): there it is a failure, not a skip."""
    where.mkdir(parents=True)
    why = ""
    if os.geteuid() == 0:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            try:
                yield where, []
            finally:
                subprocess.run(["umount", "-l", str(where)], check=False)
            return
        why = f"mount: {r.stderr.strip()}"
    try:
        holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             'mount -t tmpfs -o size="$1" tmpfs "$2" && echo mounted && exec cat', "sh", size, str(where)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError as exc:
        holder, why = None, f"{why}; {exc}"
    if holder is not None:
        try:
            # Bounded: the holder prints "mounted" or exits at once (stdout closes, readline returns "").
            if holder.stdout.readline().strip() == "mounted":
                yield (Path(f"/proc/{holder.pid}/root{where}"),
                       ["nsenter", "-t", str(holder.pid), "-U", "-m", "--preserve-credentials"])
                return
            holder.wait(timeout=10)
            why = f"{why}; unshare: {holder.stderr.read().strip()}"
        finally:
            holder.stdin.close()  # cat ends, the namespace and its tmpfs with it
            holder.wait(timeout=10)
    if os.environ.get("CI"):
        pytest.fail(f"cannot mount a small tmpfs for the journal in CI ({why})")
    pytest.skip(f"cannot mount a small tmpfs for the journal here ({why})")


def test_a_journal_on_a_full_disk_stops_the_run_cleanly_and_the_rerun_sends_nothing_twice(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "news"
    n = len(small_tree(src, 3000))
    where = tmp_path / "small-disk"
    with _small_disk(where, "16m") as (state, inside):
        def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
            return subprocess.run([*inside, sys.executable, "-m", "mpupload", *args], env=env, capture_output=True,
                                  text=True, timeout=240, stdin=subprocess.DEVNULL)

        disk = os.statvfs(state)
        assert disk.f_blocks * disk.f_frsize <= 16 * 1024 * 1024  # the small disk, not the folder under it
        filler = state / "filler"
        # Leave room for the journal's start (schema, first batches) but not for 3000 rows and their WAL.
        filler.write_bytes(b"\0" * (disk.f_bavail * disk.f_frsize - 160 * 1024))
        env = dict(s3env, XDG_STATE_HOME=str(where))
        r = cli(up(src, bucket, prefix, s3server.endpoint_url, "--processes", "2"), env)
        assert r.returncode == 3, r.stdout[-2000:] + r.stderr
        assert "Traceback" not in r.stderr
        assert (r.stdout + r.stderr).count("cannot write the journal") == 1, r.stdout[-3000:] + r.stderr
        s = summary_of(r.stdout)
        assert "cannot write the journal" in s["fatal"]
        filler.unlink()  # space again
        present = len(list_keys(s3client, bucket, prefix))
        assert present < n
        again = cli(up(src, bucket, prefix, s3server.endpoint_url), env)
        assert again.returncode == 0, summary_of(again.stdout)["fatal"]
        s2 = summary_of(again.stdout)
        assert s2["uploaded"] == n - present  # what was stored but not journaled is recognised, not re-sent
        assert s2["uploaded"] + s2["skipped"] == n
        assert any(state.rglob("*.sqlite")), "the journal was not on the small disk"
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_an_unwritable_failures_file_is_fatal_not_a_traceback(tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "a"
    small_tree(src, 3)
    deep = src / "1930" / "/".join(["d" * 250] * 5)  # a key over S3's 1024 bytes: that file fails
    deep.mkdir(parents=True)
    (deep / "page.jp2").write_bytes(b"x")
    r = run_cli(up(src, bucket, prefix, s3server.endpoint_url, "--failures-file", "/dev/full"), s3env)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert "cannot write the failures file /dev/full" in summary_of(r.stdout)["fatal"]
