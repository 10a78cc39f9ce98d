"""Resumable multipart uploads.

s3transfer's TransferManager cannot resume: a crash loses every part it sent. Here the upload id is
journaled as soon as S3 hands it out, together with the identity (size, mtime, inode) and digest of the file
version it carries. A rerun asks S3 which parts it already holds (ListParts), checks each one's size and
checksum against the file, sends only the rest, and completes. An upload whose file has changed since is
aborted, never completed with a stale digest in its metadata.

Parts run on the worker's part pool (its size bounds memory: threads x part size per process); each part's
checksum is computed here and sent as a header, and S3 rejects a part whose bytes do not match it. Where the
server keeps one (transport.full_object, fullprobe.py) the parts carry CRC64NVME and the completion the
FULL_OBJECT CRC64NVME of the whole file, combined from the parts' CRCs and lengths: no second read.

Each part S3 confirms is journaled with its size, checksum and ETag. On a resume, a part that ListParts
reports with the journaled size and ETag is the one sent (and checked) before, from this very version of the
file (the upload is only resumed when size, mtime, inode and xxh3-128 match): its checksum comes from the
journal and it is not read again. Held parts the journal does not know (a crash between S3's answer and the
journal's commit) are read and compared, as before. An upload journaled with another checksum kind (or
before schema 3, kind unknown) cannot be completed with this one: it is aborted and started again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import replace

from mpupload.core.errors import Conflict, FileChanged, error_code, http_status
from mpupload.core.hashing import TransportChecksum
from mpupload.core.objectsum import COMPOSITE, FULL_OBJECT, b64_crc64, combine_crc64nvme, crc64_b64
from mpupload.s3.audit import Stored, from_response
from mpupload.s3.transport import Transport
from mpupload.settings.config import Settings, part_size_for
from mpupload.source.scan import open_regular
from mpupload.state.journal import Journal, MultipartRow, PartRecord

PENDING = ""  # upload id of a journaled create whose answer was not recorded (yet)


class MultipartUploader:
    def __init__(self, *, client, settings: Settings, transport: Transport, pool: ThreadPoolExecutor,
                 on_bytes: Callable[[int], None], stop: threading.Event):
        self.client, self.s, self.transport, self.pool = client, settings, transport, pool
        self.on_bytes, self.stop = on_bytes, stop
        self._local = threading.local()
        # Where upload ids are journaled: this thread's connection to settings.journal, unless the worker
        # runs where that file is not (a Dask worker relays them to the coordinator: cluster/journal_relay.py).
        self.open_journal: Callable[[], Journal | None] | None = None

    @property
    def checksum(self) -> TransportChecksum:
        return self.transport.part_checksum

    def _journal(self) -> Journal | None:
        if self.open_journal is not None:
            return self.open_journal()
        if not self.s.journal:
            return None
        j = getattr(self._local, "journal", None)
        if j is None:
            j = self._local.journal = Journal(self.s.journal)
        return j

    def upload(self, *, path: str, key: str, size: int, mtime_ns: int, inode: int, digest: str,
               extra: dict) -> tuple[Stored, int]:
        """Upload (or finish uploading) `path` to `key`; returns (what S3 said it stored: ETag, checksum,
        version id, audit.py; number of parts S3 already had)."""
        part_size = part_size_for(size, self.s.multipart_chunksize)
        nparts = max(1, -(-size // part_size))
        checksum, full = self.checksum, self.transport.full_object
        kind = f"{checksum.algorithm} {FULL_OBJECT if full else COMPOSITE}" if checksum.enabled else ""
        journal = self._journal()
        upload_id, have, known = self._resume(journal, key=key, size=size, mtime_ns=mtime_ns, inode=inode,
                                              digest=digest, part_size=part_size, kind=kind)
        if upload_id is None:
            params = dict(extra)
            if checksum.enabled:
                params["ChecksumAlgorithm"] = checksum.algorithm
            if full:
                params["ChecksumType"] = FULL_OBJECT
            row = MultipartRow(key=key, upload_id=PENDING, size=size, mtime_ns=mtime_ns, inode=inode, digest=digest,
                               part_size=part_size, run_id=self.s.run_id, checksum=kind)
            if journal is not None:
                # Journaled before the create: a crash between S3's answer and our record leaves a marker
                # that lets the next run find and abort the upload it cannot name.
                journal.upload_started(row)
            upload_id = self.client.create_multipart_upload(Bucket=self.s.bucket, Key=key, **params)["UploadId"]
            if journal is not None:
                journal.upload_started(replace(row, upload_id=upload_id))
        futures = [self.pool.submit(self._part, path=path, key=key, upload_id=upload_id, number=n,
                                    offset=(n - 1) * part_size, length=min(part_size, size - (n - 1) * part_size),
                                    existing=have.get(n), journaled=known.get(n))
                   for n in range(1, nparts + 1)]
        try:
            parts = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            if journal is None:  # nothing could resume it: do not leave it behind
                abort_upload(self.client, bucket=self.s.bucket, key=key, upload_id=upload_id)
            raise
        reused = sum(1 for _, was_there, _ in parts if was_there)
        whole: dict = {}
        if full:
            # The whole file's CRC from its parts' (S3 checks it against the parts it holds, and keeps it).
            whole = {"ChecksumCRC64NVME": crc64_b64(combine_crc64nvme((b64_crc64(r.checksum), r.size)
                                                                       for _, _, r in parts)),
                     "ChecksumType": FULL_OBJECT}
        try:
            resp = self.client.complete_multipart_upload(
                Bucket=self.s.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [p for p, _, _ in parts]},
                # --no-overwrite: the object appears only if no one wrote the key since the file was looked at
                **whole, **self.transport.object_params.part(), **({"IfNoneMatch": "*"} if self.s.no_overwrite else {}))
        except Exception as exc:
            if self.s.no_overwrite and http_status(exc) == 412:
                self._retire(journal, key, [upload_id])
                raise Conflict("an object was written at this key during the upload; --no-overwrite leaves it") \
                    from None
            if error_code(exc) in ("BadDigest", "InvalidPart"):
                # The parts do not add up to what we combined (a journal that lies, a part replaced behind our
                # back): resuming this upload would fail the same way, so the file's next try starts afresh.
                self._retire(journal, key, [upload_id])
                if journal is not None:
                    journal.upload_ended(key, upload_id)
            raise
        if journal is not None:
            journal.upload_ended(key, upload_id)
        return from_response(resp, storage_class=extra.get("StorageClass")), reused

    def _resume(self, journal: Journal | None, *, key: str, size: int, mtime_ns: int, inode: int, digest: str,
                part_size: int, kind: str) -> tuple[str | None, dict[int, dict], dict[int, PartRecord]]:
        """(upload id to carry on, parts S3 holds, parts the journal vouches for); (None, {}, {}): start anew."""
        row = journal.upload_in_progress(key) if journal is not None else None
        if row is None:
            return None, {}, {}
        if row.upload_id == PENDING:
            # Created, but the crash came before its id was recorded: the key is ours, so are its uploads.
            self._retire(journal, key, open_uploads_to(self.client, bucket=self.s.bucket, key=key) or [])
            journal.upload_ended(key, PENDING)
            return None, {}, {}
        if (row.size, row.mtime_ns, row.inode, row.digest, row.part_size, row.checksum) != (
                size, mtime_ns, inode, digest, part_size, kind):
            # Ours, and it carries another version of the file, or a checksum kind this run cannot complete.
            self._retire(journal, key, [row.upload_id])
            journal.upload_ended(key, row.upload_id)
            return None, {}, {}
        try:
            have = self.list_parts(key, row.upload_id)
        except Exception as exc:
            if error_code(exc) == "NoSuchUpload" or http_status(exc) == 404:
                journal.upload_ended(key, row.upload_id)
                return None, {}, {}
            raise
        journal.upload_resumed(key, self.s.run_id)
        return row.upload_id, have, {p.number: p for p in row.parts}

    def list_parts(self, key: str, upload_id: str) -> dict[int, dict]:
        have: dict[int, dict] = {}
        pages = self.client.get_paginator("list_parts").paginate(Bucket=self.s.bucket, Key=key, UploadId=upload_id,
                                                                 **self.transport.object_params.part())
        for page in pages:
            for p in page.get("Parts", []):
                have[p["PartNumber"]] = p
        return have

    def _part(self, *, path: str, key: str, upload_id: str, number: int, offset: int, length: int,
              existing: dict | None, journaled: PartRecord | None) -> tuple[dict, bool, PartRecord]:
        if self.stop.is_set():
            raise CancelledError()
        checksum = self.checksum
        if existing is not None and journaled is not None and _journal_vouches(existing, journaled, length,
                                                                              checksum.param):
            part = {"PartNumber": number, "ETag": existing["ETag"]}
            if checksum.enabled:
                part[checksum.param] = journaled.checksum
            return part, True, journaled
        # Read once into one buffer: checksum, comparison and send all use it (s3transfer read each part
        # three times in small pieces, ~2x the CPU per GB).
        data = bytearray(length)
        f, _ = open_regular(path)
        with f:
            got = os.preadv(f.fileno(), [data], offset)
        if got != length:
            raise FileChanged(f"part {number} came up short: {got} of {length} bytes")
        part: dict = {"PartNumber": number}
        # CRC64NVME or a CRC32 per part (transport.part_checksum); the file's xxh3-128 is in the metadata.
        crc = checksum.of(data) if checksum.enabled else None
        if crc is not None:
            part[checksum.param] = crc
        if existing is not None and _same_part(existing, data, crc, checksum.param):
            part["ETag"] = existing["ETag"]
            return part, True, PartRecord(number, length, crc or "", existing["ETag"])
        etag = self.transport.upload_part(key=key, upload_id=upload_id, number=number, body=data,
                                          params={checksum.param: crc} if crc is not None else {})
        record = PartRecord(number, length, crc or "", etag)
        journal = self._journal()
        if journal is not None:
            journal.part_stored(key, upload_id, record)
        self.on_bytes(length)
        part["ETag"] = etag
        return part, False, record

    def _retire(self, journal: Journal | None, key: str, upload_ids: list[str]) -> None:
        retire(self.client, bucket=self.s.bucket, journal=journal, key=key, upload_ids=upload_ids)


ABORTED, GONE, FAILED = "aborted", "gone", "failed"


def abort_upload(client, *, bucket: str, key: str, upload_id: str) -> str:
    """Abort one upload: ABORTED now, GONE already (no such upload), or FAILED (could not say)."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:
        return GONE if error_code(exc) == "NoSuchUpload" or http_status(exc) == 404 else FAILED
    return ABORTED


def iter_uploads(client, *, bucket: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(key, upload id) of every unfinished multipart upload under `prefix`, page by page."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for u in page.get("Uploads", []):
            yield u["Key"], u["UploadId"]


def open_uploads_to(client, *, bucket: str, key: str) -> list[str] | None:
    """Ids of the open uploads to exactly this key (None: the listing failed)."""
    try:
        return [upload_id for k, upload_id in iter_uploads(client, bucket=bucket, prefix=key) if k == key]
    except Exception:
        return None


def retire(client, *, bucket: str, journal: Journal | None, key: str, upload_ids: list[str]) -> None:
    """Abort these uploads now, and (with a journal) once more at the end of the run."""
    for upload_id in upload_ids:
        abort_upload(client, bucket=bucket, key=key, upload_id=upload_id)
        if journal is not None:
            journal.upload_aborted(key, upload_id)


def sweep_stale(client, *, bucket: str, journal: Journal, run_id: str) -> None:
    """At the end of a finished run: abort the journaled uploads this run did not touch (their files are
    gone, changed or were skipped: nothing will complete them, and their parts would be paid for forever),
    and abort again every upload aborted earlier until S3 says it is gone. Rows stay while S3 cannot be
    asked, for the next run."""
    for row in journal.uploads_left_behind(run_id):
        ids = [row.upload_id] if row.upload_id != PENDING else open_uploads_to(client, bucket=bucket, key=row.key)
        if ids is None:
            continue
        for upload_id in ids:
            journal.upload_aborted(row.key, upload_id)
        journal.upload_ended(row.key, row.upload_id)
    for key, upload_id in journal.aborted_uploads():
        if abort_upload(client, bucket=bucket, key=key, upload_id=upload_id) == GONE:
            journal.abort_confirmed(key, upload_id)


def _journal_vouches(existing: dict, journaled: PartRecord, length: int, checksum_param: str) -> bool:
    """Is the part S3 holds the one journaled when S3 confirmed it? Same size and ETag (and checksum, when
    ListParts reports one): then its journaled checksum is its own, and the file need not be read again."""
    if not (existing.get("Size") == journaled.size == length and _etag(existing) == journaled.etag.strip('"')):
        return False
    reported = existing.get(checksum_param)
    return reported is None or reported == journaled.checksum


def _etag(part: dict) -> str:
    return part.get("ETag", "").strip('"')


def _same_part(existing: dict, data: bytes, crc: str | None, checksum_param: str) -> bool:
    """Does the part S3 holds carry exactly these bytes? By its checksum when S3 reports one, else by its
    ETag (the MD5 of the part for unencrypted uploads)."""
    if existing.get("Size") != len(data):
        return False
    if crc is not None and existing.get(checksum_param):
        return existing[checksum_param] == crc
    return existing.get("ETag", "").strip('"') == hashlib.md5(data).hexdigest()
