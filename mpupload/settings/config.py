"""Every knob in one place: the frozen `Settings`, its defaults (and where they came from), validation,
checked as a whole (the botocore and s3transfer configs built from it are in s3/clientconfig.py).
Longer than ~300 lines on purpose: one table of every setting with its help is what keeps the CLI, the
settings file, the environment and `config show` in step (rclone keeps its options the same way).

Memory bound, roughly: processes x (threads x multipart_chunksize + ~60 MB interpreter and client).
Small files are read whole (below the multipart threshold), and `inflight_bytes` caps those a process
holds at once; large files go part by part through mpupload's own resumable multipart upload
(s3/multipart.py), each part read once into one buffer, at most `threads` parts in memory per process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from mpupload.core.errors import SettingsError
from mpupload.core.units import format_size, parse_address, parse_duration  # noqa: F401 - their settings
from mpupload.settings.objects import (
    CANNED_ACLS,
    REQUEST_PAYERS,
    SMALL_OBJECT_SIZE,
    SSE_MODES,
    STORAGE_CLASSES,
    check_object_settings,
    parse_metadata,
    parse_tags,
)

KIB, MIB, GIB = 1024, 1024**2, 1024**3

# S3's hard limits on multipart uploads.
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB
MAX_OBJECT_SIZE = 5 * 1024**4  # 5 TiB: the largest object S3 stores, whatever the part size

# Every unit is 1024-based, as in the AWS CLI (`multipart_chunksize = 8MB` and `max_bandwidth = 50MB/s` in
# ~/.aws/config mean MiB): a value copied from an AWS CLI configuration means the same bytes here. `MB` and
# `MiB` are one unit; for powers of ten write the bytes (50000000). What mpupload prints as MB/s is 10^6.
_CHECKSUMS = ("auto", "XXHASH128", "CRC32", "CRC32C", "CRC64NVME", "SHA256", "none")


def default_processes() -> int:
    """One process per core, at least 2: on a 2-core box 2x8 did 373 PUT/s where 1x16 did 234 (seed bench)."""
    return max(2, min(os.cpu_count() or 2, 16))


def _opt(default: Any, help: str, source: str = "", **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, "source": source, **extra})


@dataclass(frozen=True)
class Settings:
    """All run settings. Field metadata carries the help text the CLI shows."""

    source: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = _opt(None, "S3 endpoint, e.g. http://127.0.0.1:8333 (default: AWS).")
    region: str | None = _opt(None, "AWS region (default: from the profile / environment).")
    profile: str | None = _opt(None, "AWS profile (default: the standard credential chain).")
    addressing_style: str | None = _opt(None, "Bucket addressing: path (https://HOST/BUCKET/KEY), virtual "
                                        "(https://BUCKET.HOST/KEY) or auto (default: path with --endpoint-url, "
                                        "else auto, as botocore).", choices=("auto", "path", "virtual"))
    processes: int | None = _opt(None, "Worker processes (default: chosen from the CPU count and the file "
                                 "sizes, see autotune.py; 0 = no worker processes, threads in the coordinator, "
                                 "for debugging).",
                          "bench/: one per core for small files, 1-2 for large ones")
    threads: int = _opt(8, "Upload threads per process: small files in flight, and parts of large files in "
                        "flight. Without it (here or in --config), small files in flight follow the link: sized "
                        "from the round trip the preflight measures, then raised while throughput grows "
                        "(concurrency.py); parts still use this value.",
                        "seed bench: 8 threads saturate one core on loopback")
    adaptive: bool = False  # set by the CLI when --threads was left to its default: see concurrency.py
    max_inflight: int = _opt(128, "With --threads unset: the most small files in flight per process.",
                             "threads waiting on the network are cheap; 128 x 2 covers 200 ms")
    inflight_bytes: int = _opt(256 * MIB, "Most bytes of small files one process holds in memory at once.",
                               "keeps the memory bound whatever the concurrency")
    multipart_threshold: int = _opt(8 * MIB, "Files this size and larger use multipart uploads.",
                                    "s3transfer default")
    multipart_chunksize: int = _opt(8 * MIB, "Part size for multipart uploads (raised automatically so "
                                    "no file needs more than 10,000 parts).", "s3transfer default")
    read_timeout: float = _opt(300.0, "Seconds to wait for a response before retrying.",
                               "seed V2: zero timeouts on slow links")
    connect_timeout: float = _opt(60.0, "Seconds to wait for a connection.", "seed V2")
    max_pool_connections: int = _opt(50, "HTTP connections per process (never below --threads).")
    retries: int = _opt(10, "Attempts per request (botocore standard/adaptive retry).")
    retry_mode: str = _opt("standard", "botocore retry mode: standard or adaptive.", choices=("standard", "adaptive"))
    file_attempts: int = _opt(5, "Attempts per file before it is reported failed.")
    backoff_base: float = _opt(1.0, "Seconds before a file's second attempt; doubles each attempt (with jitter).")
    backoff_cap: float = _opt(30.0, "Longest wait between attempts at one file, in seconds.")
    outage_timeout: float = _opt(300.0, "When the endpoint stops answering, all workers pause and a probe waits "
                                 "this many seconds for it to come back before the run stops.",
                                 "long enough for a server restart or a network blip")
    stop_grace: float = _opt(5.0, "After Ctrl-C, SIGTERM or SIGHUP: seconds the requests in flight get to finish "
                             "before the workers are stopped (what is cut is resumed by the next run).",
                             "well under the 10 s docker and Kubernetes wait before SIGKILL")
    checksum: str = _opt("auto", "Transport checksum the server verifies on every PUT and part: auto (the file's "
                         "own xxh3-128 as XXHASH128 where a probe shows the server checks it, else CRC32; multipart "
                         "uploads: CRC64NVME parts and a FULL_OBJECT CRC64NVME where the server keeps one), XXHASH128, "
                         "CRC32, CRC32C or CRC64NVME (these two need awscrt: pip install 'mpupload[crt]'), SHA256, "
                         "or none.",
                         "one hash instead of two where S3 checks xxh3; zlib's CRC32 where it does not",
                         choices=_CHECKSUMS)
    fast_put: bool = _opt(True, "Send small files and the parts of large ones with mpupload's own SigV4-signed "
                          "PUT on kept-alive connections, to the endpoint botocore resolves for the bucket; any "
                          "error or non-200 reply is sent again through botocore. --no-fast-put sends everything "
                          "through botocore.",
                          "bench/: ~1.1 ms less client CPU per small file, ~1 CPU-s less per GB")
    verify_tls: bool = _opt(True, "Verify TLS certificates (turn off only for a test server).")
    ca_bundle: str | None = _opt(None, "CA bundle for TLS verification.")
    # What every object carries, on every write path (s3/objectparams.py builds it; settings/objects.py checks it).
    sse: str | None = _opt(None, "Server-side encryption of every object: AES256 (SSE-S3), aws:kms (SSE-KMS) or "
                           "aws:kms:dsse (dual-layer SSE-KMS). Default: the bucket's default encryption.",
                           "what the bucket says", choices=SSE_MODES)
    sse_kms_key_id: str | None = _opt(None, "With --sse aws:kms or aws:kms:dsse: the KMS key (id, ARN or alias ARN) "
                                      "instead of the account's aws/s3 key.")
    sse_bucket_key: bool = _opt(False, "With --sse aws:kms: use an S3 Bucket Key (far fewer KMS requests, so less "
                                "KMS cost and throttling at millions of objects).")
    sse_c_key_file: str | None = _opt(None, "SSE-C: encrypt every object with the 256-bit key in this file (32 raw "
                                      "bytes, 64 hex digits or base64, e.g. from `openssl rand 32`). Read by each "
                                      "process, sent with every write, HEAD and GET of the objects (upload and "
                                      "verify); never printed, logged or stored. Keep the key: without it the "
                                      "objects cannot be read.")
    storage_class: str | None = _opt(None, "Storage class of every object (e.g. STANDARD_IA, GLACIER_IR, "
                                     "DEEP_ARCHIVE; written straight there, no lifecycle transition). Default: "
                                     "the bucket's (STANDARD).", "STANDARD, as S3", choices=STORAGE_CLASSES)
    small_storage_class: str | None = _opt(None, "Storage class of objects smaller than --small-object-size, "
                                           "instead of --storage-class (archive tiers bill a small object as 128 KiB "
                                           "or add 40 KB to it), e.g. --storage-class DEEP_ARCHIVE "
                                           "--small-storage-class STANDARD.", choices=STORAGE_CLASSES)
    small_object_size: int | None = _opt(None, "With --small-storage-class: objects below this size get it "
                                         f"(default {SMALL_OBJECT_SIZE // KIB} KiB, the least size archive and "
                                         "infrequent-access tiers bill).")
    acl: str | None = _opt(None, "Canned ACL of every object (buckets with ACLs disabled, the default since 2023, "
                           "accept only bucket-owner-full-control or none). Default: none sent.", choices=CANNED_ACLS)
    tags: str = _opt("", "Tags of every object, as a URL query: 'project=atlas&owner=ops' (values percent-encoded "
                     "or plain).")
    metadata: str = _opt("", "User metadata of every object: 'key=value,key2=value2' (or a JSON object), beside "
                         "mpupload's own keys (xxh3-128, source-mtime, source-path), which win over a key of "
                         "the same name. Printable ASCII.")
    content_type: str | None = _opt(None, "Content-Type of every object, instead of the one mpupload's own table "
                                    "gives by the file's suffix (core/contenttypes.py: the same on every machine).")
    cache_control: str | None = _opt(None, "Cache-Control of every object, e.g. 'max-age=86400'.")
    content_encoding: str | None = _opt(None, "Content-Encoding of every object, e.g. gzip (the files' bytes are "
                                        "sent as they are).")
    content_disposition: str | None = _opt(None, "Content-Disposition of every object, e.g. attachment.")
    expected_bucket_owner: str | None = _opt(None, "The 12-digit account that must own the bucket: S3 refuses every "
                                             "request (403) if another account owns it.")
    request_payer: str | None = _opt(None, "requester: this account pays for the requests (a Requester Pays "
                                     "bucket).", choices=REQUEST_PAYERS)
    include: tuple[str, ...] = _opt((), "Only files whose relative path matches one of these globs.")
    exclude: tuple[str, ...] = _opt((), "Skip files whose relative path matches one of these globs; a glob ending "
                                    "in * that matches a folder's path and '/' (.snapshot/*, */.snapshot/*) keeps "
                                    "the walk out of that folder altogether.")
    exclude_from: tuple[str, ...] = _opt((), "Read --exclude globs from this file: one per line, blank lines and "
                                         "lines starting with # ignored.")
    min_size: int | None = _opt(None, "Only files of at least this size, e.g. 1KB (1024-based as in the AWS CLI).")
    max_size: int | None = _opt(None, "Only files of at most this size, e.g. 5GB.")
    min_age: float | None = _opt(None, "Only files last modified at least this long ago (from their mtime), "
                                 "e.g. 30m, 12h, 7d: leaves out files still being written.")
    max_age: float | None = _opt(None, "Only files last modified at most this long ago, e.g. 7d: a pass that "
                                 "picks up what changed lately.")
    one_file_system: bool = _opt(False, "Do not cross into other file systems (mount points below SOURCE, e.g. "
                                 "NFS snapshots): their folders are not walked.")
    files_from: str | None = _opt(None, "Upload (or verify) only the files listed in this file, one path "
                                  "relative to SOURCE per line (absolute paths inside SOURCE are accepted too); "
                                  "'-' reads the list from stdin. A listed file that is missing fails; listed "
                                  "folders are skipped (list their files). The list is sorted on disk first, "
                                  "so it may hold tens of millions of lines.")
    null: bool = _opt(False, "--files-from entries are separated by NUL bytes (find -print0), not newlines: "
                      "names may then hold newlines.")
    key_normalization: str = _opt("nfc", "Unicode form of object keys: nfc (a name written on macOS, in NFD, "
                                  "gets the same key as the same name typed elsewhere; two local names that "
                                  "become one key are both reported failed) or none (keys keep the bytes "
                                  "of the names).", "NFC is what most systems and keyboards produce",
                                  choices=("nfc", "none"))
    year_pattern: str | None = _opt(None, "Regex with one group, applied to the relative path, giving the "
                                    "year when no folder is a year.")
    key_template: str = _opt("{prefix}/{relpath}", "Object key of each file, from {prefix}, {year} (its partition), "
                             "{relpath} (path under SOURCE), {name} (file name), {parent} (its folder under SOURCE), "
                             "e.g. '{prefix}/{year}/{name}' to sort a flat folder into years. Two files mapping to "
                             "one key stop the run before it starts.", "the source's own layout")
    follow_symlinks: bool = _opt(False, "Upload the targets of symlinks (loop-safe) instead of skipping them.")
    skip_existing: str = _opt("checksum", "What counts as already uploaded: 'journal' (unchanged since this "
                              "machine stored it), 'size' (also: an object of the same size exists), 'checksum' "
                              "(also: an object with the same size and xxh3-128), 'never'.",
                              "safest that is still fast: the journal answers reruns without hashing",
                              choices=("journal", "size", "checksum", "never"))
    journal: str | None = _opt(None, "Journal file (SQLite) of what is stored; default: one per source and "
                               "destination under $XDG_STATE_HOME/mpupload.")
    run_id: str = ""  # set by the coordinator for each run; marks the multipart uploads this run touched
    dry_run: bool = _opt(False, "Show the plan (files, bytes, partitions); upload nothing.")
    no_overwrite: bool = _opt(False, "Never replace an object: where one with other content is already at a file's "
                              "key, the file fails as a conflict (exit 1) and the object stays (PUTs carry "
                              "If-None-Match: *, so an object written meanwhile by someone else is kept too).")
    delete: bool = _opt(False, "The mirror pass of a cutover: after an upload in which every file landed, delete "
                        "the objects under the destination that no file under SOURCE maps to (only in the run's "
                        "key space: --include / --exclude and --shard leave other objects alone). Nothing is "
                        "deleted after a run with any failure. Not with --files-from.")
    max_delete: str = _opt("10%", "With --delete: the most objects one pass may delete, a count (500) or a share "
                           "of the objects under the prefix (10%); a pass that would delete more deletes "
                           "nothing and exits 1.", "a mass deletion must be asked for")
    batch_files: int = _opt(64, "Files per work batch handed to a worker.",
                            "small enough that idle workers steal work from big years")
    batch_bytes: int = _opt(256 * MIB, "Bytes per work batch handed to a worker.")
    max_bandwidth: int | None = _opt(None, "Most bytes per second sent by all processes together, e.g. 50MB/s "
                                     "(1024-based as in the AWS CLI: 50MB/s = 52,428,800 bytes/s; write bytes, e.g. "
                                     "50000000, for 10^6-based; a limit makes the run slower, never failed).",
                                     "none: as fast as the link and server allow")
    max_requests_per_second: float | None = _opt(None, "Most PUT / part requests per second started by all processes "
                                                 "together (a limit makes the run slower, never failed).",
                                                 "none: the shared pace still backs off on throttling")
    limit_schedule: str | None = _opt(None, "Limits by the time of day, local time: \"08:00,10MB/s 19:00,off\" "
                                      "(TIME,BANDWIDTH[,REQUESTS_PER_SECOND] entries; off: no limit). Replaces "
                                      "--max-bandwidth / --max-requests-per-second; `mpupload limit` overrides it.",
                                      "none: the flags hold all run")
    partition_pause: float = _opt(0.0, "Seconds with nothing sent between one partition (year) and the next, "
                                  "for a link shared with others (the seed's pause between years).",
                                  "0: no pause")
    executor: str = _opt("local", "Who uploads: local (worker processes on this machine) or dask (the tasks of a Dask "
                         "cluster: --scheduler, or a local cluster of --processes workers; needs "
                         "pip install 'mpupload[dask]' and SOURCE at the same path on every worker).",
                         "one machine is the common case", choices=("local", "dask"))
    scheduler: str | None = _opt(None, "With --executor dask: the Dask scheduler's address, e.g. "
                                 "tcp://10.0.0.5:8786 (default: start a local cluster).")
    shard: str | None = _opt(None, "K/N: upload (or verify) only the K-th of N shares of the source, split by a "
                             "stable hash of each relative path, so N machines with no cluster between them "
                             "cover every file exactly once (each with its own journal).")
    report: str | None = _opt(None, "Folder for this run's report.json and report.html (default: a folder per run "
                              "beside the journal; `mpupload report` lists them).")
    log_file: str | None = _opt(None, "Append one JSON record per file (uploaded, skipped or failed, with the reason, "
                                "attempts and seconds) to this file, between a start and an end record of the run.")
    metrics_address: str | None = _opt(None, "Serve Prometheus metrics of the run at HOST:PORT while it runs "
                                       "(http://HOST:PORT/metrics; needs pip install 'mpupload[metrics]'). PORT alone "
                                       "listens on 127.0.0.1 only; another interface only when named, e.g. "
                                       "0.0.0.0:9464 (anyone who reaches it sees the counts and paths, no credentials).")
    metrics_linger: float = _opt(0.0, "With --metrics-address: after the run, keep serving its final values until "
                                 "they have been scraped once, at most this many seconds (set it to the scrape "
                                 "interval, so the last values reach Prometheus).", "0: exit at once")
    json_output: bool = _opt(False, "JSON lines on stdout instead of the human view.")
    progress_interval: float = _opt(1.0, "Seconds between progress updates.")
    quiet: bool = _opt(False, "Print only the summary: no live view, no progress lines (warnings still go to stderr).")

    @property
    def effective_processes(self) -> int:
        return default_processes() if self.processes is None else max(1, self.processes)

    def validated(self) -> Settings:
        """Check every setting; raise SettingsError with one clear message."""
        _check_delete(self)
        _check_schedule(self)
        _check_transfer(self)
        _check_run(self)
        check_object_settings(self)  # the object settings' syntax and combinations (settings/objects.py)
        from mpupload.core.s3limits import LimitError, check_object_limits

        try:  # then S3's limits on what each object carries (--metadata beside mpupload's own, --tags)
            check_object_limits(metadata=parse_metadata(self.metadata), tags=parse_tags(self.tags))
        except LimitError as exc:
            raise SettingsError(str(exc)) from None
        # A pool smaller than the threads would make threads queue for sockets.
        most = max(self.threads, self.max_inflight if self.adaptive else 0)
        return replace(self, max_pool_connections=max(self.max_pool_connections, most + 2))

    def _check_filters(self) -> None:
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            raise SettingsError("--min-size is larger than --max-size: no file could be uploaded")
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise SettingsError("--min-age is longer than --max-age: no file could be uploaded")



def part_size_for(size: int, chunksize: int) -> int:
    """The part size actually used: the configured one, doubled until the file fits in 10,000 parts."""
    part = chunksize
    while size > part * MAX_PARTS:
        part *= 2
    return min(part, MAX_PART_SIZE)


def _check_schedule(s: Settings) -> None:
    if s.limit_schedule:
        from mpupload.settings.timetable import parse_schedule

        parse_schedule(s.limit_schedule)


def _check_delete(s: Settings) -> None:
    if not re.fullmatch(r"\d+%?|\d+\.\d+%", s.max_delete.strip()):
        raise SettingsError(f"--max-delete {s.max_delete!r}: give a count (500) or a share of the objects (10%)")
    if s.delete and s.no_overwrite:
        raise SettingsError("--delete with --no-overwrite: a mirror pass replaces and removes, --no-overwrite "
                            "promises to do neither")
    if s.delete and s.files_from:
        raise SettingsError("--delete with --files-from: a list names what to upload, not what the destination "
                            "must hold (run --delete without --files-from to mirror SOURCE)")


def _check_transfer(s: Settings) -> None:
    """Processes, threads, parts, timeouts, retries, checksums."""
    if s.processes is not None and not 0 <= s.processes <= 256:
        raise SettingsError("--processes must be between 0 and 256")
    if not 1 <= s.threads <= 256:
        raise SettingsError("--threads must be between 1 and 256")
    if s.multipart_chunksize < MIN_PART_SIZE:
        raise SettingsError(f"--multipart-chunksize must be at least {format_size(MIN_PART_SIZE)} (S3's minimum part)")
    if s.multipart_chunksize > MAX_PART_SIZE:
        raise SettingsError(f"--multipart-chunksize must be at most {format_size(MAX_PART_SIZE)}")
    if s.multipart_threshold < 1:
        raise SettingsError("--multipart-threshold must be at least 1 byte")
    if s.read_timeout <= 0 or s.connect_timeout <= 0:
        raise SettingsError("timeouts must be positive")
    if s.stop_grace < 0:
        raise SettingsError("--stop-grace must not be negative")
    if s.outage_timeout <= 0:
        raise SettingsError("--outage-timeout must be positive")
    if s.retries < 1 or s.file_attempts < 1:
        raise SettingsError("--retries and --file-attempts must be at least 1")
    if s.retry_mode not in ("standard", "adaptive"):
        raise SettingsError("--retry-mode must be standard or adaptive (legacy retries are not used)")
    if s.checksum not in _CHECKSUMS:
        raise SettingsError(f"--checksum must be one of {', '.join(_CHECKSUMS)}")
    try:
        from mpupload.core.hashing import TransportChecksum

        if s.checksum != "auto":
            TransportChecksum(s.checksum)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _check_run(s: Settings) -> None:
    """What a run is made of: skips, batches, layout, limits, filters, executor, shard."""
    if s.skip_existing not in ("journal", "size", "checksum", "never"):
        raise SettingsError("--skip-existing must be journal, size, checksum or never")
    if s.batch_files < 1 or s.batch_bytes < 1:
        raise SettingsError("batch sizes must be positive")
    if s.year_pattern:
        try:
            rx = re.compile(s.year_pattern)
        except re.error as exc:
            raise SettingsError(f"--year-pattern is not a valid regex: {exc}") from None
        if rx.groups < 1:
            raise SettingsError("--year-pattern needs one capturing group for the year, e.g. '_(\\d{4})_'")
    from mpupload.core.keys import parse as parse_template

    parse_template(s.key_template)
    if s.max_bandwidth is not None and s.max_bandwidth < 1024:
        raise SettingsError("--max-bandwidth must be at least 1KiB/s")
    if s.max_requests_per_second is not None and s.max_requests_per_second <= 0:
        raise SettingsError("--max-requests-per-second must be positive")
    if s.partition_pause < 0:
        raise SettingsError("--partition-pause must not be negative")
    s._check_filters()
    if s.metrics_address is not None:
        parse_address(s.metrics_address)
    if s.metrics_linger < 0:
        raise SettingsError("--metrics-linger must not be negative")
    if s.null and not s.files_from:
        raise SettingsError("--null only applies to --files-from")
    if s.key_normalization not in ("nfc", "none"):
        raise SettingsError("--key-normalization must be nfc or none")
    if s.executor not in ("local", "dask"):
        raise SettingsError("--executor must be local or dask")
    if s.scheduler and s.executor != "dask":
        raise SettingsError("--scheduler only applies to --executor dask")
    if s.shard:
        from mpupload.core.shard import Shard, ShardError

        try:
            Shard.parse(s.shard)
        except ShardError as exc:
            raise SettingsError(str(exc)) from None
    if not 1 <= s.max_inflight <= 1024:
        raise SettingsError("--max-inflight must be between 1 and 1024")
