"""The destination: building clients (inside each process: clients cannot be pickled or forked safely),
parsing s3:// URLs, and the preflight probe that turns bad credentials, a missing bucket, a dead endpoint
or a read-only key into one clear fatal error before any file is touched."""

from __future__ import annotations

import contextlib
import gc
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from .config import Settings, SettingsError, botocore_config
from .errors import FATAL, FatalError, classify, error_code, http_status


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix/' -> ('bucket', 'some/prefix')."""
    if not url.startswith("s3://"):
        raise SettingsError(f"destination must look like s3://BUCKET[/PREFIX], not {url!r}")
    rest = url[5:]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SettingsError(f"no bucket in {url!r}")
    return bucket, prefix.strip("/")


PROBE_MARK = ".mpupload-write-probe-"  # the preflight's write probe: a multipart upload started and aborted
_sessions: dict[tuple[str | None, str | None], tuple] = {}  # (boto3 session, its botocore session)
_sessions_lock = threading.Lock()


def botocore_session(settings: Settings):
    """The botocore session of this process for these settings (profile, region): the public way to the
    credentials the clients use (refreshed when temporary) and to config such as `ca_bundle`."""
    import boto3
    import botocore.session

    with _sessions_lock:
        ident = (settings.profile, settings.region)
        if ident not in _sessions:
            core = botocore.session.Session(profile=settings.profile)
            _sessions[ident] = (boto3.session.Session(botocore_session=core, region_name=settings.region), core)
        return _sessions[ident][1]


def make_client(settings: Settings, *, config=None):
    """A boto3 S3 client from the standard credential chain (or --profile). Credentials stay inside
    botocore: they are never copied into our settings, messages or logs.

    One session per process (per profile and region): its loader keeps the parsed service model, so a
    second client costs ~15 ms instead of ~150 ms. Sessions are not thread-safe, hence the lock; the
    clients they make are.

    TLS: only --ca-bundle or --no-verify-tls are passed; otherwise verify is left to botocore, which then
    finds AWS_CA_BUNDLE or the profile's ca_bundle (passing True would override both)."""
    verify: bool | str | None = settings.ca_bundle or (None if settings.verify_tls else False)
    with _collector_paused(not _sessions):
        botocore_session(settings)
        with _sessions_lock:
            session = _sessions[(settings.profile, settings.region)][0]
            return session.client(
                "s3", endpoint_url=settings.endpoint_url, config=config or botocore_config(settings), verify=verify
            )


@contextlib.contextmanager
def _collector_paused(first: bool) -> Iterator[None]:
    """Importing boto3 and building the first session and client allocate a few hundred thousand objects
    that live as long as the process; the cyclic collector scanning them again and again meanwhile costs
    ~15% of that CPU (~40 ms in each worker process). Paused for the first client only, and only if on:
    the CLI already pauses it for the whole of its start-up."""
    pause = first and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


def describe_destination(settings: Settings) -> str:
    where = f"s3://{settings.bucket}/{settings.prefix}".rstrip("/")
    return f"{where} at {settings.endpoint_url}" if settings.endpoint_url else where


@dataclass(frozen=True)
class ProbeResult:
    """What the preflight learned on the way."""

    latency: float | None  # the fastest of its requests, seconds (round trip plus the server's time for a
    # tiny request; concurrency.py sizes from it)
    empty: bool  # its listing found no object under the prefix (False: found one, or could not list)


def preflight(settings: Settings, *, write: bool = True) -> ProbeResult:
    """Raise FatalError unless we can list (or at least write) the destination; with write=False (verify)
    the listing alone must work. Returns the link's latency and whether the prefix is empty.

    Uses short timeouts and few attempts so a dead endpoint is reported in seconds, not after the
    run's patient per-request timeouts. The write probe starts and aborts a multipart upload: it
    proves PutObject permission without leaving an object behind.
    """
    from botocore import exceptions as be

    probe_settings = replace(settings, connect_timeout=min(settings.connect_timeout, 5.0),
                             read_timeout=min(settings.read_timeout, 20.0), retries=3)
    dest = describe_destination(settings)
    try:
        client = make_client(probe_settings)
    except be.ProfileNotFound as exc:
        raise FatalError("credentials", f"AWS profile not found: {exc.kwargs.get('profile')}") from None
    except Exception as exc:
        raise FatalError("config", f"cannot set up the S3 client: {exc}") from None
    bucket, prefix = settings.bucket, settings.prefix
    probe_key = probe_prefix(prefix) + secrets.token_hex(6)
    timings: list[float] = []

    def timed(call, **kwargs):
        t0 = time.perf_counter()
        out = call(**kwargs)
        timings.append(time.perf_counter() - t0)  # list.append is atomic: the probes run in threads
        return out

    def write_probe() -> None:
        upload = timed(client.create_multipart_upload, Bucket=bucket, Key=probe_key)
        try:
            timed(client.abort_multipart_upload, Bucket=bucket, Key=probe_key, UploadId=upload["UploadId"])
        except be.ClientError as exc:
            # Another run's clean-up of leftover probes (abort_probe_leftovers) may have aborted it first.
            if error_code(exc) != "NoSuchUpload" and http_status(exc) != 404:
                raise

    # The write probe runs beside the listing (clients are thread-safe): one round trip less before the
    # first file, 20-200 ms over a real link. The listing's verdict, when it fails, is the one reported.
    writing = sweeping = None
    if write:
        writing = _Background(write_probe, name="preflight-write")
        # Probes that killed runs left behind are cleared beside it (best effort: errors are ignored).
        sweeping = _Background(lambda: abort_probe_leftovers(client, bucket=bucket, prefix=prefix, spare=probe_key),
                               name="preflight-leftovers")
    try:
        listing_error: Exception | None = None
        empty = False
        try:
            listed = timed(client.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1)
            empty = not listed.get("KeyCount", 1)
        except be.ClientError as exc:
            # A write-only key may not list; the write probe decides. Bad credentials are also a
            # 403 (SignatureDoesNotMatch, InvalidAccessKeyId): those must not pass for "cannot list".
            denied = error_code(exc) == "AccessDenied" or http_status(exc) == 403
            if not write or not denied or classify(exc)[0] == FATAL:
                listing_error = exc
        except Exception as exc:
            listing_error = exc
        # Whatever the listing says, the write probe ends first, so its upload is never left behind.
        write_error = writing.wait() if writing is not None else None
        if sweeping is not None:
            sweeping.wait()
        if listing_error is not None or write_error is not None:
            raise listing_error or write_error
        return ProbeResult(latency=min(timings, default=None), empty=empty)
    except be.SSLError as exc:
        raise FatalError("tls", f"TLS verification failed for {settings.endpoint_url or 'S3'}: {_first_line(exc)} "
                         "(use --ca-bundle, or --no-verify-tls for a test server)") from None
    except (be.EndpointConnectionError, be.ConnectTimeoutError, be.ReadTimeoutError, be.ConnectionClosedError) as exc:
        raise FatalError("endpoint", f"cannot reach the S3 endpoint {settings.endpoint_url or ''}: "
                         f"{_first_line(exc)}".replace("  ", " ")) from None
    except be.ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            raise FatalError("bucket", f"bucket {bucket!r} does not exist ({dest})") from None
        kind, reason = classify(exc)
        if kind == FATAL:
            raise FatalError("credentials", f"{reason} for {dest}") from None
        if code == "AccessDenied" or http_status(exc) == 403:
            raise FatalError("permission", f"no permission to {'write to' if write else 'list'} {dest} "
                             "(AccessDenied)") from None
        raise FatalError("endpoint", f"the S3 endpoint refused the probe of {dest}: {reason}") from None
    except FatalError:
        raise
    except Exception as exc:
        kind, reason = classify(exc)
        raise FatalError("credentials" if kind == FATAL else "endpoint", f"{reason} ({dest})") from None


def probe_prefix(prefix: str) -> str:
    return f"{prefix}/{PROBE_MARK}".lstrip("/")


def abort_probe_leftovers(client, *, bucket: str, prefix: str, spare: str | None = None,
                          max_pages: int = 100) -> int:
    """Abort the write probes' multipart uploads that a killed run left behind (a kill between the probe's
    create and its abort), except the key `spare` (the probe under way); the preflight runs it beside its
    own probes. Returns how many were aborted."""
    aborted = 0
    # Pages by hand: a paginator loads botocore's paginator models first (~7 ms of CPU at start-up).
    query = {"Bucket": bucket, "Prefix": probe_prefix(prefix)}
    try:
        for _ in range(max_pages):
            page = client.list_multipart_uploads(**query)
            for u in page.get("Uploads", []):
                if u["Key"] == spare:
                    continue
                try:
                    client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
                    aborted += 1
                except Exception:  # gone already, or not ours to abort: the next run tries again
                    continue
            if not page.get("IsTruncated"):
                break
            query.update(KeyMarker=page.get("NextKeyMarker", ""), UploadIdMarker=page.get("NextUploadIdMarker", ""))
    except Exception:  # listing uploads may be denied: a leftover probe holds no data
        return aborted
    return aborted


class _Background:
    """A call running in its own thread; wait() waits for it and returns what it raised, if anything."""

    def __init__(self, fn: Callable[[], object], *, name: str):
        self._error: Exception | None = None

        def run() -> None:
            try:
                fn()
            except Exception as exc:  # handed to the caller of wait()
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True, name=name)
        self._thread.start()

    def wait(self) -> Exception | None:
        self._thread.join()
        return self._error


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def iter_listing(client, *, bucket: str, prefix: str, read_ahead: int = 4) -> Iterator[tuple[str, int]]:
    """Yield (key, size) for every object under prefix as the server lists them, streamed: one paginated
    listing, read ahead by a thread so the server's time overlaps the caller's, at most `read_ahead`
    pages (of 1,000 keys) held. The order is the server's: S3 lists in UTF-8 binary order, but SeaweedFS,
    for one, lists folder by folder ("a/b" before "a-b"), so a caller that needs S3's order sorts."""
    import queue

    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    pages: queue.Queue = queue.Queue(maxsize=read_ahead)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
                if not put([(o["Key"], o["Size"]) for o in page.get("Contents", [])]):
                    return
            put(None)
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)

    threading.Thread(target=read, daemon=True, name="listing").start()
    try:
        while (page := pages.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            yield from page
    finally:
        stop.set()  # the caller stopped early: the reader must not wait on a full queue forever
