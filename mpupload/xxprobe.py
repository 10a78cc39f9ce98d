"""Does the server check `x-amz-checksum-xxhash128`, or only accept it?

S3 validates XXHASH128 (base64 of the 16 bytes of xxh3-128): where it does, the file's own digest can be
the transport checksum, one hash instead of two, and the digest in the metadata is checked by S3 on arrival.
Some S3-compatible servers take the header and ignore it (SeaweedFS 4.x answers 200 to a wrong value), and
a checksum nobody checks proves nothing. So before trusting it: a multipart upload under the destination
prefix gets one part with a wrong XXHASH128 (must be refused) and one with the right one (must be taken),
then is aborted. A multipart upload, not a PUT, because nothing is left behind and no DeleteObject
permission is needed (the preflight already proved create and abort); parts are what large files send.
"""

from __future__ import annotations

import secrets

from .hashing import XXHASH128, TransportChecksum

_BODY = b"mpupload checks whether this server validates XXHASH128 checksums\n"


def server_validates_xxhash128(client, *, bucket: str, prefix: str) -> tuple[bool, str]:
    """(True, "") when a wrong XXHASH128 is refused and the right one accepted; else (False, why not)."""
    key = f"{prefix}/.mpupload-checksum-probe-{secrets.token_hex(6)}".lstrip("/")
    xx = TransportChecksum(XXHASH128)
    try:
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=XXHASH128)["UploadId"]
    except Exception as exc:  # noqa: BLE001 - any refusal means: do not rely on it
        return False, f"it refused an XXHASH128 upload ({_code(exc)})"
    try:
        wrong = xx.of(_BODY + b"(not these bytes)")
        try:
            client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=_BODY,
                               ChecksumXXHASH128=wrong)
            return False, "it accepts XXHASH128 checksums without checking them"
        except Exception:  # noqa: BLE001, S110 - a refusal is what a validating server answers
            pass
        try:
            resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=_BODY,
                                      ChecksumXXHASH128=xx.of(_BODY))
        except Exception as exc:  # noqa: BLE001
            return False, f"it refused a correct XXHASH128 checksum too ({_code(exc)})"
        echoed = resp.get("ChecksumXXHASH128")
        if echoed is not None and echoed != xx.of(_BODY):
            return False, "it answered with another XXHASH128 than the one sent"
        return True, ""
    finally:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # noqa: BLE001, S110 - at worst a few bytes of incomplete upload stay behind
            pass  # (a bucket's abort-incomplete-uploads rule removes them); that must not fail the run


def _code(exc: BaseException) -> str:
    from .errors import error_code, http_status

    return error_code(exc) or (f"HTTP {http_status(exc)}" if http_status(exc) else type(exc).__name__)

