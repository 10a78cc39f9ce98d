"""README, verify: "objects that `--include` / `--exclude` leave out are not called extra" (and, in the shard
section, "one share (others' objects are not "extra")").

One upload of the whole tree, then verify with a selection: the objects of the files the selection leaves
out are at the destination, under the same prefix, and must not be named; a stray object the selection
does take is still named, so the check is not simply silent about extras.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import json_events, run_cli, summary_of


def tree(root: Path) -> tuple[set[str], set[str]]:
    """(images, notes): .jp2 files and .txt files in two year folders."""
    images, notes = set(), set()
    for year in ("1920", "1921"):
        for i in range(5):
            rel = f"{year}/p{i}.jp2"
            (root / year).mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(os.urandom(300 + i))
            images.add(rel)
        for i in range(3):
            rel = f"{year}/note{i}.txt"
            (root / rel).write_text(f"note {year} {i}\n")
            notes.add(rel)
    return images, notes


def findings(stdout: str) -> tuple[dict, set[tuple[str, str]]]:
    events = json_events(stdout)
    [summary] = [e for e in events if e["event"] == "verify_summary"]
    return summary, {(e["event"], e["key"]) for e in events if e["event"] != "verify_summary"}


@pytest.mark.parametrize("selection", [["--exclude", "*.txt"], ["--include", "*.jp2"]], ids=["exclude", "include"])
def test_objects_the_selection_leaves_out_are_not_extra(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                                        selection):
    src = tmp_path / "a"
    images, notes = tree(src)
    dest = [str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json"]
    up = run_cli(["upload", *dest], s3env)  # everything, notes included
    assert up.returncode == 0, up.stderr
    assert summary_of(up.stdout)["uploaded"] == len(images) + len(notes)

    # The notes' objects are there; the selection leaves their files out: a match, nothing extra.
    r = run_cli(["verify", *dest, *selection], s3env)
    assert r.returncode == 0, r.stdout + r.stderr
    summary, found = findings(r.stdout)
    assert found == set()
    assert (summary["ok"], summary["extra"], summary["match"]) == (len(images), 0, True)

    # Strays, one the selection takes (named) and one it leaves out (not named).
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1921/stray.jp2", Body=b"not ours")
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1921/stray.txt", Body=b"not ours either")
    r = run_cli(["verify", *dest, *selection], s3env)
    assert r.returncode == 1, r.stdout + r.stderr
    summary, found = findings(r.stdout)
    assert found == {("extra", f"{prefix}/1921/stray.jp2")}
    assert (summary["ok"], summary["extra"]) == (len(images), 1)

    # Without a selection both strays are extra: the silence above is the selection's doing.
    r = run_cli(["verify", *dest], s3env)
    assert r.returncode == 1
    _summary, found = findings(r.stdout)
    assert found == {("extra", f"{prefix}/1921/stray.jp2"), ("extra", f"{prefix}/1921/stray.txt")}


def test_each_shard_verifies_its_share_and_calls_no_other_shards_object_extra(
        tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "a"
    images, notes = tree(src)
    dest = [str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json"]
    assert run_cli(["upload", *dest], s3env).returncode == 0
    oks = []
    for k in (1, 2):
        r = run_cli(["verify", *dest, "--shard", f"{k}/2"], s3env)
        assert r.returncode == 0, r.stdout + r.stderr
        summary, found = findings(r.stdout)
        assert found == set() and summary["extra"] == 0
        oks.append(summary["ok"])
    # Two disjoint shares that cover the source: each checked some files, together all of them.
    assert min(oks) > 0 and sum(oks) == len(images) + len(notes)
