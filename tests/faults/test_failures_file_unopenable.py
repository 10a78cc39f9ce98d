"""README, "Failing at once": a `--failures-file` that cannot be written stops the run with one message naming
the path and exit 3. A failures file that cannot even be opened (its folder is missing) does so before
anything is sent, not with a traceback."""

from __future__ import annotations

from helpers import list_keys, run_cli


def test_a_failures_file_that_cannot_be_opened_is_fatal_before_anything_is_sent(tmp_path, s3server, s3client,
                                                                                s3env, bucket, prefix):
    src = tmp_path / "src" / "1930"
    src.mkdir(parents=True)
    (src / "page.jp2").write_bytes(b"x" * 100)
    where = tmp_path / "no-such-folder" / "failures.jsonl"
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--json", "--failures-file", str(where)], s3env)
    assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert (r.stdout + r.stderr).count(f"cannot write the failures file {where}") == 1
    assert list_keys(s3client, bucket, prefix) == {}
