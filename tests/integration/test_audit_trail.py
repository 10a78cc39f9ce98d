"""The audit trail: each uploaded object's ETag, the checksum S3 returned, its version id (versioned
bucket) and storage class, in --log-file lines and report.json, equal to what S3 holds."""

from __future__ import annotations

import json

from helpers import run_cli, summary_of

MIB = 1024 * 1024


def test_version_ids_etags_and_classes_in_log_and_report(tmp_path, s3client, s3server, s3env, prefix):
    bucket = f"t-versioned-{prefix[-6:].strip('-').lower()}"
    s3client.create_bucket(Bucket=bucket)
    s3client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    src = tmp_path / "src"
    (src / "1970").mkdir(parents=True)
    (src / "1970" / "small.jp2").write_bytes(b"s" * 4000)
    (src / "1970" / "big.bin").write_bytes(b"b" * (6 * MIB + 3))
    log, report = tmp_path / "run.jsonl", tmp_path / "report"
    for fast in (["--fast-put"], ["--no-fast-put"]):  # the lean PUT and botocore both report what S3 said
        r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}{fast[0]}", "--endpoint-url", s3server.endpoint_url,
                     "--json", "--multipart-threshold", "5MB", "--multipart-chunksize", "5MB", "--log-file", str(log),
                     "--report", str(report / fast[0].strip("-")), *fast], s3env)
        assert r.returncode == 0 and summary_of(r.stdout)["uploaded"] == 2, r.stdout + r.stderr
    lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    uploaded = [x for x in lines if x["event"] == "file" and x["status"] == "uploaded"]
    assert len(uploaded) == 4
    for line in uploaded:
        head = s3client.head_object(Bucket=bucket, Key=line["key"])
        assert line["version_id"] and line["version_id"] == head["VersionId"], line
        assert line["etag"] == head["ETag"].strip('"'), line
        assert line["storage_class"] == head.get("StorageClass", "STANDARD")
        assert line["source_path"] == "percent-encoded"
        # The checksum S3 returned on the upload is the one it keeps (HEAD with checksum mode).
        algorithm, _, value = line["checksum"].partition(":")
        stored = s3client.head_object(Bucket=bucket, Key=line["key"], ChecksumMode="ENABLED")
        assert value and stored.get(f"Checksum{algorithm}") == value, (line, stored)
    for name in ("fast-put", "no-fast-put"):
        doc = json.loads((report / name / "report.json").read_text(encoding="utf-8"))
        audit = doc["audit"]
        assert (audit["uploaded"], audit["versioned"], audit["objects_listed"]) == (2, 2, 2)
        assert audit["storage_class"] == {"STANDARD": 2}
        logged = {x["key"]: x for x in uploaded}
        for obj in audit["objects"]:
            mine = logged[obj["key"]]
            assert (obj["etag"], obj["version_id"], obj["checksum"]) == \
                (mine["etag"], mine["version_id"], mine["checksum"])
