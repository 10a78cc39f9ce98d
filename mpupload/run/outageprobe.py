"""The outage prober, a thread of the coordinator: while the workers hold for an outage (the shared pace,
pacing.py), it probes the endpoint once a second with a HeadBucket of short timeouts until it answers, and
past --outage-timeout it stops the run with word on how to resume."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from mpupload.pace.pacing import Pace
from mpupload.settings.config import Settings

_TICK = 0.2  # how often to look whether the workers hold
_PROBE_EVERY = 1.0  # seconds between probes of an endpoint that stopped answering


def probe_outages(settings: Settings, pace: Pace, stop: threading.Event, *, on_halt: Callable[[str], None]) -> None:
    """Until `stop`: probe while the pace holds for an outage; on --outage-timeout call `on_halt(why)` and
    set `stop`."""
    from botocore.exceptions import ClientError

    from mpupload.s3.client import describe_destination, make_client

    client = None
    while not stop.is_set():
        since = pace.outage_since
        if not since:
            stop.wait(_TICK)
            continue
        down_for = time.monotonic() - since
        if down_for > settings.outage_timeout:
            on_halt(f"the S3 endpoint {describe_destination(settings)} has not answered for {down_for:.0f} s "
                    f"(--outage-timeout {settings.outage_timeout:g}); once it is back, run the same command "
                    "again to resume")
            stop.set()
            return
        try:
            if client is None:
                client = make_client(replace(settings, connect_timeout=2.0, read_timeout=5.0, retries=1))
            client.head_bucket(Bucket=settings.bucket)
            pace.endpoint_answered()
        except ClientError:
            pace.endpoint_answered()  # any HTTP answer means it is back; errors are the workers' to sort
        except Exception:
            stop.wait(_PROBE_EVERY)
