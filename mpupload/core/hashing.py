"""Streaming xxh3-128 of files (the end-to-end proof kept in object metadata) and the transport
checksums S3 verifies on arrival. Never holds a whole large file in memory."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import BinaryIO

import xxhash

# User-metadata names (S3 stores them as x-amz-meta-<name>, lower-cased); s3limits.py fits them in S3's 2 KB.
from mpupload.core.s3limits import META_DIGEST, META_MTIME, META_PATH  # noqa: F401

READ_CHUNK = 4 * 1024 * 1024  # big enough that per-read overhead vanishes; small enough to stay in cache


def xxh3_bytes(data: bytes | memoryview) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def xxh3_stream(f: BinaryIO, *, chunk: int = READ_CHUNK) -> tuple[str, int]:
    """Digest and byte count of everything left in `f`."""
    h = xxhash.xxh3_128()
    n = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    while True:
        got = f.readinto(buf)
        if not got:
            break
        h.update(view[:got])
        n += got
    return h.hexdigest(), n


def xxh3_file(path: str) -> tuple[str, int]:
    with open(path, "rb", buffering=0) as f:
        return xxh3_stream(f)


_CRT_ALGORITHMS = ("CRC32C", "CRC64NVME")  # computed by awscrt's native code, when installed
# The transport checksum that is also the object's own digest: S3 checks it as x-amz-checksum-xxhash128
# (base64 of the 16 bytes of xxh3-128), so one hash serves both where the server validates it.
XXHASH128 = "XXHASH128"
AUTO = "AUTO"  # XXHASH128 where a probe shows the server validates it, else fallback_crc() (transport.py)


def fallback_crc() -> str:
    """The CRC sent where XXHASH128 is not checked: CRC32C through awscrt (~7 us per 256 KiB here, SSE4.2),
    else zlib's CRC32 (~120 us: a tenth of a small file's client CPU). Both are checked by S3 and SeaweedFS."""
    try:
        from awscrt import checksums  # noqa: F401
    except ImportError:
        return "CRC32"
    return "CRC32C"


class TransportChecksum:
    """A checksum S3 checks against the body (x-amz-checksum-*), computed here and sent as a header so
    no aws-chunked trailer is needed."""

    def __init__(self, algorithm: str):
        self.algorithm = algorithm.upper()
        if self.algorithm == AUTO:
            raise ValueError("checksum AUTO must be resolved by a probe first (transport.py)")
        if self.algorithm in _CRT_ALGORITHMS:
            try:
                from awscrt import checksums  # noqa: F401
            except ImportError:
                raise ValueError(f"--checksum {self.algorithm} needs the awscrt package (pip install awscrt)") from None

    @property
    def enabled(self) -> bool:
        return self.algorithm != "NONE"

    @property
    def param(self) -> str:
        """The PutObject/UploadPart parameter name, e.g. ChecksumCRC32."""
        return "Checksum" + self.algorithm

    @property
    def is_digest(self) -> bool:
        """True when the checksum is the xxh3-128 digest itself (computed once for both)."""
        return self.algorithm == XXHASH128

    def of_digest(self, hexdigest: str) -> str:
        """The XXHASH128 header value from an xxh3-128 hex digest already computed."""
        return base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii")

    def of(self, data: bytes | memoryview) -> str:
        if self.algorithm == XXHASH128:
            raw = xxhash.xxh3_128_digest(data)
        elif self.algorithm == "CRC32":
            raw = zlib.crc32(data).to_bytes(4, "big")
        elif self.algorithm == "CRC32C":
            from awscrt import checksums

            raw = checksums.crc32c(data).to_bytes(4, "big")
        elif self.algorithm == "CRC64NVME":
            from awscrt import checksums

            raw = checksums.crc64nvme(data).to_bytes(8, "big")
        elif self.algorithm == "SHA256":
            raw = hashlib.sha256(data).digest()
        else:
            raise ValueError("checksum disabled")
        return base64.b64encode(raw).decode("ascii")
