"""The names mpupload's own probes use at the destination, in one place, so that whoever lists the
destination (verify's extra objects, the preflight's "is it empty?") recognises them."""

from __future__ import annotations

import time

# The route probe: botocore builds a PutObject for this key and the lean path reads its URL; never sent.
ROUTE_PROBE_KEY = "mpupload-route-probe"
# The checksum probe: a few bytes PUT under PREFIX and deleted again (does the server check XXHASH128?).
CHECKSUM_PROBE_NAME = ".mpupload-checksum-probe"
# The FULL_OBJECT probe: a one-part multipart upload under PREFIX, completed and deleted again.
FULL_CHECKSUM_PROBE_NAME = ".mpupload-full-checksum-probe"
# The preflight's write probe: a multipart upload started under PREFIX and aborted, a random suffix each.
WRITE_PROBE_MARK = ".mpupload-write-probe-"


def checksum_probe_key(prefix: str) -> str:
    return f"{prefix}/{CHECKSUM_PROBE_NAME}".lstrip("/")


def full_checksum_probe_key(prefix: str) -> str:
    return f"{prefix}/{FULL_CHECKSUM_PROBE_NAME}".lstrip("/")


def write_probe_prefix(prefix: str) -> str:
    return f"{prefix}/{WRITE_PROBE_MARK}".lstrip("/")


def is_probe(key: str) -> bool:
    """An object or upload one of mpupload's probes made, not the user's data."""
    name = key.rsplit("/", 1)[-1]
    return name in (CHECKSUM_PROBE_NAME, FULL_CHECKSUM_PROBE_NAME) or name.startswith(WRITE_PROBE_MARK)


# An emptiness check asks for this many keys: both checksum probes' objects may exist at that moment, and one
# more key is the user's.
EMPTINESS_KEYS = 3


def only_probes(keys: list[str], prefix: str) -> bool:
    """The keys an emptiness check of `prefix` found are nothing but the probes' own objects (which exist for a
    moment while a run starts): the destination is empty all the same."""
    return all(k in (checksum_probe_key(prefix), full_checksum_probe_key(prefix)) for k in keys)


def delete_probe_object(client, *, bucket: str, key: str, within: float = 30.0) -> bool:
    """Delete a probe's object, trying again (bounded: `within` seconds, backing off to 4 s) while the endpoint
    does not answer: an outage that begins just after a probe must not leave its object among the user's.
    False when it could not (a run's end waits for this at most 15 s; the next run's probe replaces it)."""
    deadline, pause = time.monotonic() + within, 0.25
    while True:
        try:
            client.delete_object(Bucket=bucket, Key=key)
            return True
        except Exception:  # noqa: BLE001 - whatever the reason, the object is at worst a few bytes
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(4.0, pause * 2)
