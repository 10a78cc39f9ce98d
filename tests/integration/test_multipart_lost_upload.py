"""README, "Retries": a multipart upload lost on the way (`NoSuchUpload`) is for the file to fix, not the
request. Here the loss happens between runs: a run is killed mid-multipart, the upload it journaled is
aborted behind its back (a lifecycle rule, an operator's clean-up), and the resumed run must notice, start
the file anew and land exactly its bytes, not fail it or complete a dead upload."""

from __future__ import annotations

import json

from helpers import assert_landed, local_files, run_cli, summary_of

from .killed_multipart import MULTIPART, SIZE, big_file, kill_mid_multipart, open_uploads


def test_a_resumed_multipart_upload_aborted_behind_its_back_starts_anew_and_lands_whole(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "src"
    big_file(src / "1944" / "atlas.tif")
    (src / "1944" / "note.txt").write_bytes(b"a small neighbour")
    key = f"{prefix}/1944/atlas.tif"
    journal = tmp_path / "journal.sqlite"
    dest = ["upload", str(src), f"s3://{bucket}/{prefix}", "--json", "--journal", str(journal)]
    lost = kill_mid_multipart([*dest, "--endpoint-url", slow_link.url], s3env, s3client, bucket=bucket,
                              prefix=prefix, key=key)
    s3client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=lost)
    assert not [u for u in open_uploads(s3client, bucket, prefix) if u["Key"] == key]

    log = tmp_path / "resume.jsonl"
    again = run_cli([*dest, "--endpoint-url", s3server.endpoint_url, *MULTIPART, "--log-file", str(log)], s3env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    s = summary_of(again.stdout)
    assert s["failed"] == 0 and s["uploaded"] >= 1
    assert s["parts_reused"] == 0  # nothing of the aborted upload could be reused
    assert s["bytes_sent"] >= SIZE  # the whole file went again
    record = [r for line in log.read_text().splitlines() if (r := json.loads(line)).get("relpath") == "1944/atlas.tif"]
    assert [(r["status"], r["parts_reused"]) for r in record] == [("uploaded", 0)]
    assert_landed(s3client, bucket, prefix, local_files(src))  # read back, byte for byte
    assert open_uploads(s3client, bucket, prefix) == []  # the new upload completed; nothing left open
