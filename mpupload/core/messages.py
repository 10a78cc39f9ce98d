"""Plain-value messages that cross process boundaries. Only str, int, float and tuples of them:
exceptions never cross; their kind and message do."""

from __future__ import annotations

from dataclasses import dataclass

UPLOADED, SKIPPED, FAILED = "uploaded", "skipped", "failed"

# Reasons for the skips that are the point of a rerun (routine, not news to the user).
SKIP_JOURNAL = "unchanged since it was stored (journal)"
SKIP_SAME_DIGEST = "already at the destination (same size and xxh3-128)"
SKIP_SAME_MD5 = "already at the destination (same size and MD5)"
SKIP_SAME_SIZE = "an object of the same size is already at the destination"
ROUTINE_SKIPS = frozenset({SKIP_JOURNAL, SKIP_SAME_DIGEST, SKIP_SAME_MD5, SKIP_SAME_SIZE})


@dataclass(frozen=True, slots=True)
class FileTask:
    path: str
    rel: str
    key: str
    size: int
    mtime_ns: int
    inode: int
    partition: str
    # Size of an object already at the key (from the destination listing), or -1: the worker then
    # compares digests and skips the upload if they match.
    remote_size: int = -1


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: int
    partition: str
    tasks: tuple[FileTask, ...]


@dataclass(frozen=True, slots=True)
class UploadResult:
    rel: str
    key: str
    status: str  # uploaded | skipped | failed
    reason: str = ""
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    digest: str = ""
    etag: str = ""
    attempts: int = 0
    seconds: float = 0.0
    batch_id: int = 0
    parts_reused: int = 0  # multipart parts S3 already had from an earlier, interrupted run
    partition: str = ""  # the year it was planned under (report.json totals per partition); "" when none
    # The audit trail of an upload, as S3 answered it: "ALGORITHM:base64" of the checksum S3 returned (""
    # when none), the version id (versioned buckets), the storage class the object was written to.
    checksum: str = ""
    version_id: str = ""
    storage_class: str = ""
    source_path: str = ""  # how source-path metadata was stored: "" percent-encoded, "rfc2047" or "omitted"


@dataclass(frozen=True, slots=True)
class Skips:
    """From the planner: files it skipped for `reason`, counted rather than sent one by one. `stored` holds
    journal rows (key, rel, size, mtime_ns, inode, digest, etag) for skips the journal did not know yet."""

    reason: str
    files: int
    nbytes: int
    stored: tuple[tuple, ...] = ()
    # With --log-file only: (rel, key, size, partition) of each file, so the log names every one.
    listed: tuple[tuple[str, str, int, str], ...] = ()
    partition: str = ""


@dataclass(frozen=True, slots=True)
class BatchTaken:
    worker: int
    batch_id: int


# What the transport counts (WorkerReport.transport): requests sent lean or through botocore, lean requests
# declined (detail: the reason), processes whose lean path was off (detail: why) and the transport checksum
# each process chose (detail: the algorithm), and its multipart checksum (detail: e.g. "CRC64NVME FULL_OBJECT").
# Plain strings: they cross process boundaries.
SENT_LEAN, SENT_BOTOCORE, DECLINED, LEAN_OFF, CHECKSUM = "lean", "botocore", "declined", "lean_off", "checksum"
MULTIPART_CHECKSUM = "multipart_checksum"
TRANSPORT_COUNTS = (SENT_LEAN, SENT_BOTOCORE, DECLINED, LEAN_OFF, CHECKSUM, MULTIPART_CHECKSUM)


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """Results finished since the last report, plus bytes put on the wire (parts included)."""

    worker: int
    results: tuple[UploadResult, ...]
    bytes_sent: int
    # The transport's counters since the last report, (kind, detail, n) each: kind one of TRANSPORT_COUNTS.
    transport: tuple[tuple[str, str, int], ...] = ()
    inflight: int = -1  # files this worker had in flight when it sent the report (-1: not known)


@dataclass(frozen=True, slots=True)
class WorkerStarted:
    worker: int
    pid: int


@dataclass(frozen=True, slots=True)
class WorkerDone:
    worker: int


@dataclass(frozen=True, slots=True)
class Fatal:
    """A condition that makes every further upload pointless (bad credentials, missing bucket)."""

    worker: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """From the coordinator's scanning thread: files and bytes found since the last message."""

    files: int
    nbytes: int
    done: bool = False
    error: str = ""
    partitions: tuple[tuple[str, int, int], ...] = ()  # (partition, files, bytes) of those found


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should read (from the coordinator's own threads), drawn by the one writer."""

    text: str


@dataclass(frozen=True, slots=True)
class BatchRerun:
    """From a Dask task that the cluster started again after the worker running it died: the coordinator
    hands out what that batch has not settled, with the upload ids journaled meanwhile (cluster/)."""

    batch_id: int


@dataclass(frozen=True, slots=True)
class JournalOp:
    """A multipart upload's journal write made on a Dask worker, applied by the coordinator: `op` names a
    Journal method (upload_started, upload_resumed, upload_ended, upload_aborted), `args` its arguments."""

    op: str
    args: tuple
