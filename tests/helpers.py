"""Test helpers: run the real CLI, build odd trees, and check what landed with an independent client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import xxhash

MIB = 1024 * 1024


def run_cli(args: list[str], env: dict, *, timeout: float = 240, stdin=subprocess.DEVNULL,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m mpupload ARGS`, as a user runs it (in `cwd`, else the test's own); bounded in time."""
    return subprocess.run([sys.executable, "-m", "mpupload", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=stdin, cwd=cwd)


def start_cli(args: list[str], env: dict) -> subprocess.Popen:
    """`python -m mpupload ARGS` in the background, in its own session (signals reach only what the test
    sends them to)."""
    return subprocess.Popen([sys.executable, "-m", "mpupload", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.05):
    """Poll a real condition (bounded); return its first truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def json_events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def summary_of(stdout: str) -> dict:
    sums = [e for e in json_events(stdout) if e.get("event") == "summary"]
    assert len(sums) == 1, f"expected one summary event in:\n{stdout}"
    return sums[0]


def local_files(root: Path) -> dict[str, Path]:
    """Regular files under root by '/'-separated relative path (what should land)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(root).as_posix()] = p
    return out


def list_keys(client, bucket: str, prefix: str) -> dict[str, int]:
    keys = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            keys[obj["Key"]] = obj["Size"]
    return keys


def assert_landed(client, bucket: str, prefix: str, files: dict[str, Path]) -> None:
    """Every file is stored under prefix/rel with identical bytes and the right xxh3-128 metadata,
    and nothing else is there."""
    keys = list_keys(client, bucket, prefix)
    expected = {f"{prefix}/{rel}" for rel in files}
    assert set(keys) == expected, f"missing {sorted(expected - set(keys))[:5]}, extra {sorted(set(keys) - expected)[:5]}"
    for rel, path in files.items():
        obj = client.get_object(Bucket=bucket, Key=f"{prefix}/{rel}")
        body = obj["Body"].read()
        data = path.read_bytes()
        assert body == data, f"bytes differ for {rel}"
        assert obj["Metadata"].get("xxh3-128") == xxhash.xxh3_128_hexdigest(data), f"digest metadata wrong for {rel}"


def settled_count(client, bucket: str, prefix: str) -> int:
    """The number of objects once it has not changed for a second (bounded): after a kill, requests a relay
    still holds (the slow link) land a round trip later."""
    last, since = -1, time.monotonic()
    deadline = since + 30
    while time.monotonic() < deadline:
        now = len(list_keys(client, bucket, prefix))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return now
        time.sleep(0.1)
    raise AssertionError("objects kept landing 30 s after the run's processes were gone")


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (zombies count as gone: they hold nothing but an exit status)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def year_tree(root: Path, n: int, *, size: int) -> dict[str, Path]:
    """n files of random bytes (size + i each) in 20 year folders; what should land, by relative path."""
    for i in range(n):
        p = root / str(1920 + i % 20) / f"p{i:04d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size + i))
    return local_files(root)
