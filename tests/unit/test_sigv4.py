"""The lean PUT's signature against botocore's own S3SigV4Auth on an AWSRequest, at a fixed clock: same URL,
same signed headers, same signature, for path-style and virtual-hosted AWS endpoints, odd keys, metadata,
query strings (parts) and a session token."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mpupload.s3.lean import LeanPut
from mpupload.s3.route import Route
from mpupload.s3.sigv4 import canonical_query

NOW = datetime.datetime(2026, 3, 14, 15, 9, 26, tzinfo=datetime.timezone.utc)
KEYS = ["plain/a.bin", "1950/Ünïcödé — naïve café/日本語 ページ.tif", "spaces & symbols (1).txt",
        "odd/chars+=,;@!$'()*~%.dat", "dots/./and/../x", "double//slash", "trailing/", "tilde~and%41"]
ROUTES = {
    "aws-virtual": Route(scheme="https", host="archive-bucket.s3.eu-west-1.amazonaws.com", port=443, base_path="",
                         region="eu-west-1", service="s3", verify=True),
    "aws-path": Route(scheme="https", host="s3.us-east-2.amazonaws.com", port=443, base_path="/my.dotted.bucket",
                      region="us-east-2", service="s3", verify=True),
    "local-path-http": Route(scheme="http", host="127.0.0.1", port=8333, base_path="/bucket", region="us-east-1",
                             service="s3", verify=False),
    "virtual-http-port": Route(scheme="http", host="b.s3.test", port=9000, base_path="", region="auto",
                               service="s3", verify=False),
}


def _botocore_signed(*, url: str, headers: dict[str, str], body: bytes, creds: Credentials, region: str,
                     client_config=None) -> dict:
    req = AWSRequest(method="PUT", url=url, headers=dict(headers), data=body)
    # What botocore's PutObject/UploadPart set: a streaming body and our checksum as a header.
    req.context.update({"has_streaming_input": True, "client_config": client_config,
                        "checksum": {"request_algorithm": {"in": "header", "name": "x-amz-checksum-crc32"}}})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(creds, "s3", region).add_auth(req)
    return {k.lower(): v for k, v in req.headers.items()}


@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDOdd+token/with=chars"])
@pytest.mark.parametrize("query", [None, {"partNumber": "7", "uploadId": "2~Abc_def-XYZ.12/+="}])
def test_same_signature_as_botocore(route, key, token, query):
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = b"the same bytes botocore would send\n" * 100
    extra = {"x-amz-meta-xxh3-128": "0123456789abcdef0123456789abcdef", "x-amz-meta-source-path": "a%20b/c.tif",
             "x-amz-meta-source-mtime": "1700000000.123456789", "content-type": "image/tiff",
             "x-amz-checksum-crc32": "  AAAAAA==  "}
    lean = LeanPut(route=route, credentials=creds, connect_timeout=1, read_timeout=1)
    target, ours = lean.signed_headers(key=key, body=body, headers=dict(extra), query=query,
                                       date=NOW.strftime("%Y%m%dT%H%M%SZ"))
    url = f"{route.scheme}://{route.host_header}{target}"
    theirs = _botocore_signed(url=url, headers=extra, body=body, creds=creds, region=route.region)

    assert ours["authorization"] == theirs["authorization"]
    for name in ("x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
        assert ours.get(name) == theirs.get(name), name
    signed = ours["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "host" in signed and "x-amz-meta-source-path" in signed
    assert ("x-amz-security-token" in signed) == (token is not None)
    # Over TLS with a checksum header the body is not hashed (as botocore); over http it is.
    assert (ours["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD") == route.https


def test_url_is_what_botocore_builds_for_the_key():
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="AK", aws_secret_access_key="SK",
                          config=Config(s3={"addressing_style": "virtual"}))
    from mpupload.s3.route import captured_put

    for key in KEYS:
        url, _ = captured_put_for(client, "archive-bucket", key, captured_put)
        route = ROUTES["aws-virtual"]
        lean = LeanPut(route=route, credentials=Credentials("AK", "SK"), connect_timeout=1, read_timeout=1)
        target, _ = lean.signed_headers(key=key, body=b"", headers={}, date="20260314T150926Z")
        assert url == f"https://{route.host_header}{target}", key


def captured_put_for(client, bucket, key, captured_put):
    """The URL botocore builds for `key` (captured_put uses a fixed probe key; swap it in)."""
    import mpupload.s3.route as route_mod

    with mock.patch.object(route_mod, "ROUTE_PROBE_KEY", key):
        return route_mod.captured_put(client, bucket)


def test_canonical_query_sorts_by_encoded_name():
    assert canonical_query({"uploadId": "a b", "partNumber": "1"}) == "partNumber=1&uploadId=a%20b"
    assert canonical_query(None) == ""


@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
def test_unsigned_payload_is_what_botocore_sends_with_payload_signing_off(route):
    """With a verified transport checksum mpupload turns body hashing off (config.sign_payload); botocore
    with s3.payload_signing_enabled=False must sign exactly the same request, over http too."""
    from botocore.config import Config

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    body = b"bytes checked by the crc header, not by sha256\n" * 50
    extra = {"x-amz-meta-xxh3-128": "0123456789abcdef0123456789abcdef", "x-amz-checksum-crc32": "AAAAAA=="}
    lean = LeanPut(route=route, credentials=creds, connect_timeout=1, read_timeout=1, sign_payload=False)
    target, ours = lean.signed_headers(key=KEYS[1], body=body, headers=dict(extra),
                                       date=NOW.strftime("%Y%m%dT%H%M%SZ"))
    theirs = _botocore_signed(url=f"{route.scheme}://{route.host_header}{target}", headers=extra, body=body,
                              creds=creds, region=route.region,
                              client_config=Config(s3={"payload_signing_enabled": False}))
    assert ours["x-amz-content-sha256"] == theirs["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert ours["authorization"] == theirs["authorization"]
