"""Sorting failures into three kinds (after rclone's fserrors):

- fatal: every further request would fail the same way (bad credentials, missing bucket) -> stop the run;
- retryable: throttling, 5xx, timeouts, dropped connections, checksum mismatch -> try the file again;
- permanent: this file cannot be stored (access denied on its key, invalid key, file vanished).
"""

from __future__ import annotations

FATAL, RETRYABLE, PERMANENT = "fatal", "retryable", "permanent"

_FATAL_CODES = {
    "InvalidAccessKeyId": "the access key is not known to the server (check the credentials)",
    "SignatureDoesNotMatch": "the secret key does not match the access key (check the credentials)",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is invalid",
    "TokenRefreshRequired": "the session token must be refreshed",
    "NoSuchBucket": "the bucket does not exist",
    "AllAccessDisabled": "all access to this bucket has been disabled",
    "AccountProblem": "the account has a problem that prevents this operation",
}
_RETRYABLE_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "BadDigest", "XAmzContentSHA256Mismatch", "RequestTimeoutException",
    "OperationAborted", "InvalidChecksum",
}
# The server asks us to send less: every worker slows down together (pacing.py), not just this one.
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestLimitExceeded",
                   "ServiceUnavailable"}


class FatalError(Exception):
    """Stops the run: one clear message, exit code 3."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class Conflict(Exception):
    """--no-overwrite: an object with other content is already at the key; it stays, the file fails."""


class FileChanged(Exception):
    """The file's size or mtime moved while it was being read or sent."""


def error_code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return str(resp.get("Error", {}).get("Code", "") or "")
    return ""


def http_status(exc: BaseException) -> int:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_throttle(code: str, status: int) -> bool:
    """A response that means "too many requests" (503 SlowDown, 429), as opposed to a failure."""
    return code in _THROTTLE_CODES or status in (429, 503)


def is_connection_error(exc: BaseException) -> bool:
    """The endpoint refused, dropped or never accepted the connection: a sign of an outage when it
    repeats. Read timeouts are not (the server is there, just slow), nor TLS failures (it answered)."""
    from botocore import exceptions as be

    if isinstance(exc, be.SSLError):
        return False
    return isinstance(exc, (be.EndpointConnectionError, be.ConnectTimeoutError, be.ConnectionClosedError,
                            be.ProxyConnectionError, ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError))


# Codes botocore's standard and adaptive retry modes already retry, besides throttling and any 5xx.
_BOTOCORE_RETRIES_CODES = {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError"}


def retried_by_botocore(exc: BaseException) -> bool:
    """Did this failure come out of botocore after its own retries (throttling, 5xx, transient codes,
    dropped connections, timeouts)? Then trying the file again would only repeat them: README, Retries."""
    from botocore import exceptions as be

    if isinstance(exc, be.ClientError):
        code, status = error_code(exc), http_status(exc)
        return is_throttle(code, status) or status >= 500 or code in _BOTOCORE_RETRIES_CODES
    if isinstance(exc, be.SSLError):
        return False
    return isinstance(exc, (be.ConnectionError, be.HTTPClientError))


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, reason) for an exception raised while uploading one file. Never includes secrets:
    botocore messages name codes and operations, not credentials."""
    from botocore import exceptions as be

    if isinstance(exc, FileChanged):
        return RETRYABLE, f"file changed while uploading: {exc}"
    if isinstance(exc, Conflict):
        return PERMANENT, f"conflict: {exc}"
    if isinstance(exc, FileNotFoundError):
        return PERMANENT, "file vanished before it could be uploaded"
    if isinstance(exc, PermissionError):
        return PERMANENT, f"file unreadable: {exc.strerror or exc}"
    if isinstance(exc, IsADirectoryError):
        return PERMANENT, "became a directory before it could be uploaded"
    if isinstance(exc, (be.NoCredentialsError, be.PartialCredentialsError)):
        return FATAL, "no usable AWS credentials found (set a profile, environment variables or a role)"
    if isinstance(exc, be.ClientError):
        code, status = error_code(exc), http_status(exc)
        if code in _FATAL_CODES:
            return FATAL, f"{code}: {_FATAL_CODES[code]}"
        if code in _RETRYABLE_CODES or status >= 500 or status == 429:
            return RETRYABLE, f"{code or status}: {_short(exc)}"
        if code == "AccessDenied" or status == 403:
            return PERMANENT, "AccessDenied: no permission to write this key"
        if code in ("KeyTooLongError", "InvalidArgument", "InvalidRequest", "EntityTooLarge"):
            return PERMANENT, f"{code}: {_short(exc)}"
        return RETRYABLE, f"{code or status}: {_short(exc)}"
    if isinstance(exc, (be.ConnectionError, be.HTTPClientError, be.ReadTimeoutError, ConnectionError, TimeoutError)):
        return RETRYABLE, f"network: {_short(exc)}"
    if isinstance(exc, be.ChecksumError):
        return RETRYABLE, f"checksum mismatch: {_short(exc)}"
    if isinstance(exc, OSError):
        return PERMANENT, f"file error: {exc.strerror or exc}"
    return RETRYABLE, f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SettingsError(ValueError):
    """A setting the user gave cannot work (a usage error: exit code 2)."""
