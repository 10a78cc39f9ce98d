"""--log-file against the real server: one JSON line per file the run found, each exactly once with its
status and reason, between a start and an end line; runs append, so a resumed migration reads as one story."""

from __future__ import annotations

import json
import unicodedata

from faults.hostile import hostile_tree, long_key_file
from helpers import MIB, run_cli, summary_of

from mpupload.core.messages import SKIP_JOURNAL


def _runs(log) -> list[list[dict]]:
    """The log's lines grouped by run (start .. end); every line must be JSON."""
    runs: list[list[dict]] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["event"] == "start":
            runs.append([])
        runs[-1].append(record)
    return runs


def _by_relpath(run: list[dict]) -> dict[str, dict]:
    assert run[0]["event"] == "start" and run[-1]["event"] == "end"
    files = run[1:-1]
    assert all(r["event"] == "file" for r in files)
    # A name that is not UTF-8 is logged as text (byte 0xFF as backslash-x-f-f); the tree names it by its
    # key, where the byte is %FF (keyorder.py): the test looks it up by that.
    by_rel = {r["relpath"].replace("\\xff\\xfe", "%FF%FE"): r for r in files}
    assert len(by_rel) == len(files), "a file appears more than once"
    assert len(files) == run[-1]["summary"]["found"]
    for r in files:
        assert set(r) >= {"time", "key", "relpath", "size", "status", "reason", "attempt", "duration"}
    return by_rel


def test_every_file_once_with_its_status_across_runs(tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "src"
    good, bad = hostile_tree(src, tmp_path / "outside")
    (src / "1951").mkdir()
    for i in range(20):
        (src / "1951" / f"page-{i:02}.jp2").write_bytes(bytes([i]) * (1000 + i))
        good[f"1951/page-{i:02}.jp2"] = src / "1951" / f"page-{i:02}.jp2"
    (src / "1951" / "large.tif").write_bytes(b"L" * (9 * MIB))  # multipart
    good["1951/large.tif"] = src / "1951" / "large.tif"
    too_long = long_key_file(src)
    twins = [unicodedata.normalize(form, "1951/caf\u00e9.jp2") for form in ("NFC", "NFD")]
    for i, name in enumerate(twins):
        (src / name).write_bytes(b"twin %d" % i)
    failing = {too_long: "S3 allows at most 1024", twins[0]: "Unicode normalisation", twins[1]: "Unicode normalisation"}
    log, journal = tmp_path / "run.jsonl", tmp_path / "journal.sqlite"
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json",
            "--processes", "2", "--log-file", str(log)]

    first = run_cli([*args, "--journal", str(journal)], s3env)
    assert first.returncode == 1, first.stderr  # the failing files
    (src / "1951" / "late.jp2").write_bytes(b"added between the runs")
    second = run_cli([*args, "--journal", str(journal)], s3env)  # the journal skips what the first stored
    third = run_cli([*args, "--journal", str(tmp_path / "lost.sqlite")], s3env)  # a lost journal: found there
    assert second.returncode == third.returncode == 1

    runs = _runs(log)
    assert len(runs) == 3
    assert runs[0][0]["settings"]["log_file"] == str(log)
    assert s3env["AWS_SECRET_ACCESS_KEY"] not in log.read_text(encoding="utf-8")
    for run, result in zip(runs, (first, second, third), strict=True):
        assert run[-1]["exit_code"] == 1 and run[-1]["run_id"] == run[0]["run_id"]
        assert run[-1]["summary"]["uploaded"] == summary_of(result.stdout)["uploaded"]

    one = _by_relpath(runs[0])
    assert set(one) == set(good) | set(bad) | set(failing)
    for rel in good:
        assert one[rel]["status"] == "uploaded" and one[rel]["attempt"] >= 1, one[rel]
        assert one[rel]["size"] == good[rel].stat().st_size and one[rel]["key"] == f"{prefix}/{rel}"
    for rel, words in bad.items():
        assert one[rel]["status"] == "skipped" and words in one[rel]["reason"], one[rel]
    for rel, words in failing.items():
        assert one[rel]["status"] == "failed" and words in one[rel]["reason"], one[rel]

    two = _by_relpath(runs[1])
    assert set(two) == set(one) | {"1951/late.jp2"}
    assert two["1951/late.jp2"]["status"] == "uploaded"
    for rel in good:
        assert (two[rel]["status"], two[rel]["reason"]) == ("skipped", SKIP_JOURNAL), two[rel]
    assert {rel for rel, r in two.items() if r["status"] == "failed"} == set(failing)

    three = _by_relpath(runs[2])
    assert set(three) == set(two)
    for rel in [*good, "1951/late.jp2"]:
        assert three[rel]["status"] == "skipped" and "already at the destination" in three[rel]["reason"], three[rel]
