"""The checksum S3 keeps for a whole object, computed here from the local file.

- FULL_OBJECT CRC64NVME: the CRC of the whole object however it was uploaded. A multipart upload gets it
  from its parts' CRCs and lengths (`combine_crc64nvme`: O(1) per part, no second read of the file); `verify`
  streams the file through it.
- A single PUT's checksum (CRC32, CRC32C, CRC64NVME, SHA256, XXHASH128) is the same algorithm over the bytes.
- A COMPOSITE checksum (a multipart upload's per-part checksums, `VALUE-N`) is the checksum of the
  concatenated raw part checksums: recomputable from the file once the part sizes are known.

Values are S3's form: base64 of the big-endian bytes. awscrt's CRCs run in C and release the GIL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable

import xxhash

from mpupload.core.hashing import READ_CHUNK

CRC64NVME = "CRC64NVME"
FULL_OBJECT, COMPOSITE = "FULL_OBJECT", "COMPOSITE"
# What HeadObject(ChecksumMode=ENABLED) may answer, in the order we look for them.
STORED_ALGORITHMS = ("CRC64NVME", "CRC32C", "CRC32", "SHA256", "SHA1", "XXHASH128")


def crc64nvme(data: bytes | bytearray | memoryview, previous: int = 0) -> int:
    from awscrt import checksums

    return checksums.crc64nvme(data, previous)


def can_combine() -> bool:
    """awscrt gained combine_crc64nvme late (0.30-ish): older installs fall back to composite checksums."""
    try:
        from awscrt import checksums
    except ImportError:
        return False
    return hasattr(checksums, "combine_crc64nvme")


def combine_crc64nvme(parts: Iterable[tuple[int, int]]) -> int:
    """The CRC64NVME of the concatenation of blocks given as (crc, length), in order."""
    from awscrt import checksums

    total: int | None = None
    for crc, length in parts:
        total = crc if total is None else checksums.combine_crc64nvme(total, crc, length)
    return 0 if total is None else total


def crc64_b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(8, "big")).decode("ascii")


def b64_crc64(text: str) -> int:
    return int.from_bytes(base64.b64decode(text), "big")


class _Running:
    """One algorithm as a running digest over blocks: update(), then raw()."""

    def __init__(self, algorithm: str):
        self.algorithm = algorithm
        self._crc = 0
        self._h = None
        if algorithm == "SHA256":
            self._h = hashlib.sha256()
        elif algorithm == "SHA1":
            self._h = hashlib.sha1()  # noqa: S324 - S3's algorithm, not ours to choose
        elif algorithm == "XXHASH128":
            self._h = xxhash.xxh3_128()
        elif algorithm not in ("CRC32", "CRC32C", "CRC64NVME"):
            raise ValueError(f"no local computation for checksum {algorithm}")
        self._update: Callable = self._crc_update()

    def _crc_update(self) -> Callable:
        if self._h is not None:
            return self._h.update
        if self.algorithm == "CRC32":
            return lambda data: setattr(self, "_crc", zlib.crc32(data, self._crc))
        from awscrt import checksums

        fn = checksums.crc32c if self.algorithm == "CRC32C" else checksums.crc64nvme
        return lambda data: setattr(self, "_crc", fn(data, self._crc))

    def update(self, data) -> None:
        self._update(data)

    def raw(self) -> bytes:
        if self._h is not None:
            return self._h.digest()
        return self._crc.to_bytes(8 if self.algorithm == "CRC64NVME" else 4, "big")


def file_checksum(path: str, algorithm: str, *, also_xxh3: bool = False) -> tuple[str, str | None]:
    """(S3's base64 checksum of the whole file, its xxh3-128 hex when asked): one read for both."""
    run = _Running(algorithm)
    xx = xxhash.xxh3_128() if also_xxh3 and algorithm != "XXHASH128" else None
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        while got := f.readinto(buf):
            run.update(view[:got])
            if xx is not None:
                xx.update(view[:got])
    raw = run.raw()
    hexdigest = raw.hex() if also_xxh3 and algorithm == "XXHASH128" else (xx.hexdigest() if xx is not None else None)
    return base64.b64encode(raw).decode("ascii"), hexdigest


def composite_checksum(path: str, algorithm: str, part_sizes: list[int], *,
                       also_xxh3: bool = False) -> tuple[str, str | None]:
    """("VALUE-N": the checksum of the N parts' raw checksums, xxh3-128 hex when asked) of a file cut into
    parts of these sizes, in one read."""
    outer = _Running(algorithm)
    xx = xxhash.xxh3_128() if also_xxh3 else None
    with open(path, "rb", buffering=0) as f:
        for size in part_sizes:
            part = _Running(algorithm)
            left = size
            while left:
                chunk = os.read(f.fileno(), min(left, READ_CHUNK))
                if not chunk:
                    raise ValueError(f"the file is shorter than the object's parts ({sum(part_sizes)} bytes)")
                part.update(chunk)
                if xx is not None:
                    xx.update(chunk)
                left -= len(chunk)
            outer.update(part.raw())
    value = base64.b64encode(outer.raw()).decode("ascii")
    return f"{value}-{len(part_sizes)}", xx.hexdigest() if xx is not None else None


def stored_checksum(head: dict) -> tuple[str, str, str] | None:
    """(algorithm, value, type) of the checksum a HeadObject(ChecksumMode=ENABLED) answer carries, else None.
    A value "…-N" is a composite whatever the type says (some servers leave the type out)."""
    for algorithm in STORED_ALGORITHMS:
        value = head.get("Checksum" + algorithm)
        if value:
            kind = head.get("ChecksumType") or (COMPOSITE if "-" in value else FULL_OBJECT)
            if "-" in value:
                kind = COMPOSITE
            return algorithm, value, kind
    return None
