"""Does the server check `x-amz-checksum-xxhash128`, or only accept it?

S3 validates XXHASH128 (base64 of the 16 bytes of xxh3-128): where it does, a small file's own digest can be
the transport checksum, one hash instead of two, and the digest in the metadata is checked by S3 on arrival.
Some S3-compatible servers take the header and ignore it (SeaweedFS 4.x answers 200 to a wrong value), and
a checksum nobody checks proves nothing. So before trusting it: a PUT of a few bytes with a wrong XXHASH128
(must be refused), then with the right one (must be taken), then the probe object is deleted. One fixed key
under the destination prefix, so a probe that cannot delete leaves at most one tiny object behind.

Multipart uploads keep CRC32 parts (transport.py says why).
"""

from __future__ import annotations

from .hashing import XXHASH128, TransportChecksum

PROBE_NAME = ".mpupload-checksum-probe"
_BODY = b"mpupload checks whether this server validates XXHASH128 checksums\n"


def server_validates_xxhash128(client, *, bucket: str, prefix: str) -> tuple[bool, str]:
    """(True, "") when a wrong XXHASH128 is refused and the right one accepted; else (False, why not)."""
    key = f"{prefix}/{PROBE_NAME}".lstrip("/")
    try:
        return _probe(client, bucket=bucket, key=key)
    finally:
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception:  # noqa: BLE001, S110 - at worst one probe object of 66 bytes stays
            pass


def _probe(client, *, bucket: str, key: str) -> tuple[bool, str]:
    xx = TransportChecksum(XXHASH128)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=_BODY, ChecksumXXHASH128=xx.of(_BODY + b"(not these bytes)"))
        return False, "it accepts XXHASH128 checksums without checking them"
    except Exception:  # noqa: BLE001, S110 - a refusal is what a validating server answers
        pass
    try:
        resp = client.put_object(Bucket=bucket, Key=key, Body=_BODY, ChecksumXXHASH128=xx.of(_BODY))
    except Exception as exc:  # noqa: BLE001
        return False, f"it refused a correct XXHASH128 checksum too ({_code(exc)})"
    echoed = resp.get("ChecksumXXHASH128")
    if echoed is not None and echoed != xx.of(_BODY):
        return False, "it answered with another XXHASH128 than the one sent"
    return True, ""


def _code(exc: BaseException) -> str:
    from .errors import error_code, http_status

    return error_code(exc) or (f"HTTP {http_status(exc)}" if http_status(exc) else type(exc).__name__)
