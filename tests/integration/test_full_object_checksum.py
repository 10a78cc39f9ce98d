"""Checksums S3 vouches for: multipart objects end with a FULL_OBJECT CRC64NVME equal to the local file's
(also after a kill -9 and a resume over a slow link), and `verify --mode checksum` compares the checksum the
server keeps with the file's without downloading anything, catching an object whose bytes changed behind
mpupload's back with its metadata kept."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3

from awscrt import checksums
from faults.proxy import FaultProxy
from helpers import MIB, json_events, list_keys, run_cli, start_cli, summary_of, wait_for

PARTS = ["--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB"]


def crc64_of(path) -> str:
    """The file's CRC64NVME in S3's form, computed in one pass here (not from parts, as mpupload does)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            crc = checksums.crc64nvme(chunk, crc)
    return base64.b64encode(crc.to_bytes(8, "big")).decode()


def tree(root, *, big: int = 21 * MIB + 7):
    (root / "1944").mkdir(parents=True)
    (root / "1944" / "atlas.tif").write_bytes(os.urandom(big))
    for i in range(5):
        (root / "1944" / f"page-{i}.jp2").write_bytes(os.urandom(3000 + i))
    return root


def head(client, bucket, key):
    return client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def test_a_multipart_object_carries_the_full_object_crc64nvme_of_the_file(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tree(tmp_path / "a")
    out = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--json", *PARTS], s3env)
    assert out.returncode == 0, out.stderr
    s = summary_of(out.stdout)
    assert s["uploaded"] == 6
    assert s["requests"]["multipart_checksum"] == "CRC64NVME FULL_OBJECT"
    h = head(s3client, bucket, f"{prefix}/1944/atlas.tif")
    assert h["ChecksumType"] == "FULL_OBJECT"
    assert h["ChecksumCRC64NVME"] == crc64_of(src / "1944" / "atlas.tif")
    assert h["ETag"].strip('"').endswith("-5")  # five parts: a real multipart upload, not a single PUT


def test_an_explicit_checksum_choice_still_gets_composite_parts(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tree(tmp_path / "a", big=11 * MIB)
    out = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--json", "--checksum", "CRC32", *PARTS], s3env)
    assert out.returncode == 0, out.stderr
    assert summary_of(out.stdout)["requests"]["multipart_checksum"] == "CRC32 COMPOSITE"
    h = head(s3client, bucket, f"{prefix}/1944/atlas.tif")
    assert h["ChecksumCRC32"].endswith("-3") and "ChecksumCRC64NVME" not in h
    # verify --mode checksum recomputes a composite from the part sizes the server reports
    ok = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--mode", "checksum", "--json"], s3env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json_events(ok.stdout)[-1]["metadata_only"] == 0


def test_a_killed_and_resumed_upload_over_a_slow_link_ends_with_the_right_full_object_checksum(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "big"
    (src / "1944").mkdir(parents=True)
    target = src / "1944" / "atlas.tif"
    target.write_bytes(os.urandom(60 * MIB + 11))
    journal = tmp_path / "j.sqlite"
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json",
            "--journal", str(journal), "--processes", "1", "--threads", "1", *PARTS]
    proc = start_cli(args, s3env)

    def journaled_parts() -> int:
        try:
            with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
                return db.execute("SELECT count(*) FROM parts").fetchone()[0]
        except sqlite3.Error:  # not created yet
            return 0

    try:
        wait_for(lambda: journaled_parts() >= 3, timeout=120, what="3 parts journaled", interval=0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    held = journaled_parts()
    assert list_keys(s3client, bucket, prefix) == {}, "finished before the kill"
    again = run_cli(args, s3env)
    assert again.returncode == 0, again.stderr
    s = summary_of(again.stdout)
    assert s["uploaded"] == 1 and s["parts_reused"] >= held
    assert s["bytes_sent"] <= target.stat().st_size - held * 5 * MIB
    # SeaweedFS checks the whole-object CRC against the parts it holds: the journaled CRCs of the parts sent
    # before the kill were combined with this run's, and the result is the file's own.
    h = head(s3client, bucket, f"{prefix}/1944/atlas.tif")
    assert (h["ChecksumType"], h["ChecksumCRC64NVME"]) == ("FULL_OBJECT", crc64_of(target))
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT count(*) FROM parts").fetchone()[0] == 0  # gone with the completed upload


def test_verify_checksum_mode_proves_the_bytes_without_a_get_and_names_a_changed_object(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tree(tmp_path / "a")
    assert run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", *PARTS], s3env).returncode == 0
    seen: list[str] = []
    proxy = FaultProxy(s3server.endpoint_url, refuse=lambda h: seen.append(h.start_line) or False).start()
    try:
        args = ["verify", str(src), f"s3://{bucket}/{prefix}", "--mode", "checksum", "--json",
                "--endpoint-url", proxy.endpoint_url]
        ok = run_cli(args, s3env)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        end = json_events(ok.stdout)[-1]
        assert (end["mode"], end["ok"], end["metadata_only"]) == ("checksum", 6, 0)
        # Object HEADs (a HEAD of the bucket is the lean route's set-up, s3/route.py, not a check).
        heads = [line for line in seen if line.startswith("HEAD ") and f"/{prefix}/" in line]
        gets = [line for line in seen if line.startswith("GET ")]
        assert len(heads) == 6
        # Only the listing: no object was downloaded (nor its attributes asked: FULL_OBJECT and single PUTs).
        assert gets and all("list-type=2" in line for line in gets), gets

        # Other bytes of the same size under the same keys, the metadata kept (the xxh3 in it now lies).
        for rel in ("1944/atlas.tif", "1944/page-2.jp2"):
            key = f"{prefix}/{rel}"
            old = s3client.head_object(Bucket=bucket, Key=key)
            other = os.urandom(old["ContentLength"])
            crc = base64.b64encode(checksums.crc64nvme(other).to_bytes(8, "big")).decode()
            s3client.put_object(Bucket=bucket, Key=key, Body=other, Metadata=old["Metadata"], ChecksumCRC64NVME=crc)
        metadata = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url],
                           s3env)
        assert metadata.returncode == 0  # the metadata alone cannot tell
        seen.clear()
        bad = run_cli(args, s3env)
        assert bad.returncode == 1
        named = {e["key"]: e["detail"] for e in json_events(bad.stdout) if e["event"] == "checksum_mismatch"}
        assert set(named) == {f"{prefix}/1944/atlas.tif", f"{prefix}/1944/page-2.jp2"}
        assert "FULL_OBJECT CRC64NVME" in named[f"{prefix}/1944/atlas.tif"]
        assert all("list-type=2" in line for line in seen if line.startswith("GET "))
    finally:
        proxy.stop()


def test_verify_checksum_mode_says_which_objects_carry_no_checksum(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tree(tmp_path / "a", big=6 * MIB)
    assert run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", *PARTS], s3env).returncode == 0
    key = f"{prefix}/1944/page-0.jp2"
    old = s3client.head_object(Bucket=bucket, Key=key)
    # The same bytes written by a client that sends no checksum (botocore's "when_required"): nothing to compare.
    from botocore.config import Config

    bare = s3server.client(config=Config(request_checksum_calculation="when_required", s3={"addressing_style": "path"}))
    bare.put_object(Bucket=bucket, Key=key, Body=(src / "1944" / "page-0.jp2").read_bytes(), Metadata=old["Metadata"])
    assert not [k for k in head(s3client, bucket, key) if k.startswith("ChecksumCRC")]
    out = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--mode", "checksum"], s3env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 of them carry no checksum S3 keeps" in out.stdout


def test_deep_and_another_mode_together_are_a_usage_error(tmp_path, s3env, bucket, prefix):
    out = run_cli(["verify", str(tmp_path), f"s3://{bucket}/{prefix}", "--deep", "--mode", "checksum"], s3env)
    assert out.returncode == 2 and "contradict" in out.stderr


def test_a_server_that_refuses_full_object_checksums_gets_composite_parts_and_the_run_says_so_once(
        tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tree(tmp_path / "a", big=11 * MIB)
    (src / "1945").mkdir()
    (src / "1945" / "map.tif").write_bytes(os.urandom(7 * MIB))

    def refuse_full_object(h) -> bool:  # as a server that knows no ChecksumType would
        return h.headers.get("x-amz-checksum-type", "").upper() == "FULL_OBJECT"

    proxy = FaultProxy(s3server.endpoint_url, refuse=refuse_full_object).start()
    try:
        out = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--json", "--endpoint-url", proxy.endpoint_url,
                       "--processes", "2", *PARTS], s3env)
    finally:
        proxy.stop()
    assert out.returncode == 0, out.stderr
    s = summary_of(out.stdout)
    assert s["uploaded"] == 7 and s["requests"]["multipart_checksum"] == "CRC32C COMPOSITE"
    said = [e for e in json_events(out.stdout) if "FULL_OBJECT" in json.dumps(e) and e.get("event") != "summary"]
    assert len(said) == 1, said  # once per run, not once per worker or per file
    assert "composite per-part CRC32C" in json.dumps(said[0])
    h = head(s3client, bucket, f"{prefix}/1945/map.tif")
    assert h["ChecksumType"] == "COMPOSITE" and h["ChecksumCRC32C"].endswith("-2")
