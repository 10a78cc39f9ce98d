"""What S3 said it stored, for the audit trail (--log-file lines, report.json): the ETag, the checksum it
returned (`ALGORITHM:base64`), the version id of a versioned bucket, and the storage class. A PutObject or
CompleteMultipartUpload reply carries no storage class (HEAD shows one only when not STANDARD), so the
class is the one the request asked for, STANDARD when it named none."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

STANDARD = "STANDARD"
_ALGORITHMS = ("CRC64NVME", "CRC32C", "CRC32", "SHA256", "SHA1", "XXHASH128", "XXHASH64", "XXHASH3", "MD5")
# Reply headers the lean PUT hands back (lower-case): everything the audit needs.
AUDIT_HEADERS = ("x-amz-version-id", "x-amz-storage-class", "x-amz-checksum-type",
                 *(f"x-amz-checksum-{a.lower()}" for a in _ALGORITHMS))


class Stored(NamedTuple):
    etag: str
    checksum: str = ""  # "CRC32C:AAAAAA==" ("" when S3 returned none)
    version_id: str = ""
    storage_class: str = ""


def _first_checksum(get: Callable[[str], str | None], name_of: Callable[[str], str]) -> str:
    for algorithm in _ALGORITHMS:
        value = get(name_of(algorithm))
        if value:
            return f"{algorithm}:{value}"
    return ""


def from_response(resp: Mapping, *, storage_class: str | None = None) -> Stored:
    """From botocore's PutObject / CompleteMultipartUpload response."""
    return Stored(etag=str(resp.get("ETag", "")).strip('"'),
                  checksum=_first_checksum(resp.get, lambda a: "Checksum" + a),
                  version_id=resp.get("VersionId") or "",
                  storage_class=resp.get("StorageClass") or storage_class or STANDARD)


def from_headers(etag: str, headers: Mapping[str, str], *, storage_class: str | None = None) -> Stored:
    """From the reply headers of a lean PUT (lower-case names)."""
    return Stored(etag=etag.strip('"'), checksum=_first_checksum(headers.get, lambda a: f"x-amz-checksum-{a.lower()}"),
                  version_id=headers.get("x-amz-version-id") or "",
                  storage_class=headers.get("x-amz-storage-class") or storage_class or STANDARD)
