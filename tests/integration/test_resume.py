"""Resume and proof: the journal, destination-aware skipping, crash safety, multipart resume, verify."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from helpers import (
    MIB,
    assert_landed,
    json_events,
    list_keys,
    local_files,
    run_cli,
    settled_count,
    start_cli,
    summary_of,
    wait_for,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_archive import make_archive  # noqa: E402


def up(src, bucket, prefix, server, *extra):
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", server.endpoint_url, "--json", *extra]


def small_tree(root: Path, n: int = 40) -> dict[str, Path]:
    for i in range(n):
        p = root / str(1920 + i % 50) / f"p{i:04d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(1000 + i))
    return local_files(root)


def test_rerun_skips_everything_through_the_journal(tmp_path, s3server, s3client, s3env, bucket, prefix):
    files = small_tree(tmp_path / "a")
    first = run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env)
    assert first.returncode == 0, first.stderr
    assert summary_of(first.stdout)["uploaded"] == len(files)
    again = run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env)
    s = summary_of(again.stdout)
    assert again.returncode == 0 and (s["uploaded"], s["skipped"], s["bytes_sent"]) == (0, len(files), 0)
    assert s["skips_by_reason"] == {"unchanged since it was stored (journal)": len(files)}


def test_changed_file_is_uploaded_again_and_only_it(tmp_path, s3server, s3client, s3env, bucket, prefix):
    files = small_tree(tmp_path / "a")
    assert run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env).returncode == 0
    victim = sorted(files.values())[3]
    victim.write_bytes(b"a new scan of this page")
    again = run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env)
    s = summary_of(again.stdout)
    assert (s["uploaded"], s["skipped"]) == (1, len(files) - 1)
    assert_landed(s3client, bucket, prefix, files)


def test_lost_journal_skips_by_destination_checksum_but_not_a_wrong_object(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    files = small_tree(tmp_path / "a")
    assert run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env).returncode == 0
    # Same size, other bytes and another digest at one key: that file must be uploaded again.
    rel = sorted(files)[5]
    size = files[rel].stat().st_size
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=b"x" * size, Metadata={"xxh3-128": "0" * 32})
    fresh_state = dict(s3env, XDG_STATE_HOME=str(tmp_path / "new-machine"))
    again = run_cli(up(tmp_path / "a", bucket, prefix, s3server), fresh_state)
    s = summary_of(again.stdout)
    assert again.returncode == 0
    assert (s["uploaded"], s["skipped"]) == (1, len(files) - 1)
    assert s["skips_by_reason"] == {"already at the destination (same size and MD5)": len(files) - 1}
    assert_landed(s3client, bucket, prefix, files)
    # Those skips were journaled: a third run needs neither hashing nor HEADs.
    third = summary_of(run_cli(up(tmp_path / "a", bucket, prefix, s3server), fresh_state).stdout)
    assert third["skips_by_reason"] == {"unchanged since it was stored (journal)": len(files)}


@pytest.mark.parametrize("mode, uploaded", [("never", 40), ("size", 0)])
def test_skip_existing_modes(tmp_path, s3server, s3client, s3env, bucket, prefix, mode, uploaded):
    small_tree(tmp_path / "a")
    assert run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env).returncode == 0
    fresh = dict(s3env, XDG_STATE_HOME=str(tmp_path / "other"))
    s = summary_of(run_cli(up(tmp_path / "a", bucket, prefix, s3server, "--skip-existing", mode), fresh).stdout)
    assert s["uploaded"] == uploaded


def test_kill_9_of_the_whole_tree_then_rerun_writes_only_what_is_missing(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "many"
    n = len(small_tree(src, n=600))
    # Through the 80 ms link, 2 processes x 2 threads send at most ~50 files a second (each PUT waits a round
    # trip): 600 files take 12 s or more however fast the machine, so the kill at 40% lands mid-run.
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json"]
    proc = start_cli([*args, "--processes", "2", "--threads", "2"], s3env)
    try:
        wait_for(lambda: len(list_keys(s3client, bucket, prefix)) >= 0.4 * n, timeout=120, what="40% uploaded",
                 interval=0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    # PUTs the relay already holds still land after the kill: count once the destination is still.
    present = settled_count(s3client, bucket, prefix)
    assert present < n, "the run finished before the kill; the test proves nothing"
    again = run_cli([*args, "--processes", "2", "--threads", "4"], s3env)  # same endpoint: same journal
    assert again.returncode == 0, again.stderr
    s = summary_of(again.stdout)
    assert s["uploaded"] == n - present  # every object that landed was recognised, journaled or not
    assert s["uploaded"] + s["skipped"] == n
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_ctrl_c_stops_cleanly_with_130_and_a_summary_then_resumes(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "news"
    n, _ = make_archive(src, pages=700, large=0, seed=4)
    # Through an 80 ms link 2 x 2 threads need well over 10 s for 700 files: the signal lands mid-run
    # however busy the machine (on loopback the run could end before the test's poll saw 50 objects).
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json"]
    proc = start_cli([*args, "--processes", "2", "--threads", "2"], s3env)
    wait_for(lambda: len(list_keys(s3client, bucket, prefix)) >= 50, timeout=120, what="50 objects", interval=0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    s = summary_of(out)
    assert s["interrupted"] is True and s["uploaded"] >= 1
    assert "Traceback" not in err
    again = run_cli([*args, "--threads", "16"], s3env)  # same endpoint: same journal
    assert again.returncode == 0
    s2 = summary_of(again.stdout)
    assert s2["uploaded"] + s2["skipped"] == n
    assert s2["skipped"] >= s["uploaded"]  # nothing already journaled was sent twice
    assert_landed(s3client, bucket, prefix, local_files(src))


def _open_uploads(client, bucket, prefix):
    return client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get("Uploads", [])


def test_interrupted_multipart_upload_resumes_without_resending_parts(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "big"
    (src / "1944").mkdir(parents=True)
    size = 250 * MIB + 123
    with open(src / "1944" / "atlas.tif", "wb") as f:
        for _ in range(250):
            f.write(os.urandom(MIB))
        f.write(b"x" * 123)
    args = up(src, bucket, prefix, s3server, "--processes", "1", "--threads", "1",
              "--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB")
    proc = start_cli(args, s3env)

    def parts_so_far():
        for u in _open_uploads(s3client, bucket, prefix):
            try:
                parts = s3client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])
            except s3client.exceptions.NoSuchUpload:  # completed between the two calls
                return 0
            if len(parts) >= 3:
                return len(parts)
        return 0

    try:
        wait_for(parts_so_far, timeout=120, what="3 parts stored", interval=0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    stored_before = parts_so_far()
    assert stored_before >= 3 and list_keys(s3client, bucket, prefix) == {}, "finished before the kill"
    again = run_cli(args, s3env)
    assert again.returncode == 0, again.stderr
    s = summary_of(again.stdout)
    assert s["uploaded"] == 1
    assert s["parts_reused"] >= stored_before
    assert s["bytes_sent"] <= size - stored_before * 5 * MIB  # the reused parts were not sent again
    assert_landed(s3client, bucket, prefix, local_files(src))
    assert _open_uploads(s3client, bucket, prefix) == []


def test_multipart_upload_of_a_file_that_changed_is_aborted_not_completed(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "big"
    (src / "1950").mkdir(parents=True)
    target = src / "1950" / "map.tif"
    with open(target, "wb") as f:  # big enough that the kill comes long before the upload could finish
        for _ in range(200):
            f.write(os.urandom(MIB))
    args = up(src, bucket, prefix, s3server, "--processes", "1", "--threads", "1",
              "--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB")
    proc = start_cli(args, s3env)
    key = f"{prefix}/1950/map.tif"
    try:
        # The upload of the file itself (the preflight's write probe is a multipart upload too).
        wait_for(lambda: [u for u in _open_uploads(s3client, bucket, prefix) if u["Key"] == key], timeout=60,
                 what="a multipart upload")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    old_ids = {u["UploadId"] for u in _open_uploads(s3client, bucket, prefix) if u["Key"] == key}
    assert old_ids and list_keys(s3client, bucket, prefix) == {}, "finished before the kill"
    target.write_bytes(os.urandom(40 * MIB))  # a new version: the old upload carries a stale digest
    again = run_cli(args, s3env)
    assert again.returncode == 0, again.stderr
    assert summary_of(again.stdout)["parts_reused"] == 0
    assert_landed(s3client, bucket, prefix, local_files(src))
    assert not old_ids & {u["UploadId"] for u in _open_uploads(s3client, bucket, prefix)}


def test_verify_passes_a_faithful_copy_and_names_every_difference(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    files = small_tree(tmp_path / "a", n=30)
    assert run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env).returncode == 0
    dest = ["--endpoint-url", s3server.endpoint_url, "--json"]
    ok = run_cli(["verify", str(tmp_path / "a"), f"s3://{bucket}/{prefix}", *dest], s3env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json_events(ok.stdout)[-1]["ok"] == 30
    rels = sorted(files)
    s3client.delete_object(Bucket=bucket, Key=f"{prefix}/{rels[0]}")
    # Same size, metadata kept, bytes changed behind our back: only --deep can see it.
    head = s3client.head_object(Bucket=bucket, Key=f"{prefix}/{rels[1]}")
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/{rels[1]}", Body=b"\0" * head["ContentLength"],
                        Metadata=head["Metadata"])
    s3client.put_object(Bucket=bucket, Key=f"{prefix}/stray.bin", Body=b"not ours")
    shallow = run_cli(["verify", str(tmp_path / "a"), f"s3://{bucket}/{prefix}", *dest], s3env)
    assert shallow.returncode == 1
    ev = {(e["event"], e["key"]) for e in json_events(shallow.stdout) if e["event"] != "verify_summary"}
    assert ev == {("missing", f"{prefix}/{rels[0]}"), ("extra", f"{prefix}/stray.bin")}
    deep = run_cli(["verify", str(tmp_path / "a"), f"s3://{bucket}/{prefix}", "--deep", "--processes", "2", *dest],
                   s3env)
    assert deep.returncode == 1
    ev = {(e["event"], e["key"]) for e in json_events(deep.stdout) if e["event"] != "verify_summary"}
    assert ("checksum_mismatch", f"{prefix}/{rels[1]}") in ev and ("missing", f"{prefix}/{rels[0]}") in ev
    human = run_cli(["verify", str(tmp_path / "a"), f"s3://{bucket}/{prefix}", "--endpoint-url",
                     s3server.endpoint_url], s3env)
    assert human.returncode == 1 and "MISMATCH" in human.stdout and rels[0] in human.stdout


def test_a_worker_killed_mid_run_is_replaced_and_its_files_still_land(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    import psutil

    src = tmp_path / "many"
    n = len(small_tree(src, n=600))
    # The 80 ms link keeps 2 x 2 threads to ~50 files a second: the kill at a quarter lands with most left.
    proc = start_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json",
                      "--processes", "2", "--threads", "2"], s3env)

    def workers():
        try:
            kids = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [k for k in kids if "resource_tracker" not in " ".join(k.cmdline())]  # forked or spawned

    victim = wait_for(lambda: len(list_keys(s3client, bucket, prefix)) >= 0.25 * n and workers(), timeout=120,
                      what="a quarter uploaded")[0]
    victim.kill()
    assert len(list_keys(s3client, bucket, prefix)) < n, "the run ended before the kill; the test proves nothing"
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    s = summary_of(out)
    assert s["uploaded"] == n and s["failed"] == 0
    assert s["worker_restarts"] == 1
    assert_landed(s3client, bucket, prefix, local_files(src))


def test_deep_verify_of_a_multipart_object_hashes_ranged_downloads(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "big"
    (src / "1944").mkdir(parents=True)
    (src / "1944" / "atlas.tif").write_bytes(os.urandom(21 * MIB + 7))
    args = ["--endpoint-url", s3server.endpoint_url, "--json"]
    assert run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--multipart-threshold", "5MiB",
                    "--multipart-chunksize", "5MiB", *args], s3env).returncode == 0
    ok = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--deep", *args], s3env)
    assert ok.returncode == 0 and json_events(ok.stdout)[-1]["ok"] == 1
    key = f"{prefix}/1944/atlas.tif"
    head = s3client.head_object(Bucket=bucket, Key=key)
    body = bytearray((src / "1944" / "atlas.tif").read_bytes())
    body[15 * MIB] ^= 0xFF  # one flipped byte deep inside, same size, metadata kept
    s3client.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head["Metadata"])
    bad = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--deep", *args], s3env)
    assert bad.returncode == 1
    assert [e["event"] for e in json_events(bad.stdout)][:1] == ["checksum_mismatch"]


def test_journal_is_not_trusted_when_the_destination_was_emptied(tmp_path, s3server, s3client, s3env, bucket, prefix):
    files = small_tree(tmp_path / "a", n=12)
    assert run_cli(up(tmp_path / "a", bucket, prefix, s3server), s3env).returncode == 0
    for key in list_keys(s3client, bucket, prefix):
        s3client.delete_object(Bucket=bucket, Key=key)
    for mode in ("journal", "checksum"):
        again = run_cli(up(tmp_path / "a", bucket, prefix, s3server, "--skip-existing", mode), s3env)
        assert again.returncode == 0
        assert summary_of(again.stdout)["uploaded"] == len(files)
        assert any(e["event"] == "warning" and "destination is empty" in e["message"]
                   for e in json_events(again.stdout))
        assert_landed(s3client, bucket, prefix, files)
        for key in list_keys(s3client, bucket, prefix):
            s3client.delete_object(Bucket=bucket, Key=key)
