import base64
import hashlib
import io
import os
import zlib

import pytest
import xxhash

from mpupload.core.hashing import TransportChecksum, xxh3_bytes, xxh3_file, xxh3_stream


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 10_000])
def test_streaming_digest_equals_one_shot_across_chunk_edges(size):
    data = os.urandom(size)
    assert xxh3_stream(io.BytesIO(data), chunk=4096) == (xxh3_bytes(data), size)
    assert xxh3_bytes(data) == xxhash.xxh3_128(data).hexdigest()


def test_file_digest(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"atlanta" * 1000)
    assert xxh3_file(str(p)) == (xxhash.xxh3_128_hexdigest(b"atlanta" * 1000), 7000)


def test_transport_checksums_are_s3s_base64_big_endian_forms():
    assert TransportChecksum("CRC32").of(b"abc") == base64.b64encode(zlib.crc32(b"abc").to_bytes(4, "big")).decode()
    assert TransportChecksum("crc32").param == "ChecksumCRC32"
    assert TransportChecksum("SHA256").of(b"abc") == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    # Known value: CRC32C("123456789") = 0xE3069283
    assert TransportChecksum("CRC32C").of(b"123456789") == base64.b64encode(bytes.fromhex("e3069283")).decode()
    assert not TransportChecksum("none").enabled
