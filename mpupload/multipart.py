"""Resumable multipart uploads.

s3transfer's TransferManager cannot resume: a crash loses every part it sent. Here the upload id is
journaled as soon as S3 hands it out, together with the identity (size, mtime, inode) and digest of the file
version it carries. A rerun asks S3 which parts it already holds (ListParts), checks each one's size and
checksum against the file, sends only the rest, and completes. An upload whose file has changed since is
aborted, never completed with a stale digest in its metadata.

Parts run on the worker's part pool (its size bounds memory: threads x part size per process); each part's
CRC32 is computed here and sent as a header, and S3 rejects a part whose bytes do not match it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor

from .config import Settings, part_size_for
from .errors import FileChanged, error_code
from .hashing import TransportChecksum
from .journal import Journal, MultipartRow


class MultipartUploader:
    def __init__(self, *, client, settings: Settings, checksum: TransportChecksum, pool: ThreadPoolExecutor,
                 on_bytes: Callable[[int], None], stop: threading.Event):
        self.client, self.s, self.checksum, self.pool = client, settings, checksum, pool
        self.on_bytes, self.stop = on_bytes, stop
        self._local = threading.local()

    def _journal(self) -> Journal | None:
        if not self.s.journal:
            return None
        j = getattr(self._local, "journal", None)
        if j is None:
            j = self._local.journal = Journal(self.s.journal)
        return j

    def upload(self, *, path: str, key: str, size: int, mtime_ns: int, inode: int, digest: str,
               extra: dict) -> tuple[str, int]:
        """Upload (or finish uploading) `path` to `key`; returns (ETag, number of parts S3 already had)."""
        part_size = part_size_for(size, self.s.multipart_chunksize)
        nparts = max(1, -(-size // part_size))
        journal = self._journal()
        upload_id, have = self._resume(journal, key=key, size=size, mtime_ns=mtime_ns, inode=inode,
                                       digest=digest, part_size=part_size)
        if upload_id is None:
            params = dict(extra)
            if self.checksum.enabled:
                params["ChecksumAlgorithm"] = self.checksum.algorithm
            upload_id = self.client.create_multipart_upload(Bucket=self.s.bucket, Key=key, **params)["UploadId"]
            if journal is not None:
                journal.record_multipart(MultipartRow(key=key, upload_id=upload_id, size=size, mtime_ns=mtime_ns,
                                                      inode=inode, digest=digest, part_size=part_size,
                                                      run_id=self.s.run_id))
        futures = [self.pool.submit(self._part, path=path, key=key, upload_id=upload_id, number=n,
                                    offset=(n - 1) * part_size, length=min(part_size, size - (n - 1) * part_size),
                                    existing=have.get(n))
                   for n in range(1, nparts + 1)]
        try:
            parts = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            if journal is None:  # nothing could resume it: do not leave it behind
                self._abort(key, upload_id)
            raise
        reused = sum(1 for _, was_there in parts if was_there)
        resp = self.client.complete_multipart_upload(
            Bucket=self.s.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [p for p, _ in parts]})
        if journal is not None:
            journal.forget_multipart(key, upload_id)
        return resp.get("ETag", "").strip('"'), reused

    def _resume(self, journal: Journal | None, *, key: str, size: int, mtime_ns: int, inode: int, digest: str,
                part_size: int) -> tuple[str | None, dict[int, dict]]:
        row = journal.multipart(key) if journal is not None else None
        if row is None:
            return None, {}
        if (row.size, row.mtime_ns, row.inode, row.digest, row.part_size) != (size, mtime_ns, inode, digest, part_size):
            self._abort(key, row.upload_id)  # ours, and it carries another version of the file
            journal.forget_multipart(key, row.upload_id)
            return None, {}
        try:
            have = self.list_parts(key, row.upload_id)
        except Exception as exc:
            if error_code(exc) in ("NoSuchUpload", "404") or getattr(exc, "response", {}).get(
                    "ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                journal.forget_multipart(key, row.upload_id)
                return None, {}
            raise
        journal.touch_multipart(key, self.s.run_id)
        return row.upload_id, have

    def list_parts(self, key: str, upload_id: str) -> dict[int, dict]:
        have: dict[int, dict] = {}
        for page in self.client.get_paginator("list_parts").paginate(Bucket=self.s.bucket, Key=key, UploadId=upload_id):
            for p in page.get("Parts", []):
                have[p["PartNumber"]] = p
        return have

    def _part(self, *, path: str, key: str, upload_id: str, number: int, offset: int, length: int,
              existing: dict | None) -> tuple[dict, bool]:
        if self.stop.is_set():
            raise CancelledError()
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise FileChanged(f"part {number} came up short: {len(data)} of {length} bytes")
        part: dict = {"PartNumber": number}
        crc = self.checksum.of(data) if self.checksum.enabled else None
        if crc is not None:
            part[self.checksum.param] = crc
        if existing is not None and _same_part(existing, data, crc, self.checksum.param):
            part["ETag"] = existing["ETag"]
            return part, True
        params = {self.checksum.param: crc} if crc is not None else {}
        resp = self.client.upload_part(Bucket=self.s.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                       Body=data, **params)
        self.on_bytes(length)
        part["ETag"] = resp["ETag"]
        return part, False

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.s.bucket, Key=key, UploadId=upload_id)
        except Exception:  # already gone, or unreachable now: the end-of-run sweep tries again
            pass


def _same_part(existing: dict, data: bytes, crc: str | None, checksum_param: str) -> bool:
    """Does the part S3 holds carry exactly these bytes? By its checksum when S3 reports one, else by its
    ETag (the MD5 of the part for unencrypted uploads)."""
    if existing.get("Size") != len(data):
        return False
    if crc is not None and existing.get(checksum_param):
        return existing[checksum_param] == crc
    return existing.get("ETag", "").strip('"') == hashlib.md5(data).hexdigest()
