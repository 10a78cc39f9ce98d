"""README, Resume: "a rerun that finds nothing to do starts no worker process", and "a rerun the journal
answers lists nothing".

The runs go through the counting proxy (tests/faults/proxy.py counts object listings and keeps their
targets). Worker processes are the run's descendants, watched with psutil every few milliseconds from
start to end of the run; a lazily started worker lives for its start-up and batch at the very least (a
spawned interpreter importing boto3: hundreds of milliseconds), and the control runs show this watch does
see one. The first run's `--processes 2` is given, not chosen: with few small files the automatic choice
would be no process at all, and the test would prove nothing.

The listings a rerun makes are emptiness probes (`max-keys=3`: the preflight's, README "before any file, a
probe lists the prefix", and the planner's check that the destination was not emptied behind the journal's
back); what must not happen is the destination being listed, page by page, to decide skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
from helpers import assert_landed, local_files, summary_of

FILES = 300


def tree(root: Path, n: int) -> None:
    for i in range(n):
        p = root / str(1940 + i % 6) / f"p{i:04d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(700 + i))


def probe(target: str) -> bool:
    """A listing that asks whether anything is there (three keys at most: the two checksum probes' objects may
    be there for a moment, s3/probekeys.py), not one that reads the destination."""
    return "max-keys=3" in target.lower() and "delimiter" not in target.lower()


def run_watched(args: list[str], env: dict, *, timeout: float = 240) -> tuple[subprocess.CompletedProcess, set[int]]:
    """Run the CLI and return its result and the pids of every worker process seen among its descendants
    while it ran (multiprocessing's resource tracker is no worker)."""
    proc = subprocess.Popen([sys.executable, "-m", "mpupload", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        for _ in range(200_000):  # bounded: 5 ms apart, far beyond the run's timeout
            if done.is_set():
                return
            try:
                kids = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for k in kids:
                try:
                    if "resource_tracker" not in " ".join(k.cmdline()):
                        seen.add(k.pid)
                except psutil.NoSuchProcess:
                    continue
            done.wait(0.005)

    watcher = threading.Thread(target=watch, name="worker-watch", daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        done.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        watcher.join(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


def test_a_rerun_with_nothing_to_do_starts_no_worker_and_lists_nothing(
        tmp_path, s3server, s3client, s3env, bucket, prefix, proxy):
    src = tmp_path / "a"
    tree(src, FILES)
    journal = tmp_path / "state" / "j.sqlite"
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url, "--json",
            "--journal", str(journal), "--processes", "2"]
    first, workers = run_watched(args, s3env)
    assert first.returncode == 0, first.stderr
    assert summary_of(first.stdout)["uploaded"] == FILES
    assert len(workers) >= 1, "the watch saw no worker in a run that had work: it proves nothing below"

    before = proxy.snapshot()
    listed_before = len(proxy.listings)
    again, workers = run_watched(args, s3env)
    assert again.returncode == 0, again.stderr
    s = summary_of(again.stdout)
    assert (s["uploaded"], s["skipped"], s["failed"]) == (0, FILES, 0)
    assert workers == set(), f"a rerun with nothing to do started worker processes {sorted(workers)}"
    listings = proxy.listings[listed_before:]
    assert proxy.snapshot()["LIST"] - before["LIST"] == len(listings)
    # Emptiness probes only (the preflight's, and the planner's check that a journal remembering objects
    # is not facing an emptied destination): two keys asked, no page of the destination read.
    assert 1 <= len(listings) <= 2 and all(probe(t) for t in listings), listings
    assert s["bytes_sent"] == 0  # (the preflight's own probe PUTs aside, nothing is sent)

    # Controls, so the silence above means something: one changed file starts a worker (which the watch
    # sees); with the journal lost, the same rerun lists the destination to decide its skips.
    changed = sorted(local_files(src))[0]
    (src / changed).write_bytes(os.urandom(999))
    one, workers = run_watched(args, s3env)
    assert one.returncode == 0, one.stderr
    assert summary_of(one.stdout)["uploaded"] == 1
    assert len(workers) >= 1, "a rerun with one file to send started no worker: the watch cannot see them"

    for p in journal.parent.glob(f"{journal.name}*"):
        if p.is_file():
            p.unlink()
    listed_before = len(proxy.listings)
    lost, _workers = run_watched(args, s3env)
    assert lost.returncode == 0, lost.stderr
    assert summary_of(lost.stdout)["uploaded"] == 0
    assert [t for t in proxy.listings[listed_before:] if not probe(t)], proxy.listings[listed_before:]
    assert_landed(s3client, bucket, prefix, local_files(src))
