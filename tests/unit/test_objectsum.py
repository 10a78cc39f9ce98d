"""The whole-object checksums S3 keeps, computed locally: combined CRC64NVME, single-PUT forms, composites."""

from __future__ import annotations

import base64
import os
import zlib

import pytest
from awscrt import checksums

from mpupload.core.hashing import TransportChecksum
from mpupload.core.objectsum import (
    b64_crc64,
    combine_crc64nvme,
    composite_checksum,
    crc64_b64,
    file_checksum,
    stored_checksum,
)


@pytest.mark.parametrize("sizes", [[1], [5, 0, 7], [4096, 4096, 13], [1 << 20, 1]])
def test_combined_part_crcs_equal_the_crc_of_the_whole(sizes):
    parts = [os.urandom(n) for n in sizes]
    combined = combine_crc64nvme((checksums.crc64nvme(p), len(p)) for p in parts)
    whole = checksums.crc64nvme(b"".join(parts))
    assert combined == whole
    assert crc64_b64(whole) == TransportChecksum("CRC64NVME").of(b"".join(parts))  # the header's form
    assert b64_crc64(crc64_b64(whole)) == whole


@pytest.mark.parametrize("algorithm", ["CRC64NVME", "CRC32C", "CRC32", "SHA256", "XXHASH128"])
def test_a_file_checksum_is_the_transport_checksum_of_its_bytes_and_comes_with_its_xxh3(tmp_path, algorithm):
    data = os.urandom(9 * 1024 * 1024 + 3)  # over two read chunks
    path = tmp_path / "f"
    path.write_bytes(data)
    value, xxh3 = file_checksum(str(path), algorithm, also_xxh3=True)
    assert value == TransportChecksum(algorithm).of(data)
    import xxhash

    assert xxh3 == xxhash.xxh3_128_hexdigest(data)


def test_a_composite_is_the_checksum_of_the_parts_raw_checksums(tmp_path):
    data = os.urandom(25)
    path = tmp_path / "f"
    path.write_bytes(data)
    raw = b"".join(zlib.crc32(data[i:i + 10]).to_bytes(4, "big") for i in (0, 10, 20))
    value, _ = composite_checksum(str(path), "CRC32", [10, 10, 5])
    assert value == base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode() + "-3"
    with pytest.raises(ValueError, match="shorter"):
        composite_checksum(str(path), "CRC32", [10, 10, 10])


def test_what_a_head_answer_carries():
    assert stored_checksum({"ChecksumCRC64NVME": "abc=", "ChecksumType": "FULL_OBJECT"}) == (
        "CRC64NVME", "abc=", "FULL_OBJECT")
    # Some servers leave the type out: a single PUT's is the whole object's, "-N" marks a composite.
    assert stored_checksum({"ChecksumCRC32C": "abc="}) == ("CRC32C", "abc=", "FULL_OBJECT")
    assert stored_checksum({"ChecksumCRC32C": "abc=-4"}) == ("CRC32C", "abc=-4", "COMPOSITE")
    assert stored_checksum({"ETag": '"x"'}) is None
