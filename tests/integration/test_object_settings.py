"""Object settings on every write path, against moto's server (a second S3 implementation that records
encryption, KMS key ids, Bucket Keys, storage classes, tags, ACLs, metadata and content headers), through a
loopback proxy that records each request's headers (tests/faults/proxy.py): what moto does not model
(SSE-C, the expected bucket owner, requester pays, a bucket policy) is proved on the wire."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from faults.proxy import FaultProxy
from helpers import MIB, json_events, run_cli, summary_of
from moto_fixture import ACCOUNT

KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SMALL_BELOW = 4096
EVERY_SETTING = [
    "--sse", "aws:kms", "--sse-kms-key-id", KMS_KEY, "--sse-bucket-key",
    "--storage-class", "GLACIER_IR", "--small-storage-class", "STANDARD_IA", "--small-object-size", "4KiB",
    "--acl", "public-read", "--tags", "project=atlas&owner=ops team&note=a/b:c%2B1",
    "--metadata", "collection=ajc,batch=7", "--cache-control", "max-age=86400",
    "--content-disposition", "attachment", "--content-encoding", "identity",
    "--expected-bucket-owner", ACCOUNT, "--request-payer", "requester",
]
CONTENT_TYPES = {"1950/page.jp2": "image/jp2", "1950/notes.TXT": "text/plain", "1951/data.csv.gz": "application/gzip",
                 "1951/README": None, "1951/mid.tif": "image/tiff", "big/scan.tif": "image/tiff",
                 "big/film.mov": "video/quicktime"}


class Recorder:
    """The proxy's `refuse` rule, used to watch: keeps (method, target, headers) of every request, and refuses
    (403 AccessDenied) the writes `deny` picks, as a bucket policy would."""

    def __init__(self, deny=None):
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.deny = deny
        self._lock = threading.Lock()

    def __call__(self, head) -> bool:
        method, target = head.start_line.split(" ")[:2]
        with self._lock:
            self.seen.append((method, target, dict(head.headers)))
        return bool(self.deny and self.deny(method, target, head.headers))

    def requests(self, *, method: str | None = None, query: str | None = None, without: str | None = None):
        """Recorded requests by method, by a query parameter they have (query) or lack (without)."""
        out = []
        for m, target, headers in self.seen:
            q = parse_qs(urlsplit(target).query, keep_blank_values=True)
            if (method is None or m == method) and (query is None or query in q) and (without is None or without not in q):
                out.append((m, target, headers))
        return out


def object_writes(rec: Recorder):
    """PutObject (a PUT that is not a part) and CreateMultipartUpload (POST ?uploads) requests."""
    return rec.requests(method="PUT", without="partNumber") + rec.requests(method="POST", query="uploads")


@pytest.fixture
def recorded(motoserver):
    """A recording proxy in front of moto (tests set rec.deny to refuse writes)."""
    rec = Recorder()
    proxy = FaultProxy(motoserver.endpoint_url, refuse=rec).start()
    yield proxy, rec
    proxy.stop()


def _archive(root: Path) -> dict[str, Path]:
    """Small files (below and above --small-object-size) and two multipart files (threshold 1 MiB, 5 MiB parts)."""
    sizes = {"1950/page.jp2": 1000, "1950/notes.TXT": 10, "1951/data.csv.gz": 3000, "1951/README": 0,
             "1951/mid.tif": 64 * 1024, "big/scan.tif": 11 * MIB, "big/film.mov": 6 * MIB}
    files = {}
    for rel, size in sizes.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        files[rel] = p
    return files


def _upload(src: Path, dest: str, env: dict, endpoint: str, *extra: str):
    return run_cli(["upload", str(src), dest, "--endpoint-url", endpoint, "--json", "--processes", "2",
                    "--multipart-threshold", "1MiB", "--multipart-chunksize", "5MiB", *extra], env)


@pytest.mark.parametrize("path", ["lean", "botocore"])
def test_every_setting_lands_on_every_object(path, tmp_path, recorded, moto_client, moto_bucket, motoenv, prefix):
    proxy, rec = recorded
    files = _archive(tmp_path / "src")
    fast = [] if path == "lean" else ["--no-fast-put"]
    dest = f"s3://{moto_bucket}/{prefix}"
    r = _upload(tmp_path / "src", dest, motoenv, proxy.endpoint_url, *EVERY_SETTING, *fast)
    assert r.returncode == 0, r.stderr + r.stdout
    summary = summary_of(r.stdout)
    assert summary["uploaded"] == len(files) and summary["failed"] == 0
    requests = summary["requests"]
    if path == "lean":  # the lean PUT carried every setting itself: nothing handed to botocore
        assert requests["lean"] >= len(files) and requests["botocore"] == 0 and requests["declined"] == 0, requests
    else:
        assert requests["lean"] == 0 and requests["botocore"] >= len(files), requests

    for rel, local in files.items():
        key = f"{prefix}/{rel}"
        head = moto_client.head_object(Bucket=moto_bucket, Key=key)
        size = local.stat().st_size
        assert head["ServerSideEncryption"] == "aws:kms", rel
        assert head["SSEKMSKeyId"] == KMS_KEY, rel
        assert head["StorageClass"] == ("STANDARD_IA" if size < SMALL_BELOW else "GLACIER_IR"), rel
        assert head.get("ContentType") == (CONTENT_TYPES[rel] or head.get("ContentType")), rel
        if CONTENT_TYPES[rel] is None:
            assert head.get("ContentType") != "text/plain"  # no guess from the host's tables for a bare name
        assert head["CacheControl"] == "max-age=86400" and head["ContentDisposition"] == "attachment", rel
        assert head["ContentEncoding"] == "identity", rel
        meta = head["Metadata"]
        assert meta["collection"] == "ajc" and meta["batch"] == "7", rel
        assert meta["source-path"] == rel and "xxh3-128" in meta, rel
        if size < MIB:  # moto keeps the Bucket Key of PutObject only; multipart creates are checked on the wire
            assert head.get("BucketKeyEnabled") is True, rel
        tags = moto_client.get_object_tagging(Bucket=moto_bucket, Key=key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {"project": "atlas", "owner": "ops team", "note": "a/b:c+1"}, rel
        grants = moto_client.get_object_acl(Bucket=moto_bucket, Key=key)["Grants"]
        assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants), rel

    # On the wire: every object write (PutObject, CreateMultipartUpload: the probes' too) carried the
    # encryption, Bucket Key, ACL and tags; every request the owner and (where S3 takes it) requester pays.
    writes = object_writes(rec)
    assert len(writes) >= len(files) + 1  # + the preflight's write probe
    for _m, target, h in writes:
        assert h.get("x-amz-server-side-encryption") == "aws:kms", target
        assert h.get("x-amz-server-side-encryption-aws-kms-key-id") == KMS_KEY, target
        assert h.get("x-amz-server-side-encryption-bucket-key-enabled") == "true", target
        assert h.get("x-amz-acl") == "public-read" and "x-amz-tagging" in h, target
    # 11 MiB and 6 MiB in 5 MiB parts (the FULL_OBJECT probe's one part aside, s3/fullprobe.py)
    parts = [r for r in rec.requests(method="PUT", query="partNumber") if ".mpupload-" not in r[1]]
    assert len(parts) == 3 + 2
    for m, target, h in rec.seen:
        assert h.get("x-amz-expected-bucket-owner") == ACCOUNT, (m, target)
        if not (m == "HEAD" and urlsplit(target).path.strip("/") == moto_bucket):  # HeadBucket takes no payer
            assert h.get("x-amz-request-payer") == "requester", (m, target)

    # A rerun uploads nothing; verify (with the owner and payer) passes.
    again = _upload(tmp_path / "src", dest, motoenv, proxy.endpoint_url, *EVERY_SETTING, *fast)
    assert again.returncode == 0, again.stderr
    s2 = summary_of(again.stdout)
    assert s2["uploaded"] == 0 and s2["skipped"] == len(files), s2
    check = run_cli(["verify", str(tmp_path / "src"), dest, "--endpoint-url", proxy.endpoint_url, "--json",
                     "--expected-bucket-owner", ACCOUNT, "--request-payer", "requester"], motoenv)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json_events(check.stdout)[-1]["ok"] == len(files)


def test_report_and_dry_run_show_the_settings_in_force(tmp_path, moto_bucket, motoenv, motoserver, prefix):
    _archive(tmp_path / "src")
    dest = f"s3://{moto_bucket}/{prefix}"
    dry = _upload(tmp_path / "src", dest, motoenv, motoserver.endpoint_url, *EVERY_SETTING, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    plan = next(e for e in json_events(dry.stdout) if e.get("event") == "plan")
    shown = plan["object_settings"]
    assert shown["sse"] == "aws:kms" and shown["sse_kms_key_id"] == KMS_KEY and shown["sse_bucket_key"] is True
    assert shown["storage_class"] == "GLACIER_IR"
    assert shown["small_storage_class"] == {"class": "STANDARD_IA", "below_bytes": 4096, "below": "4.0 KiB"}
    assert shown["tags"] == {"project": "atlas", "owner": "ops team", "note": "a/b:c+1"}
    assert shown["acl"] == "public-read" and shown["request_payer"] == "requester"
    human = _upload(tmp_path / "src", dest, motoenv, motoserver.endpoint_url, *EVERY_SETTING, "--dry-run")
    assert human.returncode == 0
    real = _upload(tmp_path / "src", dest, motoenv, motoserver.endpoint_url, *EVERY_SETTING,
                   "--content-type", "application/x-archive", "--report", str(tmp_path / "report"))
    assert real.returncode == 0, real.stderr
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["object_settings"]["sse"] == "aws:kms"
    assert doc["object_settings"]["content_type"] == "application/x-archive"
    assert doc["object_settings"]["expected_bucket_owner"] == ACCOUNT


def test_content_type_override(tmp_path, moto_client, moto_bucket, motoenv, motoserver, prefix):
    _archive(tmp_path / "src")
    r = _upload(tmp_path / "src", f"s3://{moto_bucket}/{prefix}", motoenv, motoserver.endpoint_url,
                "--content-type", "application/x-scan")
    assert r.returncode == 0, r.stderr
    for rel in CONTENT_TYPES:
        assert moto_client.head_object(Bucket=moto_bucket, Key=f"{prefix}/{rel}")["ContentType"] == "application/x-scan"


def _needs_kms(method: str, target: str, headers: dict) -> bool:
    """'Deny s3:PutObject unless x-amz-server-side-encryption is aws:kms' (AWS's recommended policy), for
    PutObject and CreateMultipartUpload."""
    q = parse_qs(urlsplit(target).query, keep_blank_values=True)
    write = (method == "PUT" and "partNumber" not in q) or (method == "POST" and "uploads" in q)
    return write and headers.get("x-amz-server-side-encryption") != "aws:kms"


def test_a_bucket_policy_requiring_kms_passes_the_probes(tmp_path, recorded, moto_client, moto_bucket, motoenv,
                                                         prefix):
    proxy, rec = recorded
    rec.deny = _needs_kms
    files = _archive(tmp_path / "src")
    dest = f"s3://{moto_bucket}/{prefix}"
    bare = _upload(tmp_path / "src", dest, motoenv, proxy.endpoint_url)
    assert bare.returncode == 3 and "permission" in bare.stderr.lower(), bare.stderr  # the preflight says why
    assert "Contents" not in moto_client.list_objects_v2(Bucket=moto_bucket, Prefix=prefix + "/")
    start = len(rec.seen)
    r = _upload(tmp_path / "src", dest, motoenv, proxy.endpoint_url, "--sse", "aws:kms")
    assert r.returncode == 0, r.stderr + r.stdout
    assert summary_of(r.stdout)["uploaded"] == len(files)
    # Nothing of this run was refused: not the write probe, not the checksum probe (a refused checksum probe
    # would pass for "the server does not check XXHASH128" and quietly change the transport checksum).
    after = rec.seen[start:]
    assert not [(m, t) for m, t, h in after if _needs_kms(m, t, h)]
    probes = [t for m, t, _h in after if m == "PUT" and ".mpupload-checksum-probe" in t]
    assert probes  # moto takes the first, wrong, XXHASH128 (it does not check them): one PUT may be all
    assert "does not validate XXHASH128 (it refused a correct" not in r.stdout


# -- SSE-C -------------------------------------------------------------------------------------------------

SSE_C_OPS = ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload", "HeadObject", "GetObject")


def _operation(method: str, target: str, bucket: str) -> str:
    q = parse_qs(urlsplit(target).query, keep_blank_values=True)
    on_object = urlsplit(target).path.strip("/") != bucket
    if method == "PUT":
        return "UploadPart" if "partNumber" in q else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in q else "CompleteMultipartUpload" if "uploadId" in q else "POST"
    if method == "HEAD":
        return "HeadObject" if on_object else "HeadBucket"
    if method == "GET" and on_object:
        return "ListParts" if "uploadId" in q else "GetObject"
    return method


def test_sse_c_key_goes_with_every_request_and_nowhere_else(tmp_path, recorded, moto_bucket, motoenv, prefix):
    proxy, rec = recorded
    key = os.urandom(32)
    key_file = tmp_path / "sse-c.key"
    key_file.write_text(base64.b64encode(key).decode() + "\n")
    key_b64 = base64.b64encode(key).decode()
    md5_b64 = base64.b64encode(hashlib.md5(key).digest()).decode()
    files = _archive(tmp_path / "src")
    dest = f"s3://{moto_bucket}/{prefix}"
    log = tmp_path / "run.log"
    journal = tmp_path / "journal.sqlite"
    outputs = []
    for fast in ([], ["--no-fast-put"]):
        r = _upload(tmp_path / "src", dest, motoenv, proxy.endpoint_url, "--sse-c-key-file", str(key_file),
                    "--log-file", str(log), "--journal", str(journal), "--report", str(tmp_path / "report"),
                    "--skip-existing", "checksum", *fast)
        assert r.returncode == 0, r.stderr + r.stdout
        outputs.append(r)
        journal.unlink()  # the second run finds the objects by HEAD (with the key) and skips them
        journal.with_name(journal.name + "-wal").unlink(missing_ok=True)
    assert summary_of(outputs[0].stdout)["uploaded"] == len(files)
    assert summary_of(outputs[1].stdout)["skipped"] == len(files)
    assert "unencrypted" in outputs[0].stderr  # SSE-C over plain http is said, once
    deep = run_cli(["verify", str(tmp_path / "src"), dest, "--endpoint-url", proxy.endpoint_url, "--deep",
                    "--sse-c-key-file", str(key_file)], motoenv)
    assert deep.returncode == 0, deep.stdout + deep.stderr

    seen_ops = set()
    for method, target, h in rec.seen:
        op = _operation(method, target, moto_bucket)
        if op in SSE_C_OPS and ".mpupload-" not in target:
            seen_ops.add(op)
            assert h.get("x-amz-server-side-encryption-customer-algorithm") == "AES256", (op, target)
            assert h.get("x-amz-server-side-encryption-customer-key") == key_b64, (op, target)
            assert h.get("x-amz-server-side-encryption-customer-key-md5") == md5_b64, (op, target)
    assert seen_ops == set(SSE_C_OPS), seen_ops

    # Never printed, logged or stored: not as bytes, base64 or hex, anywhere the runs wrote.
    forms = [key, key_b64.encode(), key.hex().encode(), base64.b64encode(key).rstrip(b"=")]
    written = [r.stdout.encode() + r.stderr.encode() for r in (*outputs, deep)]
    written += [p.read_bytes() for p in (tmp_path / "report").rglob("*") if p.is_file()]
    written += [log.read_bytes()]
    written += [p.read_bytes() for p in tmp_path.glob("journal.sqlite*")]
    written += [p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file()] if (tmp_path / "state").exists() else []
    for blob in written:
        for form in forms:
            assert form not in blob
    show = run_cli(["config", "show", "--json", "--sse-c-key-file", str(key_file)], motoenv)
    assert show.returncode == 0 and key_b64 not in show.stdout
    assert json.loads(show.stdout)["settings"]["sse_c_key_file"]["value"] == str(key_file)


# -- usage errors: exit 2 before any request ---------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--sse-kms-key-id", "k"], "--sse-kms-key-id needs --sse aws:kms"),
    (["--sse", "AES256", "--sse-bucket-key"], "--sse-bucket-key needs --sse aws:kms"),
    (["--sse", "AES256", "--sse-c-key-file", "{key}"], "give one"),
    (["--sse-c-key-file", "{short}"], "does not hold a 256-bit key"),
    (["--sse-c-key-file", "{missing}"], "cannot read"),
    (["--sse", "rot13"], "rot13"),
    (["--storage-class", "COLD"], "COLD"),
    (["--small-object-size", "1KiB"], "--small-object-size needs --small-storage-class"),
    (["--acl", "everyone"], "everyone"),
    (["--tags", "project"], "is not KEY=VALUE"),
    (["--tags", "a=1&a=2"], "given twice"),
    (["--tags", "note=a%26b"], "S3 allows only"),
    (["--metadata", "bad name=1"], "not a valid name"),
    (["--metadata", "a=caf\u00e9"], "printable ASCII"),
    (["--expected-bucket-owner", "12345"], "12-digit"),
    (["--request-payer", "owner"], "owner"),
    (["--cache-control", "a\u00e9"], "printable ASCII"),
])
def test_bad_object_settings_are_usage_errors(args, says, tmp_path, motoenv):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "key").write_bytes(os.urandom(32))
    (tmp_path / "short").write_bytes(b"0123456789abcdef" * 3)
    args = [a.format(key=tmp_path / "key", short=tmp_path / "short", missing=tmp_path / "nope") for a in args]
    # A closed port: a request would be a connection error (exit 3), not this usage error.
    r = run_cli(["upload", str(tmp_path / "src"), "s3://bucket/p", "--endpoint-url", "http://127.0.0.1:9", *args],
                motoenv)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr, r.stderr
    assert "0123456789abcdef" not in r.stderr  # a key file's content never ends up in a message


def test_object_settings_from_a_settings_file_and_the_environment(tmp_path, motoenv, moto_client, moto_bucket,
                                                                  motoserver, prefix):
    _archive(tmp_path / "src")
    cfg = tmp_path / "mpupload.toml"
    cfg.write_text('storage_class = "STANDARD_IA"\ntags = "from=file"\nmetadata = "{\\"origin\\": \\"file\\"}"\n')
    env = {**motoenv, "MPUPLOAD_SSE": "AES256", "MPUPLOAD_CACHE_CONTROL": "no-cache"}
    show = run_cli(["config", "show", "--json", "--config", str(cfg)], env)
    assert show.returncode == 0, show.stderr
    rows = json.loads(show.stdout)["settings"]
    assert rows["sse"] == {"value": "AES256", "origin": "environment MPUPLOAD_SSE"}
    assert rows["storage_class"]["value"] == "STANDARD_IA" and "config file" in rows["storage_class"]["origin"]
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{moto_bucket}/{prefix}", "--config", str(cfg), "--json",
                 "--endpoint-url", motoserver.endpoint_url, "--multipart-threshold", "1MiB",
                 "--multipart-chunksize", "5MiB"], env)
    assert r.returncode == 0, r.stderr
    for rel in CONTENT_TYPES:
        head = moto_client.head_object(Bucket=moto_bucket, Key=f"{prefix}/{rel}")
        assert head["ServerSideEncryption"] == "AES256" and head["StorageClass"] == "STANDARD_IA", rel
        assert head["CacheControl"] == "no-cache" and head["Metadata"]["origin"] == "file", rel
        tags = moto_client.get_object_tagging(Bucket=moto_bucket, Key=f"{prefix}/{rel}")["TagSet"]
        assert tags == [{"Key": "from", "Value": "file"}], rel
