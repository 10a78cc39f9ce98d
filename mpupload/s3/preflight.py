"""The preflight probe: bad credentials, a missing bucket, a dead endpoint or a read-only key become one
clear fatal error before any file is touched; on the way it learns the link's latency, whether the
destination is empty, and (once per run) whether the server checks XXHASH128 (xxprobe.py) and keeps
FULL_OBJECT CRC64NVME checksums of multipart uploads (fullprobe.py).

Over a real link every sequential round trip here delays the first file by 20-200 ms, so the probes run
side by side, and only what decides the verdict is waited for: the write probe's abort, the sweep of
probes that killed runs left behind and the checksum probes' deletes are clean-up that finishes beside the
first uploads (`ProbeResult.finish_cleanup`, called at the end of the run).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mpupload.core.errors import FATAL, FatalError, classify, error_code, http_status
from mpupload.s3 import fullprobe
from mpupload.s3.client import describe_destination, make_client
from mpupload.s3.objectparams import ObjectParams
from mpupload.s3.probekeys import EMPTINESS_KEYS, only_probes, write_probe_prefix
from mpupload.s3.xxprobe import decide_for_run, probe_params
from mpupload.settings.config import Settings, SettingsError


@dataclass(frozen=True)
class ProbeResult:
    """What the preflight learned on the way."""

    latency: float | None  # seconds a tiny request takes on a kept-alive connection: round trip plus the
    # server's time (concurrency.py sizes from it)
    empty: bool  # its listing found no object under the prefix (False: found one, or could not list)
    cleanup: tuple[_Background, ...] = field(default=(), repr=False, compare=False)

    def finish_cleanup(self, timeout: float = 15.0) -> None:
        """Wait (bounded) for the probes' clean-up, so no probe object or upload outlives the run."""
        deadline = time.monotonic() + timeout
        for job in self.cleanup:
            job.wait(timeout=max(0.0, deadline - time.monotonic()))


def preflight(settings: Settings, *, write: bool = True, checksum_verdict=None, full_verdict=None) -> ProbeResult:
    """Raise FatalError unless we can list (or at least write) the destination; with write=False (verify)
    the listing alone must work. Returns the link's latency and whether the prefix is empty.
    `checksum_verdict` (an xxprobe.SharedVerdict): find out beside the other probes whether the server
    checks XXHASH128, and tell the workers through it; `full_verdict` likewise for FULL_OBJECT CRC64NVME.

    Uses short timeouts and few attempts so a dead endpoint is reported in seconds, not after the
    run's patient per-request timeouts. The write probe starts and aborts a multipart upload: it
    proves PutObject permission without leaving an object behind.
    """
    client = _probe_client(settings)
    try:
        return _probes(client, settings, write=write, checksum_verdict=checksum_verdict, full_verdict=full_verdict)
    except FatalError:
        raise
    except Exception as exc:
        raise _fatal_of(exc, settings, write=write) from None


def _probe_client(settings: Settings):
    from botocore import exceptions as be

    probe_settings = replace(settings, connect_timeout=min(settings.connect_timeout, 5.0),
                             read_timeout=min(settings.read_timeout, 20.0), retries=3)
    try:
        return make_client(probe_settings)
    except be.ProfileNotFound as exc:
        raise FatalError("credentials", f"AWS profile not found: {exc.kwargs.get('profile')}") from None
    except Exception as exc:
        raise FatalError("config", f"cannot set up the S3 client: {exc}") from None


def _probes(client, settings: Settings, *, write: bool, checksum_verdict, full_verdict) -> ProbeResult:
    """The listing, the write probe and the checksum probe, side by side; the first error raised as is."""
    from botocore import exceptions as be

    bucket, prefix = settings.bucket, settings.prefix
    probe_key = write_probe_prefix(prefix) + secrets.token_hex(6)
    # The probes write as the upload will (encryption, ACL, class, tags, ...): a bucket policy that refuses
    # writes without them refuses a bare probe, and one that refuses them must fail the probe too.
    try:
        objects = ObjectParams(settings)
    except SettingsError as exc:  # the SSE-C key file went away since the options were checked
        raise FatalError("config", str(exc)) from None
    timings: list[float] = []
    cleanup: list[_Background] = []  # list.append is atomic: the probes run in threads

    def timed(call, **kwargs):
        t0 = time.perf_counter()
        out = call(**kwargs)
        timings.append(time.perf_counter() - t0)
        return out

    def write_probe() -> None:
        upload = timed(client.create_multipart_upload, Bucket=bucket, Key=probe_key,
                       **objects.write(name=probe_key, size=settings.multipart_threshold, metadata={}))
        # Writing is allowed: that is the verdict. The abort is clean-up, and if it fails (or the run is
        # killed first) the next run's sweep of leftover probes aborts this upload.
        cleanup.append(_Background(lambda: _abort_quietly(client, bucket, probe_key, upload["UploadId"]),
                                   name="preflight-abort"))

    # The probes run beside the listing (clients are thread-safe). The listing's verdict, when it fails,
    # is the one reported.
    writing = None
    if write:
        writing = _Background(write_probe, name="preflight-write")
        # Probes that killed runs left behind are cleared beside it (best effort: errors are ignored).
        cleanup.append(_Background(lambda: abort_probe_leftovers(client, bucket=bucket, prefix=prefix,
                                                                 spare=probe_key), name="preflight-leftovers"))
        if checksum_verdict is not None:
            # Sets the verdict as soon as it is known (the workers wait on it); then deletes its object.
            cleanup.append(_Background(lambda: decide_for_run(client, bucket=bucket, prefix=prefix,
                                                              verdict=checksum_verdict,
                                                              params=probe_params(objects)),
                                       name="preflight-checksum"))
        if full_verdict is not None:
            cleanup.append(_Background(lambda: fullprobe.decide_for_run(client, bucket=bucket, prefix=prefix,
                                                                        verdict=full_verdict, objects=objects),
                                       name="preflight-full"))
    listing_error: Exception | None = None
    empty = False
    try:
        # The checksum probes' objects, written beside this listing, do not count.
        listed = timed(client.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=EMPTINESS_KEYS)
        empty = only_probes([o["Key"] for o in listed.get("Contents", [])], prefix)
    except be.ClientError as exc:
        # A write-only key may not list; the write probe decides. Bad credentials are also a
        # 403 (SignatureDoesNotMatch, InvalidAccessKeyId): those must not pass for "cannot list".
        denied = error_code(exc) == "AccessDenied" or http_status(exc) == 403
        if not write or not denied or classify(exc)[0] == FATAL:
            listing_error = exc
    except Exception as exc:
        listing_error = exc
    # Whatever the listing says, the write probe's create ends first, so its abort is always started.
    write_error = writing.wait() if writing is not None else None
    if listing_error is not None or write_error is not None:
        raise listing_error or write_error
    # Every probe request is the first on its own connection (they run side by side): a TCP handshake
    # and the request, about two round trips. Half the fastest is the latency of a kept-alive request.
    latency = min(timings) / 2 if timings else None
    return ProbeResult(latency=latency, empty=empty, cleanup=tuple(cleanup))


def _fatal_of(exc: Exception, settings: Settings, *, write: bool) -> FatalError:
    """The one clear message a failed probe stands for."""
    from botocore import exceptions as be

    dest = describe_destination(settings)
    if isinstance(exc, be.SSLError):
        return FatalError("tls", f"TLS verification failed for {settings.endpoint_url or 'S3'}: {_first_line(exc)} "
                          "(use --ca-bundle, or --no-verify-tls for a test server)")
    if isinstance(exc, (be.EndpointConnectionError, be.ConnectTimeoutError, be.ReadTimeoutError,
                        be.ConnectionClosedError)):
        return FatalError("endpoint", f"cannot reach the S3 endpoint {settings.endpoint_url or ''}: "
                          f"{_first_line(exc)}".replace("  ", " "))
    kind, reason = classify(exc)
    if isinstance(exc, be.ClientError):
        code = error_code(exc)
        if code == "NoSuchBucket":
            return FatalError("bucket", f"bucket {settings.bucket!r} does not exist ({dest})")
        if kind == FATAL:
            return FatalError("credentials", f"{reason} for {dest}")
        if code == "AccessDenied" or http_status(exc) == 403:
            return FatalError("permission", f"no permission to {'write to' if write else 'list'} {dest} "
                              "(AccessDenied)")
        return FatalError("endpoint", f"the S3 endpoint refused the probe of {dest}: {reason}")
    return FatalError("credentials" if kind == FATAL else "endpoint", f"{reason} ({dest})")


def _abort_quietly(client, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001, S110 - gone already (another run's sweep), or the next sweep's job
        pass


def abort_probe_leftovers(client, *, bucket: str, prefix: str, spare: str | None = None,
                          max_pages: int = 100) -> int:
    """Abort the write probes' multipart uploads that a killed run left behind (a kill between the probe's
    create and its abort), except the key `spare` (the probe under way); the preflight runs it beside its
    own probes. Returns how many were aborted."""
    aborted = 0
    # Pages by hand: a paginator loads botocore's paginator models first (~7 ms of CPU at start-up).
    query = {"Bucket": bucket, "Prefix": write_probe_prefix(prefix)}
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

    def wait(self, timeout: float | None = None) -> Exception | None:
        self._thread.join(timeout)
        return self._error


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
