"""The object settings: parsers, one set of parameters per process, and the lean PUT's header for each."""

from __future__ import annotations

import base64
import hashlib
import threading

import boto3
import pytest
from botocore import handlers

from mpupload.core.contenttypes import content_type_for
from mpupload.s3.objectparams import ObjectParams
from mpupload.s3.transport import _PARAM_HEADERS, DECLINED, UNMAPPED, Transport, Unmapped, lean_headers
from mpupload.settings.config import Settings, SettingsError
from mpupload.settings.objects import (
    describe_lines,
    describe_object_settings,
    encode_tags,
    parse_metadata,
    parse_tags,
    read_sse_c_key,
)

KEY = bytes(range(32))


@pytest.fixture
def key_file(tmp_path):
    p = tmp_path / "key"
    p.write_bytes(KEY)
    return str(p)


def _full(key_file: str | None = None, **over) -> Settings:
    values = dict(bucket="b", sse="aws:kms", sse_kms_key_id="alias/archive", sse_bucket_key=True, acl="private",
                  storage_class="DEEP_ARCHIVE", small_storage_class="STANDARD", small_object_size=1000,
                  tags="a=1&b=two words", metadata="project=atlas,xxh3-128=mine", cache_control="no-cache",
                  content_encoding="gzip", content_disposition="attachment", expected_bucket_owner="111122223333",
                  request_payer="requester")
    values.update(over)
    if key_file:
        values.pop("sse"), values.pop("sse_kms_key_id"), values.pop("sse_bucket_key")
        values["sse_c_key_file"] = key_file
    return Settings(**values)


def test_every_lean_header_is_the_one_botocore_sends():
    """The lean table names each parameter's header exactly as botocore's model of PutObject / UploadPart."""
    model = boto3.client("s3", region_name="us-east-1").meta.service_model
    members = {**model.operation_model("PutObject").input_shape.members,
               **model.operation_model("UploadPart").input_shape.members}
    for param, header in _PARAM_HEADERS.items():
        assert members[param].serialization["location"] == "header", param
        assert members[param].serialization["name"].lower() == header, param


@pytest.mark.parametrize("sse_c", [False, True])
def test_every_parameter_the_settings_make_has_a_lean_header(sse_c, key_file):
    p = ObjectParams(_full(key_file if sse_c else None))
    for params in (p.write(name="a/b.tif", size=5, metadata={"xxh3-128": "d"}), p.part(), p.read()):
        lean_headers(params)  # raises Unmapped for a parameter the lean PUT would drop


def test_lean_headers_of_a_full_write():
    p = ObjectParams(_full())
    h = lean_headers(p.write(name="x/scan.JP2", size=5000, metadata={"xxh3-128": "d"}))
    assert h == {
        "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "alias/archive",
        "x-amz-server-side-encryption-bucket-key-enabled": "true", "x-amz-acl": "private",
        "x-amz-tagging": "a=1&b=two%20words", "cache-control": "no-cache", "content-encoding": "gzip",
        "content-disposition": "attachment", "x-amz-expected-bucket-owner": "111122223333",
        "x-amz-request-payer": "requester", "x-amz-meta-project": "atlas", "x-amz-meta-xxh3-128": "d",
        "content-type": "image/jp2", "x-amz-storage-class": "DEEP_ARCHIVE"}


def test_sse_c_headers_match_botocores(key_file):
    params = ObjectParams(_full(key_file)).part()
    h = lean_headers(params)
    as_botocore = dict(params)
    handlers.sse_md5(as_botocore)
    assert h["x-amz-server-side-encryption-customer-key"] == as_botocore["SSECustomerKey"] == base64.b64encode(KEY).decode()
    assert h["x-amz-server-side-encryption-customer-key-md5"] == as_botocore["SSECustomerKeyMD5"] == \
        base64.b64encode(hashlib.md5(KEY).digest()).decode()
    assert h["x-amz-server-side-encryption-customer-algorithm"] == "AES256"


def test_an_unknown_parameter_is_never_dropped():
    with pytest.raises(Unmapped):
        lean_headers({"ContentType": "a/b", "WebsiteRedirectLocation": "/x"})


class _Lean:
    def __init__(self):
        self.calls = 0

    def put(self, **_kwargs):
        self.calls += 1
        return "etag"


class _Client:
    def __init__(self):
        self.sent = []

    def put_object(self, **kwargs):
        self.sent.append(kwargs)
        return {"ETag": '"e"'}


def test_a_parameter_without_lean_header_goes_through_botocore_whole():
    lean, client = _Lean(), _Client()
    t = Transport(client=client, settings=Settings(bucket="b", checksum="none"), stop=threading.Event(), lean=lean)
    assert t.put_object(key="k", body=b"x", params={"ContentType": "a/b", "WebsiteRedirectLocation": "/x"}).etag == "e"
    assert lean.calls == 0
    assert client.sent[0]["WebsiteRedirectLocation"] == "/x" and client.sent[0]["ContentType"] == "a/b"
    assert {(k, d): n for k, d, n in t.take_counts()}[DECLINED, UNMAPPED] == 1


def test_storage_class_by_size_and_metadata_precedence():
    p = ObjectParams(_full())
    assert p.write(name="a", size=999, metadata={})["StorageClass"] == "STANDARD"
    assert p.write(name="a", size=1000, metadata={})["StorageClass"] == "DEEP_ARCHIVE"
    meta = p.write(name="a", size=1, metadata={"xxh3-128": "ours"})["Metadata"]
    assert meta == {"project": "atlas", "xxh3-128": "ours"}  # mpupload's own key wins
    assert "ContentType" not in p.write(name="README", size=1, metadata={})
    assert ObjectParams(_full(content_type="x/y")).write(name="a.jp2", size=1, metadata={})["ContentType"] == "x/y"
    bare = ObjectParams(Settings(bucket="b"))
    assert bare.write(name="a.tif", size=1, metadata={}) == {"Metadata": {}, "ContentType": "image/tiff"}
    assert bare.part() == {} and bare.read() == {}
    # The default small-object size: 128 KiB.
    small = ObjectParams(Settings(bucket="b", small_storage_class="STANDARD", storage_class="GLACIER"))
    assert small.storage_class(128 * 1024 - 1) == "STANDARD" and small.storage_class(128 * 1024) == "GLACIER"


def test_part_and_read_carry_the_key_and_the_request_parameters(key_file):
    p = ObjectParams(_full(key_file))
    for params in (p.part(), p.read()):
        assert params == {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY,
                          "ExpectedBucketOwner": "111122223333", "RequestPayer": "requester"}
    assert p.write(name="a", size=1, metadata={})["SSECustomerKey"] == KEY


@pytest.mark.parametrize("text, pairs", [
    ("", ()),
    ("a=1", (("a", "1"),)),
    ("project=atlas&owner=ops team", (("project", "atlas"), ("owner", "ops team"))),
    ("note=a%2Fb&empty=", (("note", "a/b"), ("empty", ""))),
    ("jahr=1950&ort=K\u00f6ln", (("jahr", "1950"), ("ort", "K\u00f6ln"))),
])
def test_parse_tags(text, pairs):
    assert parse_tags(text) == pairs
    assert parse_tags(encode_tags(pairs)) == pairs  # the header value reads back as the same tags


@pytest.mark.parametrize("text", ["a", "=1", "a=1&a=2", "a=x&y", "a=1;b", "a=<b>"])
def test_bad_tags(text):
    with pytest.raises(SettingsError):
        parse_tags(text)


def test_parse_metadata():
    assert parse_metadata("Project=Atlas, batch = 7") == (("project", "Atlas"), ("batch", "7"))
    assert parse_metadata('{"note": "a, b"}') == (("note", "a, b"),)
    for bad in ("a", "a=1,a=2", "bad name=1", "a=caf\u00e9", "[1]", '{"a": 1}', "a=\x01"):
        with pytest.raises(SettingsError):
            parse_metadata(bad)


@pytest.mark.parametrize("content", [KEY, KEY.hex().encode() + b"\n", base64.b64encode(KEY) + b"\n",
                                     b"  " + KEY.hex().upper().encode()])
def test_sse_c_key_file_forms(tmp_path, content):
    p = tmp_path / "k"
    p.write_bytes(content)
    assert read_sse_c_key(str(p)) == KEY


@pytest.mark.parametrize("content", [b"", KEY[:31], KEY + b"x", b"not a key at all, not base64!", b"ab" * 31])
def test_bad_sse_c_key_files_name_the_file_not_the_key(tmp_path, content):
    p = tmp_path / "k"
    p.write_bytes(content)
    with pytest.raises(SettingsError) as err:
        read_sse_c_key(str(p))
    assert str(p) in str(err.value)
    if content:
        assert content.decode("latin-1")[:8] not in str(err.value)


def test_describe_never_holds_the_key(key_file):
    s = _full(key_file)
    shown = describe_object_settings(s)
    assert shown["sse_c"] == {"algorithm": "AES256", "key": "set", "key_file": key_file}
    text = repr(shown) + "\n".join(describe_lines(s))
    assert KEY.hex() not in text and base64.b64encode(KEY).decode() not in text


@pytest.mark.parametrize("name, ctype", [
    ("1950/page.jp2", "image/jp2"), ("SCAN.TIF", "image/tiff"), ("a/b.csv.gz", "application/gzip"),
    ("notes.txt", "text/plain"), ("README", None), (".profile", None), ("dir.d/file", None),
    ("a.unknownsuffix", None), ("x.PDF", "application/pdf"),
])
def test_content_types_from_mpuploads_table(name, ctype):
    assert content_type_for(name) == ctype


@pytest.mark.parametrize("over, says", [
    (dict(sse="AES256", sse_bucket_key=True), "--sse-bucket-key"),
    (dict(sse="AES256", sse_kms_key_id="k"), "--sse-kms-key-id"),
    (dict(small_object_size=5), "--small-object-size needs"),
    (dict(expected_bucket_owner="abc"), "12-digit"),
    (dict(content_type=" "), "--content-type"),
])
def test_settings_that_cannot_work_together(over, says):
    with pytest.raises(SettingsError, match=says):
        Settings(bucket="b", **over).validated()
