"""Does the server check `x-amz-checksum-xxhash128`, or only accept it?

S3 validates XXHASH128 (base64 of the 16 bytes of xxh3-128): where it does, a small file's own digest can be
the transport checksum, one hash instead of two, and the digest in the metadata is checked by S3 on arrival.
Some S3-compatible servers take the header and ignore it (SeaweedFS 4.x answers 200 to a wrong value), and
a checksum nobody checks proves nothing. So before trusting it: a PUT of a few bytes with a wrong XXHASH128
(must be refused), then with the right one (must be taken), then the probe object is deleted. One fixed key
under the destination prefix, so a probe that cannot delete leaves at most one tiny object behind.

Multipart uploads keep CRC32 parts (transport.py says why).

Once per run: the coordinator's preflight probes beside its other probes (`decide_for_run`) and hands the
verdict to every worker through a `SharedVerdict`; over a 100 ms link a probe per worker process, waited for
in front of its first file, cost three round trips of start-up and three requests per process.
"""

from __future__ import annotations

import threading
import time

from mpupload.core import shared
from mpupload.core.hashing import XXHASH128, TransportChecksum
from mpupload.s3.probekeys import CHECKSUM_PROBE_NAME, checksum_probe_key, delete_probe_object

_BODY = b"mpupload checks whether this server validates XXHASH128 checksums\n"


def server_validates_xxhash128(client, *, bucket: str, prefix: str, params: dict | None = None) -> tuple[bool, str]:
    """(True, "") when a wrong XXHASH128 is refused and the right one accepted; else (False, why not).
    `params`: the run's object parameters for a write of the probe's size (ObjectParams.write), so the probe
    is written as every object is (a bucket policy may refuse a PUT without them)."""
    key = checksum_probe_key(prefix)
    try:
        return _probe(client, bucket=bucket, key=key, params=params or {})
    finally:
        delete_probe_object(client, bucket=bucket, key=key)


def decide_for_run(client, *, bucket: str, prefix: str, verdict: SharedVerdict, params: dict | None = None) -> None:
    """Probe, tell the workers, then delete the probe object (they do not wait for that)."""
    key = checksum_probe_key(prefix)
    try:
        validates, why = _probe(client, bucket=bucket, key=key, params=params or {})
    except Exception:  # unexpected: every worker then probes for itself
        verdict.ask_workers()
        raise
    verdict.set(validates, why)
    delete_probe_object(client, bucket=bucket, key=key)


_POLL = 0.02  # seconds between looks at an unset verdict (it comes within a few round trips)


class SharedVerdict:
    """The run's answer to "does the server check XXHASH128?", across processes: written once (by the
    preflight in the coordinator), read by every worker. Unset until then; `ask_workers` (no preflight ran,
    or it broke) sends each worker to probe for itself.

    Readers poll the state rather than wait on a multiprocessing Event: Event.set() waits for every sleeper
    to wake, and a worker process that ended while one of its threads slept in Event.wait() never does, so
    the coordinator's set() hung forever (a short run whose workers were done before a probe answered)."""

    _UNSET, _NO, _YES, _ASK = -1, 0, 1, 2
    _WHY_BYTES = 240

    def __init__(self, *, ctx=None):
        self._state = shared.value(ctx, "b", self._UNSET)
        self._why = shared.byte_string(ctx, self._WHY_BYTES)

    def set(self, validates: bool, why: str = "") -> None:
        self._why.value = why.encode("utf-8", "replace")[: self._WHY_BYTES - 1]
        self._state.value = self._YES if validates else self._NO  # last: a reader that sees it sees `why`

    def ask_workers(self) -> None:
        self._state.value = self._ASK

    def wait(self, stop: threading.Event, *, timeout: float) -> tuple[bool, str] | None:
        """(validates, why) once known; None when the workers must probe for themselves (asked to, the run
        is stopping, or no verdict came within `timeout`)."""
        deadline = time.monotonic() + timeout
        while (state := self._state.value) == self._UNSET:
            if stop.is_set() or time.monotonic() > deadline:
                return None
            time.sleep(_POLL)
        if state == self._ASK:
            return None
        return state == self._YES, self._why.value.decode("utf-8", "replace")



def probe_params(object_params) -> dict:
    """The object parameters of the probe's PUT (an s3.objectparams.ObjectParams)."""
    return object_params.write(name=CHECKSUM_PROBE_NAME, size=len(_BODY), metadata={})


def _probe(client, *, bucket: str, key: str, params: dict) -> tuple[bool, str]:
    xx = TransportChecksum(XXHASH128)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=_BODY, ChecksumXXHASH128=xx.of(_BODY + b"(not these bytes)"),
                          **params)
        return False, "it accepts XXHASH128 checksums without checking them"
    except Exception:  # noqa: BLE001, S110 - a refusal is what a validating server answers
        pass
    try:
        resp = client.put_object(Bucket=bucket, Key=key, Body=_BODY, ChecksumXXHASH128=xx.of(_BODY), **params)
    except Exception as exc:  # noqa: BLE001
        return False, f"it refused a correct XXHASH128 checksum too ({_code(exc)})"
    echoed = resp.get("ChecksumXXHASH128")
    if echoed is not None and echoed != xx.of(_BODY):
        return False, "it answered with another XXHASH128 than the one sent"
    return True, ""


def _code(exc: BaseException) -> str:
    from mpupload.core.errors import error_code, http_status

    return error_code(exc) or (f"HTTP {http_status(exc)}" if http_status(exc) else type(exc).__name__)
