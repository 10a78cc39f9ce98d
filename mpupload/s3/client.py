"""The destination: building clients (inside each process: clients cannot be pickled or forked safely),
parsing s3:// URLs, describing and listing it. (The preflight probe is preflight.py.)"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

from mpupload.s3.clientconfig import botocore_config
from mpupload.settings.config import Settings, SettingsError


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix/' -> ('bucket', 'some/prefix')."""
    if not url.startswith("s3://"):
        raise SettingsError(f"destination must look like s3://BUCKET[/PREFIX], not {url!r}")
    rest = url[5:]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SettingsError(f"no bucket in {url!r}")
    return bucket, prefix.strip("/")


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
            client = session.client(
                "s3", endpoint_url=settings.endpoint_url, config=config or botocore_config(settings), verify=verify
            )
    _expect_continue_only_for_large_bodies(client)
    from mpupload.s3.objectparams import install_request_params

    install_request_params(client, settings)  # --expected-bucket-owner, --request-payer on every request
    return client


EXPECT_CONTINUE_FROM = 1024 * 1024


def _expect_continue_only_for_large_bodies(client) -> None:
    """botocore sends `Expect: 100-continue` with every PUT or POST body, even 66 bytes of a probe or the
    XML of a CompleteMultipartUpload, and then waits for the server's interim answer: one more round trip
    per request (0.2 s instead of 0.1 s over a 100 ms link). It pays only where a refusal saves sending a
    large body; below 1 MiB the body goes at once."""
    from botocore import handlers, utils

    def expect_for_large(model, params, **kwargs):
        body = params.get("body")
        if model.http.get("method", "") in ("PUT", "POST") and hasattr(body, "read"):
            size = utils.determine_content_length(body)
            if size is None or size >= EXPECT_CONTINUE_FROM:
                params["headers"]["Expect"] = "100-continue"

    client.meta.events.unregister("before-call.s3", handlers.add_expect_header)
    client.meta.events.register("before-call.s3", expect_for_large)


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
