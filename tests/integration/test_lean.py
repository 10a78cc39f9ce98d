"""The lean signed PUT against the real server (which enforces SigV4 and checks x-amz-checksum-*):
it must store exactly what botocore would, for awkward keys too, along the route botocore resolved, and
decline rather than guess."""

from __future__ import annotations

import pytest
import xxhash

from mpupload.core.hashing import TransportChecksum
from mpupload.s3.client import make_client
from mpupload.s3.lean import REFUSED, TLS, Declined, LeanPut
from mpupload.s3.route import resolve
from mpupload.settings.config import Settings

KEYS = ["plain/a.bin", "1950/Ünïcödé — naïve café/日本語 ページ.tif", "loose file with spaces & symbols (1).txt",
        "odd/chars+=,;@!$'()*~%.dat", "deep/a/b/c/d/e/f/g/h.jp2"]


def _creds(server):
    from botocore.credentials import Credentials

    return Credentials(server.access_key, server.secret_key)


def _lean_for(client, bucket, credentials) -> LeanPut:
    return LeanPut(route=resolve(client, bucket=bucket), credentials=credentials, connect_timeout=5, read_timeout=30)


@pytest.fixture
def fast(s3server, s3env, bucket, monkeypatch):
    for k, v in s3env.items():
        monkeypatch.setenv(k, v)
    client = make_client(Settings(endpoint_url=s3server.endpoint_url, bucket=bucket))
    return _lean_for(client, bucket, _creds(s3server))


@pytest.mark.parametrize("key", KEYS)
def test_stores_body_metadata_and_checksum(fast, s3client, bucket, prefix, key):
    body = xxhash.xxh3_128_digest(key.encode()) * 1000
    crc = TransportChecksum("CRC32").of(body)
    etag = fast.put(key=f"{prefix}/{key}", body=body,
                    headers={"x-amz-meta-xxh3-128": xxhash.xxh3_128_hexdigest(body), "content-type": "image/tiff",
                             "x-amz-checksum-crc32": crc})
    obj = s3client.get_object(Bucket=bucket, Key=f"{prefix}/{key}", ChecksumMode="ENABLED")
    assert obj["Body"].read() == body
    assert obj["Metadata"]["xxh3-128"] == xxhash.xxh3_128_hexdigest(body)
    assert obj["ContentType"] == "image/tiff"
    assert obj["ETag"].strip('"') == etag


def test_a_wrong_checksum_is_declined_not_stored(fast, s3client, bucket, prefix):
    with pytest.raises(Declined) as declined:
        fast.put(key=f"{prefix}/bad", body=b"hello",
                 headers={"x-amz-checksum-crc32": TransportChecksum("CRC32").of(b"other")})
    assert declined.value.reason == REFUSED and declined.value.status == 400
    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/bad")


def _wrong_secret(s3server, client, bucket) -> LeanPut:
    """A lean PUT that signs with a wrong secret: the server refuses every request it sends."""

    class Frozen:
        access_key, secret_key, token = s3server.access_key, "wrong", None

    class Creds:
        def get_frozen_credentials(self):
            return Frozen()

    return _lean_for(client, bucket, Creds())


def test_wrong_secret_and_missing_bucket_are_declined(s3server, s3client, bucket, prefix):
    with pytest.raises(Declined):
        _lean_for(s3client, "no-such-bucket-here", _creds(s3server)).put(
            key="k", body=b"x", headers={})
    with pytest.raises(Declined):
        _wrong_secret(s3server, s3client, bucket).put(key=f"{prefix}/x", body=b"x", headers={})


def test_route_from_aws_endpoint_url_alone(s3server, s3env, bucket, prefix, monkeypatch):
    """No --endpoint-url: botocore finds AWS_ENDPOINT_URL itself, and so does the lean route."""
    for k, v in s3env.items():
        monkeypatch.setenv(k, v)
    client = make_client(Settings(bucket=bucket))
    route = resolve(client, bucket=bucket)
    assert (route.scheme, route.host_header, route.base_path) == ("http", s3server.endpoint_url[7:], f"/{bucket}")
    lean = _lean_for(client, bucket, _creds(s3server))
    assert lean.put(key=f"{prefix}/env", body=b"env", headers={})


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
    creds = _creds(tls_server)
    route = resolve(client, bucket="tls", ca_bundle=str(tls_server.cert_file))
    fp = LeanPut(route=route, credentials=creds, connect_timeout=5, read_timeout=30)
    body = b"over tls" * 1000
    fp.put(key="a/b c.bin", body=body, headers={"x-amz-checksum-crc32": TransportChecksum("CRC32").of(body)})
    assert client.get_object(Bucket="tls", Key="a/b c.bin")["Body"].read() == body
    # An unverifiable certificate is declined, not ignored.
    strict = LeanPut(route=resolve(client, bucket="tls"), credentials=creds, connect_timeout=5, read_timeout=30)
    with pytest.raises(Declined) as declined:
        strict.put(key="x", body=b"x", headers={})
    assert declined.value.reason == TLS


def _multipart(client, fast, bucket, key, path, size, part=5 * 1024 * 1024, checksum="CRC32"):
    """The worker's multipart path (no journal: a failure aborts the upload) with `fast` for the parts."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mpupload.worker.fileupload import FileUploader
    from mpupload.worker.results import ResultSender

    class Sent:
        def __init__(self):
            self.n = 0

        def put(self, report):
            self.n += report.bytes_sent

    from mpupload.s3.transport import Transport

    sent = Sent()
    settings = Settings(bucket=bucket, multipart_chunksize=part, multipart_threshold=part, checksum=checksum).validated()
    sender = ResultSender(sent, 0)
    stop = threading.Event()
    transport = Transport(client=client, settings=settings, stop=stop, lean=fast)
    with ThreadPoolExecutor(4) as parts:
        up = FileUploader(client=client, parts_pool=parts, settings=settings, sender=sender, stop=stop,
                          transport=transport)
        up.multipart.upload(path=str(path), key=key, size=size, mtime_ns=0, inode=0, digest="d",
                            extra={"Metadata": {"xxh3-128": "d"}})
    sender.flush()
    return sent.n, {f"{kind}.{detail}" if detail else kind: n for kind, detail, n in transport.take_counts()}


def test_multipart_parts_fall_back_to_botocore_when_declined(s3server, s3client, bucket, prefix, tmp_path):
    import os

    bad = _wrong_secret(s3server, s3client, bucket)
    data = os.urandom(11 * 1024 * 1024 + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sent, counts = _multipart(s3client, bad, bucket, f"{prefix}/big.bin", src, len(data))
    assert sent == len(data)
    assert counts == {"declined.refused": 3, "botocore": 3, "multipart_checksum.CRC32 COMPOSITE": 1}
    obj = s3client.get_object(Bucket=bucket, Key=f"{prefix}/big.bin")
    assert obj["Body"].read() == data and obj["ETag"].strip('"').endswith("-3")
    assert obj["Metadata"]["xxh3-128"] == "d"


def test_lean_parts_carry_crc64nvme_and_the_upload_a_full_object_checksum(fast, s3client, bucket, prefix, tmp_path):
    import base64
    import os

    from awscrt import checksums

    data = os.urandom(11 * 1024 * 1024 + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sent, counts = _multipart(s3client, fast, bucket, f"{prefix}/big.bin", src, len(data), checksum="CRC64NVME")
    # All three parts lean: SeaweedFS refuses a part of a CRC64NVME upload without its x-amz-checksum-crc64nvme
    # (InvalidRequest), which the lean path would have handed to botocore (a decline).
    assert sent == len(data)
    assert counts == {"lean": 3, "multipart_checksum.CRC64NVME FULL_OBJECT": 1}
    head = s3client.head_object(Bucket=bucket, Key=f"{prefix}/big.bin", ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert head["ChecksumCRC64NVME"] == base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode()


def test_multipart_of_a_file_that_shrank_is_aborted(fast, s3client, bucket, prefix, tmp_path):
    from mpupload.core.errors import FileChanged

    src = tmp_path / "shrunk.bin"
    src.write_bytes(b"x" * (6 * 1024 * 1024))
    with pytest.raises(FileChanged):
        _multipart(s3client, fast, bucket, f"{prefix}/shrunk.bin", src, 12 * 1024 * 1024)
    assert not s3client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/").get("Uploads")
    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/shrunk")
