"""The classifier: what stops the run, what is tried again, what fails one file; and which errors are
throttling or signs of an outage (for the shared pace)."""

from __future__ import annotations

import pytest
from botocore import exceptions as be

from mpupload.core.errors import FATAL, PERMANENT, RETRYABLE, FileChanged, classify, is_connection_error, is_throttle


def client_error(code: str, status: int) -> be.ClientError:
    return be.ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                          "PutObject")


@pytest.mark.parametrize("code, status, kind", [
    ("SlowDown", 503, RETRYABLE),
    ("InternalError", 500, RETRYABLE),
    ("ServiceUnavailable", 503, RETRYABLE),
    ("", 502, RETRYABLE),
    ("TooManyRequests", 429, RETRYABLE),
    ("RequestTimeout", 400, RETRYABLE),
    ("BadDigest", 400, RETRYABLE),
    ("NoSuchUpload", 404, RETRYABLE),  # a multipart upload lost mid-way: start the file again
    ("SignatureDoesNotMatch", 403, FATAL),
    ("InvalidAccessKeyId", 403, FATAL),
    ("NoSuchBucket", 404, FATAL),
    ("AccessDenied", 403, PERMANENT),
    ("KeyTooLongError", 400, PERMANENT),
    ("InvalidArgument", 400, PERMANENT),
    ("EntityTooLarge", 400, PERMANENT),
])
def test_client_errors(code, status, kind):
    assert classify(client_error(code, status))[0] == kind


@pytest.mark.parametrize("exc, kind", [
    (be.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), RETRYABLE),
    (be.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), RETRYABLE),
    (be.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), RETRYABLE),
    (be.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), RETRYABLE),
    (ConnectionResetError(104, "reset"), RETRYABLE),
    (FileChanged("size moved"), RETRYABLE),
    (FileNotFoundError(2, "gone"), PERMANENT),
    (PermissionError(13, "denied"), PERMANENT),
    (IsADirectoryError(21, "dir"), PERMANENT),
    (be.NoCredentialsError(), FATAL),
])
def test_other_errors(exc, kind):
    assert classify(exc)[0] == kind


@pytest.mark.parametrize("code, status, throttle", [
    ("SlowDown", 503, True), ("", 503, True), ("", 429, True), ("Throttling", 400, True),
    ("InternalError", 500, False), ("AccessDenied", 403, False), ("", 200, False),
])
def test_is_throttle(code, status, throttle):
    assert is_throttle(code, status) is throttle


@pytest.mark.parametrize("exc, outage_sign", [
    (be.EndpointConnectionError(endpoint_url="u"), True),
    (be.ConnectionClosedError(endpoint_url="u"), True),
    (be.ConnectTimeoutError(endpoint_url="u"), True),
    (ConnectionRefusedError(111, "refused"), True),
    (be.ReadTimeoutError(endpoint_url="u"), False),  # the server is there, only slow
    (be.SSLError(endpoint_url="u", error="bad cert"), False),  # it answered
    (client_error("InternalError", 500), False),
])
def test_is_connection_error(exc, outage_sign):
    assert is_connection_error(exc) is outage_sign


@pytest.mark.parametrize("exc, botocore_retried", [
    (client_error("SlowDown", 503), True),
    (client_error("", 502), True),
    (client_error("RequestTimeout", 400), True),
    (be.EndpointConnectionError(endpoint_url="http://x"), True),
    (be.ReadTimeoutError(endpoint_url="http://x"), True),
    # Another request of the same bytes cannot fix these: the file layer tries the file again.
    (client_error("BadDigest", 400), False),
    (client_error("NoSuchUpload", 404), False),
    (FileChanged("grew"), False),
    (be.SSLError(endpoint_url="http://x", error="bad cert"), False),
])
def test_who_retries(exc, botocore_retried):
    from mpupload.core.errors import retried_by_botocore

    assert retried_by_botocore(exc) is botocore_retried
