"""README, shards: "A `--key-template` that may map two paths to one key is checked against the whole
source, not only the share" -- and the check, README "Key layout", "stops with a usage error (exit 2) naming
up to five keys and both files of each", before anything is sent.

Two files, `1901/scan.tif` and `1902/scan.tif`, meet at one key under `{name}`. Which shard each path falls
in is asked of the CLI itself (a dry run per shard with the default layout, one partition per year folder),
and the pair is chosen so that each shard holds exactly one of them: neither share alone has a collision.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import json_events, list_keys, run_cli

CANDIDATES = [str(year) for year in range(1901, 1917)]  # folders, each with a scan.tif


def shard_of_each(src: Path, dest: list[str], env: dict) -> dict[str, int]:
    """{year folder: its shard of 2}, from `--dry-run --shard K/2` with the default layout."""
    where: dict[str, int] = {}
    for k in (1, 2):
        r = run_cli(["upload", *dest, "--dry-run", "--shard", f"{k}/2"], env)
        assert r.returncode == 0, r.stderr
        [plan] = [e for e in json_events(r.stdout) if e["event"] == "plan"]
        for year, part in plan["partitions"].items():
            assert part["files"] == 1
            where[year] = k
    assert sorted(where) == CANDIDATES  # the two dry runs cover the source, each file once
    return where


def test_two_files_of_different_shards_at_one_key_stop_every_shard(tmp_path, s3server, s3client, s3env, bucket,
                                                                   prefix):
    src = tmp_path / "scans"
    for year in CANDIDATES:
        (src / year).mkdir(parents=True)
        (src / year / "scan.tif").write_bytes(year.encode() * 100)
    dest = [str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json"]
    where = shard_of_each(src, dest, s3env)
    first = next(y for y in CANDIDATES if where[y] == 1)
    second = next(y for y in CANDIDATES if where[y] == 2)
    for year in CANDIDATES:  # keep one file of each shard: the only pair that collides
        if year not in (first, second):
            (src / year / "scan.tif").unlink()
            (src / year).rmdir()

    for k in (1, 2):
        for extra in ([], ["--dry-run"]):
            r = run_cli(["upload", *dest, "--key-template", "{name}", "--shard", f"{k}/2", *extra], s3env)
            assert r.returncode == 2, (k, extra, r.stdout, r.stderr)
            [line] = [ln for ln in r.stderr.splitlines() if "  <-  " in ln]
            key, _, files = line.strip().partition("  <-  ")
            assert key == f"{prefix}/scan.tif"
            assert sorted(files.split("  and  ")) == sorted([f"{first}/scan.tif", f"{second}/scan.tif"])
            assert "Traceback" not in r.stderr
            assert not any(json.loads(x).get("event") == "summary" for x in r.stdout.splitlines()
                           if x.startswith("{")), "an upload ran"
    assert list_keys(s3client, bucket, prefix) == {}  # nothing sent, by either shard

    # The same template with no second file passes in each shard: the refusal above is the collision's.
    (src / second / "scan.tif").rename(src / second / "other.tif")
    for k in (1, 2):
        r = run_cli(["upload", *dest, "--key-template", "{name}", "--shard", f"{k}/2"], s3env)
        assert r.returncode == 0, r.stderr
    assert set(list_keys(s3client, bucket, prefix)) == {f"{prefix}/scan.tif", f"{prefix}/other.tif"}
