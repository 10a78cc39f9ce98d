"""The listing's own parse of ListObjectsV2 pages gives what botocore's parser gives, odd keys included."""

from __future__ import annotations

from urllib.parse import quote_plus, unquote_plus

import botocore.session
from botocore.parsers import create_parser

from mpupload.s3.listing import _take_contents

KEYS = ["p/1920/a.jp2", "p/1920/b c+d&e<f>\"g'h.jp2", "p/1920/ü é/€", "p/1920/line\nbreak"]


def page(*, url: bool) -> bytes:
    def esc(s: str) -> str:
        return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
                .replace("'", "&apos;").replace("\n", "&#xA;"))

    contents = "".join(
        f"<Contents><Key>{esc(quote_plus(k, safe='/') if url else k)}</Key><LastModified>2026-01-01T00:00:00.000Z"
        f"</LastModified><ETag>&quot;{i:032x}&quot;</ETag><Size>{i * 7}</Size><StorageClass>STANDARD</StorageClass>"
        "</Contents>" for i, k in enumerate(KEYS))
    return ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>b</Name><Prefix>p/</Prefix><KeyCount>{len(KEYS)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"{'<EncodingType>url</EncodingType>' if url else ''}<IsTruncated>true</IsTruncated>{contents}"
            "<CommonPrefixes><Prefix>p/1921/</Prefix></CommonPrefixes>"
            "<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>").encode()


def parse(body: bytes, *, fast: bool) -> dict:
    model = botocore.session.get_session().get_service_model("s3").operation_model("ListObjectsV2")
    response = {"status_code": 200, "headers": {}, "body": body}
    custom: dict = {}
    if fast:
        _take_contents(response_dict=response, customized_response_dict=custom)
    parsed = create_parser("rest-xml").parse(response, model.output_shape)
    parsed.update(custom)
    return parsed


def test_the_fast_parse_matches_botocore():
    for url in (False, True):
        slow, fast = parse(page(url=url), fast=False), parse(page(url=url), fast=True)
        expect = [(unquote_plus(o["Key"]) if url else o["Key"], o["Size"], o["ETag"].strip('"'))
                  for o in slow["Contents"]]
        assert fast["FastContents"] == expect
        assert [k for k, _, _ in fast["FastContents"]] == KEYS
        assert "Contents" not in fast  # botocore did not parse them a second time
        assert (fast["NextContinuationToken"], fast["CommonPrefixes"]) == ("tok", [{"Prefix": "p/1921/"}])


def test_an_error_page_is_left_to_botocore():
    response = {"status_code": 503, "headers": {}, "body": b"<Error><Code>SlowDown</Code></Error>"}
    custom: dict = {}
    _take_contents(response_dict=response, customized_response_dict=custom)
    assert custom == {} and response["body"] == b"<Error><Code>SlowDown</Code></Error>"
