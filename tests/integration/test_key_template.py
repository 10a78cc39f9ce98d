"""--key-template end to end: a flat folder sorted into years by mtime; collisions refused up front."""

from __future__ import annotations

import calendar
import os

from helpers import json_events, list_keys, run_cli, summary_of


def _flat(root, years=(1998, 2004, 2017)) -> dict[str, int]:
    root.mkdir()
    want = {}
    for y in years:
        for i in range(4):
            p = root / f"scan-{y}-{i}.tif"
            p.write_bytes(os.urandom(1000 + i))
            t = calendar.timegm((y, 6, 15, 12, 0, 0))
            os.utime(p, (t, t))
            want[f"{y}/{p.name}"] = p.stat().st_size
    return want


def test_flat_tree_lands_under_each_files_year(tmp_path, s3server, s3client, s3env, bucket, prefix):
    want = _flat(tmp_path / "flat")
    args = ["upload", str(tmp_path / "flat"), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
            "--key-template", "{year}/{name}", "--json"]
    dry = run_cli([*args, "--dry-run"], s3env)
    assert dry.returncode == 0, dry.stderr
    [plan] = [e for e in json_events(dry.stdout) if e["event"] == "plan"]
    assert plan["partitions"]["2004"]["sample_keys"][0].startswith(f"{prefix}/2004/scan-2004-")
    r = run_cli(args, s3env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["uploaded"] == len(want)
    assert list_keys(s3client, bucket, prefix) == {f"{prefix}/{k}": n for k, n in want.items()}


def test_two_files_to_one_key_is_a_usage_error_before_any_upload(tmp_path, s3server, s3client, s3env, bucket, prefix):
    _flat(tmp_path / "flat")
    (tmp_path / "flat" / "again").mkdir()
    (tmp_path / "flat" / "again" / "scan-2004-1.tif").write_bytes(b"other")
    os.utime(tmp_path / "flat" / "again" / "scan-2004-1.tif", (calendar.timegm((2004, 1, 1, 0, 0, 0)),) * 2)
    r = run_cli(["upload", str(tmp_path / "flat"), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--key-template", "{year}/{name}"], s3env)
    assert r.returncode == 2
    [line] = [ln for ln in r.stderr.splitlines() if "  <-  " in ln]  # one example: the one colliding pair
    assert line.strip().startswith(f"{prefix}/2004/scan-2004-1.tif  <-  ")
    assert sorted(line.split("  <-  ")[1].split("  and  ")) == ["again/scan-2004-1.tif", "scan-2004-1.tif"]
    assert list_keys(s3client, bucket, prefix) == {}


def test_verify_checks_the_keys_the_template_gave(tmp_path, s3server, s3client, s3env, bucket, prefix):
    """Names in the opposite order of their years: the template's keys come in another order than the walk,
    so verify must sort them (on disk) before merging them with the listing."""
    src = tmp_path / "flat"
    src.mkdir()
    want = {}
    for i, y in enumerate((2017, 2004, 1998) * 3):
        p = src / f"{chr(ord('a') + i)}-scan.tif"
        p.write_bytes(os.urandom(500 + i))
        os.utime(p, (calendar.timegm((y, 3, 1, 0, 0, 0)),) * 2)
        want[p.name] = f"{prefix}/{y}/{p.name}"
    dest = [str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json"]
    template = ["--key-template", "{year}/{name}"]
    assert run_cli(["upload", *dest, *template], s3env).returncode == 0

    r = run_cli(["verify", *dest, *template], s3env)
    assert r.returncode == 0, r.stdout + r.stderr
    [summary] = [e for e in json_events(r.stdout) if e["event"] == "verify_summary"]
    assert (summary["ok"], summary["missing"], summary["extra"]) == (len(want), 0, 0)

    # The default layout does not describe this upload: every file missing, every object extra.
    plain = json_events(run_cli(["verify", *dest], s3env).stdout)
    assert {e["path"] for e in plain if e["event"] == "missing"} == set(want)
    assert {e["key"] for e in plain if e["event"] == "extra"} == set(want.values())

    s3client.delete_object(Bucket=bucket, Key=want["b-scan.tif"])
    s3client.put_object(Bucket=bucket, Key=want["c-scan.tif"], Body=os.urandom(502),
                        Metadata={"xxh3-128": "0" * 32})
    r = run_cli(["verify", *dest, *template], s3env)
    assert r.returncode == 1
    found = {(e["event"], e["key"]) for e in json_events(r.stdout) if e["event"] not in ("verify_summary",)}
    assert found == {("missing", want["b-scan.tif"]), ("checksum_mismatch", want["c-scan.tif"])}
