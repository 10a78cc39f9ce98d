"""README, "Multipart resume": journaled uploads a finished run did not touch are aborted too (their files
are gone, changed or were skipped: nothing would complete them, and their parts would be paid for forever).
And only those: the sweep works from the journal, so uploads the run does not own (another tool's, under
the same prefix, even to the same key) are left alone; the README's "one run per journal" names the harm
of aborting another's uploads."""

from __future__ import annotations

from helpers import assert_landed, local_files, run_cli, summary_of

from .killed_multipart import big_file, kill_mid_multipart, open_uploads


def test_a_finished_run_aborts_the_journaled_uploads_it_did_not_touch_and_no_other(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "src"
    gone = big_file(src / "1950" / "map.tif")
    for i in range(5):
        (src / "1951" / f"page-{i}.jp2").parent.mkdir(parents=True, exist_ok=True)
        (src / "1951" / f"page-{i}.jp2").write_bytes(b"page %d" % i)
    key = f"{prefix}/1950/map.tif"
    journal = tmp_path / "journal.sqlite"
    dest = ["upload", str(src), f"s3://{bucket}/{prefix}", "--json", "--journal", str(journal)]
    left_behind = kill_mid_multipart([*dest, "--endpoint-url", slow_link.url], s3env, s3client, bucket=bucket,
                                     prefix=prefix, key=key)
    # Not the run's: another client's uploads under the same prefix, one to the very key the run left.
    foreign = {s3client.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]
               for k in (key, f"{prefix}/1950/other-tool.tif")}
    gone.unlink()  # the file is gone: the next run has nothing to resume it with, so it does not touch it

    r = run_cli([*dest, "--endpoint-url", s3server.endpoint_url], s3env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = summary_of(r.stdout)
    assert s["failed"] == 0 and s["uploaded"] + s["skipped"] == 5
    assert_landed(s3client, bucket, prefix, local_files(src))
    still_open = {u["UploadId"] for u in open_uploads(s3client, bucket, prefix)}
    assert left_behind not in still_open, "the journaled upload no run will complete is still open"
    # Exactly the foreign ones remain (the killed run's own write probe, if it left one, is gone too).
    assert still_open == foreign
