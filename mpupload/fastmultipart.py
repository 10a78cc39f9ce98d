"""Multipart upload of one large file with the lean signed PUT for its parts.

Why: through s3transfer and botocore every part is read three times (SigV4 payload hash, transport
checksum, send) in small pieces with a progress callback per piece: ~3.7 CPU-s per GB here. Reading a
part once into a buffer, checksumming and hashing that buffer and sending it in one call costs about
half. Create, complete and abort still go through botocore (three requests per file), and a part the
lean path declines is sent again with botocore's upload_part, so errors and retries are botocore's.

Memory: parts run on a pool of `threads` per process, each holding one part: threads x part size.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor

from .errors import FileChanged
from .fastput import Declined, FastPut
from .hashing import TransportChecksum


def upload_multipart(*, client, fast: FastPut, parts: Executor, bucket: str, key: str, path: str, size: int,
                     part_size: int, extra: dict, checksum: TransportChecksum, stop: threading.Event,
                     on_bytes: Callable[[int], None]) -> None:
    """Upload path as bucket/key in parts of part_size; abort the upload on any failure."""
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    try:
        count = max(1, -(-size // part_size))
        futures = [parts.submit(_part, client=client, fast=fast, bucket=bucket, key=key, path=path, upload_id=upload_id,
                                number=i + 1, offset=i * part_size, length=min(part_size, size - i * part_size),
                                checksum=checksum, stop=stop, on_bytes=on_bytes)
                   for i in range(count)]
        try:
            done = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # the part error is what matters; a leftover upload is cleaned by lifecycle rules
            pass
        raise


def _part(*, client, fast: FastPut, bucket: str, key: str, path: str, upload_id: str, number: int, offset: int,
          length: int, checksum: TransportChecksum, stop: threading.Event, on_bytes: Callable[[int], None]) -> dict:
    if stop.is_set():
        raise CancelledError()
    buf = bytearray(length)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = os.preadv(fd, [buf], offset)
    finally:
        os.close(fd)
    if got != length:
        raise FileChanged(f"part {number} read {got} of {length} bytes: the file shrank")
    entry: dict = {"PartNumber": number}
    headers: dict[str, str] = {}
    if checksum.enabled:
        entry[checksum.param] = headers[f"x-amz-checksum-{checksum.algorithm.lower()}"] = checksum.of(buf)
    try:
        etag = fast.put(bucket=bucket, key=key, body=buf, headers=headers,
                        query={"partNumber": str(number), "uploadId": upload_id})
    except Declined:
        params = {checksum.param: entry[checksum.param]} if checksum.enabled else {}
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buf),
                                  **params)["ETag"].strip('"')
    on_bytes(length)
    entry["ETag"] = etag
    return entry
