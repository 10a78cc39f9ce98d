"""The lean signed PUT against the real server (which enforces SigV4 and checks x-amz-checksum-*):
it must store exactly what botocore would, for awkward keys too, and decline rather than guess."""

from __future__ import annotations

import pytest
import xxhash

from mpupload.config import Settings
from mpupload.fastput import Declined, FastPut, for_client
from mpupload.hashing import TransportChecksum
from mpupload.remote import make_client

KEYS = ["plain/a.bin", "1950/Ünïcödé — naïve café/日本語 ページ.tif", "loose file with spaces & symbols (1).txt",
        "odd/chars+=,;@!$'()*~%.dat", "deep/a/b/c/d/e/f/g/h.jp2"]


@pytest.fixture
def fast(s3server, s3env, monkeypatch):
    for k, v in s3server.env().items():
        monkeypatch.setenv(k, v)
    client = make_client(Settings(endpoint_url=s3server.endpoint_url))
    fp = for_client(client, endpoint_url=s3server.endpoint_url, connect_timeout=5, read_timeout=30, verify=True)
    assert fp is not None
    return fp


@pytest.mark.parametrize("key", KEYS)
def test_stores_body_metadata_and_checksum(fast, s3client, bucket, prefix, key):
    body = xxhash.xxh3_128_digest(key.encode()) * 1000
    crc = TransportChecksum("CRC32").of(body)
    etag = fast.put(bucket=bucket, key=f"{prefix}/{key}", body=body,
                    headers={"x-amz-meta-xxh3-128": xxhash.xxh3_128_hexdigest(body), "content-type": "image/tiff",
                             "x-amz-checksum-crc32": crc})
    obj = s3client.get_object(Bucket=bucket, Key=f"{prefix}/{key}", ChecksumMode="ENABLED")
    assert obj["Body"].read() == body
    assert obj["Metadata"]["xxh3-128"] == xxhash.xxh3_128_hexdigest(body)
    assert obj["ContentType"] == "image/tiff"
    assert obj["ETag"].strip('"') == etag


def test_a_wrong_checksum_is_declined_not_stored(fast, s3client, bucket, prefix):
    with pytest.raises(Declined):
        fast.put(bucket=bucket, key=f"{prefix}/bad", body=b"hello",
                 headers={"x-amz-checksum-crc32": TransportChecksum("CRC32").of(b"other")})
    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/bad")


def _wrong_secret(s3server) -> FastPut:
    """A lean PUT that signs with a wrong secret: the server refuses every request it sends."""

    class Frozen:
        access_key, secret_key, token = s3server.access_key, "wrong", None

    class Creds:
        def get_frozen_credentials(self):
            return Frozen()

    return FastPut(endpoint_url=s3server.endpoint_url, region="us-east-1", credentials=Creds(), connect_timeout=5,
                   read_timeout=30)


def test_wrong_secret_and_missing_bucket_are_declined(s3server, fast, bucket, prefix):
    with pytest.raises(Declined):
        fast.put(bucket="no-such-bucket-here", key="k", body=b"x", headers={})

    bad = _wrong_secret(s3server)
    with pytest.raises(Declined):
        bad.put(bucket=bucket, key=f"{prefix}/x", body=b"x", headers={})


def test_no_fast_path_without_an_explicit_endpoint(s3server):
    client = s3server.client()
    assert for_client(client, endpoint_url=None, connect_timeout=5, read_timeout=30, verify=True) is None


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    from mpupload import localserver

    server = localserver.start(tmp_path_factory.mktemp("seaweedfs-tls"), https=True)
    yield server
    server.stop()


def test_over_tls_with_a_ca_bundle(tls_server):
    from botocore.config import Config

    client = tls_server.client(endpoint_url=tls_server.https_url, verify=str(tls_server.cert_file),
                               config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket="tls")
    fp = for_client(client, endpoint_url=tls_server.https_url, connect_timeout=5, read_timeout=30,
                    verify=str(tls_server.cert_file))
    body = b"over tls" * 1000
    fp.put(bucket="tls", key="a/b c.bin", body=body,
           headers={"x-amz-checksum-crc32": TransportChecksum("CRC32").of(body)})
    assert client.get_object(Bucket="tls", Key="a/b c.bin")["Body"].read() == body
    # An unverifiable certificate is declined, not ignored.
    strict = for_client(client, endpoint_url=tls_server.https_url, connect_timeout=5, read_timeout=30, verify=True)
    with pytest.raises(Declined):
        strict.put(bucket="tls", key="x", body=b"x", headers={})


def _multipart(client, fast, bucket, key, path, size, part=5 * 1024 * 1024):
    """The worker's multipart path (no journal: a failure aborts the upload) with `fast` for the parts."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mpupload.worker import FileUploader, ResultSender

    class Sent:
        def __init__(self):
            self.n = 0

        def put(self, report):
            self.n += report.bytes_sent

    sent = Sent()
    settings = Settings(bucket=bucket, multipart_chunksize=part, multipart_threshold=part).validated()
    sender = ResultSender(sent, 0)
    with ThreadPoolExecutor(4) as parts:
        up = FileUploader(client=client, parts_pool=parts, settings=settings, sender=sender, stop=threading.Event(),
                          fast=fast)
        up.multipart.upload(path=str(path), key=key, size=size, mtime_ns=0, inode=0, digest="d",
                            extra={"Metadata": {"xxh3-128": "d"}})
    sender.flush()
    return sent.n


def test_multipart_parts_fall_back_to_botocore_when_declined(s3server, s3client, bucket, prefix, tmp_path):
    import os

    bad = _wrong_secret(s3server)
    data = os.urandom(11 * 1024 * 1024 + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    assert _multipart(s3client, bad, bucket, f"{prefix}/big.bin", src, len(data)) == len(data)
    obj = s3client.get_object(Bucket=bucket, Key=f"{prefix}/big.bin")
    assert obj["Body"].read() == data and obj["ETag"].strip('"').endswith("-3")
    assert obj["Metadata"]["xxh3-128"] == "d"


def test_multipart_of_a_file_that_shrank_is_aborted(fast, s3client, bucket, prefix, tmp_path):
    from mpupload.errors import FileChanged

    src = tmp_path / "shrunk.bin"
    src.write_bytes(b"x" * (6 * 1024 * 1024))
    with pytest.raises(FileChanged):
        _multipart(s3client, fast, bucket, f"{prefix}/shrunk.bin", src, 12 * 1024 * 1024)
    assert not s3client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/").get("Uploads")
    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/shrunk")
