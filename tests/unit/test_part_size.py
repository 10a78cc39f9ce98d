"""Files over 5 GiB (up to S3's 5 TiB object limit) never need more than 10,000 parts: our part size and
s3transfer's own adjustment both grow the part. No such file is created: the arithmetic is the test."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from s3transfer.utils import ChunksizeAdjuster

from mpupload.settings.config import GIB, MAX_PART_SIZE, MAX_PARTS, MIB, MIN_PART_SIZE, part_size_for

TIB = 1024 * GIB


@given(size=st.integers(min_value=5 * GIB + 1, max_value=5 * TIB),
       chunk=st.integers(min_value=MIN_PART_SIZE, max_value=MAX_PART_SIZE))
def test_no_upload_needs_more_than_10000_parts(size, chunk):
    part = part_size_for(size, chunk)
    assert chunk <= part <= MAX_PART_SIZE
    assert -(-size // part) <= MAX_PARTS
    theirs = ChunksizeAdjuster().adjust_chunksize(chunk, size)
    assert -(-size // theirs) <= MAX_PARTS


def test_sixty_gib_file_at_five_mib_parts_gets_ten_mib_parts():
    size = 60 * GIB  # 12,288 parts of 5 MiB: too many
    assert part_size_for(size, 5 * MIB) == 10 * MIB
    assert part_size_for(6 * GIB, 5 * MIB) == 5 * MIB  # 1,229 parts: left alone
