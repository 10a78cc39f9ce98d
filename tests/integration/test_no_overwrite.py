"""--no-overwrite through the CLI against the real server: an object with other content at a file's key is a
conflict (its own reason, exit 1) and stays as it was; the same content is skipped; new keys land. Both with a
listing of the destination (a first run) and without one (a rerun the journal answers, where the PUT's
If-None-Match: * is what refuses)."""

from __future__ import annotations

from pathlib import Path

from helpers import MIB, json_events, run_cli, summary_of


def _tree(root: Path) -> None:
    (root / "1950").mkdir(parents=True)
    (root / "1950" / "same.txt").write_text("the same bytes\n")
    (root / "1950" / "other.txt").write_text("the local version\n")
    (root / "1950" / "new.txt").write_text("only here\n")
    (root / "1950" / "big.bin").write_bytes(b"L" * (9 * MIB))  # multipart


def _failed(stdout: str) -> dict[str, str]:
    return {e["path"]: e["reason"] for e in json_events(stdout) if e.get("event") == "failed"}


def test_an_object_with_other_content_is_a_conflict_and_stays(s3server, s3env, s3client, bucket, prefix, tmp_path):
    src = tmp_path / "src"
    _tree(src)
    # What was there before the migration: one object with the same bytes, two with others.
    first = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                     "--include", "1950/same.txt"], s3env)
    assert first.returncode == 0, first.stderr
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1950/other.txt", Body=b"the version already in the bucket")
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1950/big.bin", Body=b"small, not the big local file")

    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--json", "--no-overwrite", "--multipart-threshold", "8MB"], s3env)
    assert r.returncode == 1, r.stderr
    failed = _failed(r.stdout)
    assert set(failed) == {"1950/other.txt", "1950/big.bin"}, failed
    assert all(reason.startswith("conflict:") for reason in failed.values()), failed
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["skipped"], s["failed"]) == (1, 1, 2), s
    body = s3client.get_object(Bucket=bucket, Key=f"{prefix}/1950/other.txt")["Body"].read()
    assert body == b"the version already in the bucket"
    assert s3client.head_object(Bucket=bucket, Key=f"{prefix}/1950/big.bin")["ContentLength"] < 100
    assert not s3client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_without_a_listing_the_put_itself_refuses_to_replace(s3server, s3env, s3client, bucket, prefix, tmp_path):
    """A rerun skips the listing (the journal knows the files); a file changed since, whose object someone
    also replaced, is refused by the server (If-None-Match: *) and reported as a conflict."""
    src = tmp_path / "src"
    (src / "1950").mkdir(parents=True)
    page = src / "1950" / "page.txt"
    page.write_text("first\n")
    dest = [str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--json"]
    assert run_cli(["upload", *dest], s3env).returncode == 0
    page.write_text("second, longer than the first\n")
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/1950/page.txt", Body=b"someone else's")
    r = run_cli(["upload", *dest, "--no-overwrite"], s3env)
    assert r.returncode == 1, r.stderr
    assert _failed(r.stdout)["1950/page.txt"].startswith("conflict:")
    assert s3client.get_object(Bucket=bucket, Key=f"{prefix}/1950/page.txt")["Body"].read() == b"someone else's"


def test_no_overwrite_with_delete_is_a_usage_error(s3server, s3env, bucket, prefix, tmp_path):
    r = run_cli(["upload", str(tmp_path), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--no-overwrite", "--delete"], s3env)
    assert r.returncode == 2 and "--no-overwrite" in r.stderr
