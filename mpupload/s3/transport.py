"""The one place that sends PutObject and UploadPart: lean first, botocore when the lean PUT declines.

It owns the header building (botocore parameters and lean headers come from one dict), the transport
checksum (resolved once per process: XXHASH128 where the server checks it, see xxprobe.py), the checksum of
multipart uploads (CRC64NVME parts and a FULL_OBJECT CRC64NVME where the server keeps it, see fullprobe.py;
else composite per-part CRCs as before), the shared pace
for lean requests, and the counters the summary shows: requests sent lean, sent through botocore, and lean
requests declined by reason.

Retries (README, Retries): a lean request is tried once; whatever it did not store goes to botocore, which
owns retrying a request (throttling, 5xx, dropped connections, timeouts). The lean path is a cost saving,
never a reason for a file to fail or for the pool to hold: a lean connection failure is not reported to the
pace as an outage (botocore's own attempt will be, if the endpoint really is down). When the lean path keeps
failing where botocore then succeeds (a wrong region, a proxy or a TLS setup it cannot follow), it turns
itself off for this process after a handful of such requests, with one warning.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import Counter
from collections.abc import Callable

from mpupload.core.hashing import AUTO, XXHASH128, TransportChecksum, fallback_crc
from mpupload.core.messages import CHECKSUM, DECLINED, LEAN_OFF, MULTIPART_CHECKSUM, SENT_BOTOCORE, SENT_LEAN
from mpupload.core.objectsum import CRC64NVME, can_combine
from mpupload.pace.pacing import Pace
from mpupload.s3.audit import Stored, from_headers, from_response
from mpupload.s3.clientconfig import sign_payload
from mpupload.s3.lean import SERVER_ERROR, THROTTLED, Declined, LeanPut
from mpupload.s3.objectparams import ObjectParams
from mpupload.s3.xxprobe import SharedVerdict
from mpupload.settings.config import Settings

# Lean declines in a row, each followed by a botocore success, that turn the lean path off: one is noise
# (a reset connection), five with botocore succeeding every time is a setup the lean path cannot follow.
STRIKES_TO_DISABLE = 5
# Each object parameter (s3/objectparams.py) and its header, as botocore's model names it
# (tests/unit/test_objectparams.py holds the two equal). A parameter not here is never dropped: the request
# goes through botocore instead (Unmapped).
_PARAM_HEADERS = {
    "ContentType": "content-type", "CacheControl": "cache-control", "ContentEncoding": "content-encoding",
    "ContentDisposition": "content-disposition", "ContentLanguage": "content-language",
    "StorageClass": "x-amz-storage-class", "ACL": "x-amz-acl", "Tagging": "x-amz-tagging",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
    "BucketKeyEnabled": "x-amz-server-side-encryption-bucket-key-enabled",
    "SSECustomerAlgorithm": "x-amz-server-side-encryption-customer-algorithm",
    "SSECustomerKey": "x-amz-server-side-encryption-customer-key",
    "SSECustomerKeyMD5": "x-amz-server-side-encryption-customer-key-md5",
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner", "RequestPayer": "x-amz-request-payer",
    "IfNoneMatch": "if-none-match",  # --no-overwrite
}
UNMAPPED = "unmapped"


class Unmapped(ValueError):
    """A parameter the lean PUT has no header for: the request must go through botocore, whole."""


def lean_headers(params: dict) -> dict[str, str]:
    """The HTTP headers of botocore parameters (Metadata, Checksum*, and every object parameter), for the
    lean PUT. Raises Unmapped for a parameter it does not know."""
    h: dict[str, str] = {}
    for name, value in params.items():
        if name == "Metadata":
            h.update({f"x-amz-meta-{k}": v for k, v in value.items()})
        elif name.startswith("Checksum") and name != "ChecksumAlgorithm":
            h[f"x-amz-checksum-{name[len('Checksum'):].lower()}"] = value
        elif name == "SSECustomerKey":
            # As botocore's sse_md5 handler: the raw key goes base64-encoded, with the base64 of its MD5.
            key = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            h[_PARAM_HEADERS[name]] = base64.b64encode(key).decode("ascii")
            if "SSECustomerKeyMD5" not in params:
                h[_PARAM_HEADERS["SSECustomerKeyMD5"]] = base64.b64encode(hashlib.md5(key).digest()).decode("ascii")
        elif isinstance(value, bool) and name in _PARAM_HEADERS:
            h[_PARAM_HEADERS[name]] = "true" if value else "false"
        elif name in _PARAM_HEADERS and isinstance(value, str):
            h[_PARAM_HEADERS[name]] = value
        else:
            raise Unmapped(f"no lean header for parameter {name}")
    return h


class Transport:
    """Thread-safe: one instance serves every thread of a worker process."""

    def __init__(self, *, client, settings: Settings, stop: threading.Event, pace: Pace | None = None,
                 lean: LeanPut | None = None, lean_unavailable: str = "",
                 notify: Callable[[str], None] | None = None, verdict: SharedVerdict | None = None,
                 full_verdict: SharedVerdict | None = None):
        self.client, self.s, self.stop, self.pace = client, settings, stop, pace
        # The object settings every request carries (encryption, class, ACL, tags, ...): one set, built here.
        self.object_params = ObjectParams(settings)
        self._verdict = verdict  # the run's checksum probe (xxprobe.py); None: probe here
        self._full_verdict = full_verdict  # the run's FULL_OBJECT probe (fullprobe.py); None: probe here
        self.lean = lean
        self._notify = notify or (lambda _text: None)
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()  # (kind, detail): core.messages
        self._strikes = 0
        self._thread = threading.local()  # .strike: this thread's last lean request declined (not throttled)
        self._checksum: TransportChecksum | None = None
        self._part_checksum: TransportChecksum | None = None
        self._full_object = False
        self._parts_lock = threading.Lock()  # not self._lock: the counters must not wait for a probe
        if settings.checksum.upper() != AUTO:
            self._checksum = TransportChecksum(settings.checksum)
        if lean_unavailable:
            self._counts[LEAN_OFF, lean_unavailable] += 1

    # -- what the worker asks ------------------------------------------------------------------------------
    @property
    def checksum(self) -> TransportChecksum:
        """The transport checksum of this run; with `auto`, decided by the run's probe (or this process's own,
        when the run's did not come)."""
        if self._checksum is None:
            with self._lock:
                if self._checksum is None:
                    self._checksum = self._probe_checksum()
        return self._checksum

    @property
    def part_checksum(self) -> TransportChecksum:
        """The checksum of multipart parts: CRC64NVME where the upload carries a FULL_OBJECT checksum
        (`full_object`), else the composite of before. Never XXHASH128: S3 would check each part's own xxh3 (a
        composite, not the file's digest, which stays in the metadata), and S3-compatible servers refuse
        XXHASH128 multipart uploads (SeaweedFS: InvalidRequest) where CRC32C (or CRC32) parts are checked."""
        if self._part_checksum is None:
            with self._parts_lock:
                if self._part_checksum is None:
                    self._part_checksum = self._decide_parts()
        return self._part_checksum

    @property
    def full_object(self) -> bool:
        """Multipart uploads end with a FULL_OBJECT CRC64NVME of the whole file (combined from the parts')."""
        return self.part_checksum.algorithm == CRC64NVME and self._full_object

    def take_counts(self) -> tuple[tuple[str, str, int], ...]:
        """Counts since the last call, (kind, detail, n) each (they travel with the worker's next report)."""
        with self._lock:
            out, self._counts = tuple((kind, detail, n) for (kind, detail), n in self._counts.items()), Counter()
        return out

    def put_object(self, *, key: str, body: bytes, params: dict) -> Stored:
        """Store a small file; `params` are PutObject parameters (object_params.write() and Checksum*). Returns
        what S3 said it stored (ETag, checksum, version id; audit.py)."""
        reply: dict[str, str] = {}
        etag = self._lean(key=key, body=body, params=params, query=None, reply=reply)
        if etag is not None:
            return from_headers(etag, reply, storage_class=params.get("StorageClass"))
        self._count(SENT_BOTOCORE)
        resp = self.client.put_object(Bucket=self.s.bucket, Key=key, Body=body, **params)
        self._botocore_succeeded()
        return from_response(resp, storage_class=params.get("StorageClass"))

    def upload_part(self, *, key: str, upload_id: str, number: int, body: bytes | bytearray, params: dict) -> str:
        """Store one part; `params` may carry its Checksum*. The part parameters (SSE-C key, bucket owner,
        requester pays) are added here."""
        params = {**self.object_params.part(), **params}
        etag = self._lean(key=key, body=body, params=params,
                          query={"partNumber": str(number), "uploadId": upload_id})
        if etag is not None:
            return etag
        self._count(SENT_BOTOCORE)
        resp = self.client.upload_part(Bucket=self.s.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                       Body=bytes(body), **params)
        self._botocore_succeeded()
        return resp["ETag"]

    # -- inside -----------------------------------------------------------------------------------------
    def _count(self, kind: str, detail: str = "") -> None:
        with self._lock:
            self._counts[kind, detail] += 1

    def _lean(self, *, key: str, body, params: dict, query: dict[str, str] | None,
              reply: dict[str, str] | None = None) -> str | None:
        lean = self.lean
        self._thread.strike = False
        if lean is None:
            return None
        try:
            headers = lean_headers(params)
        except Unmapped:  # before the pace: botocore's attempt waits its own turn
            self._count(DECLINED, UNMAPPED)  # botocore sends it with every parameter; not the lean path's fault
            return None
        if self.pace is not None:
            self.pace.wait_turn(self.stop, limit=self.s.outage_timeout + self.s.backoff_cap + 10)
            self.pace.within_limits(self.stop, nbytes=len(body))
        try:
            etag = lean.put(key=key, body=body, headers=headers, query=query, reply=reply)
        except Declined as declined:
            self._count(DECLINED, declined.reason)
            if declined.reason == THROTTLED and self.pace is not None:
                self.pace.throttled()
            # Throttling and 5xx are the server's state, not the lean path's fault: botocore would meet them
            # too. Anything else is a strike once botocore stores the same request (_botocore_succeeded).
            self._thread.strike = declined.reason not in (THROTTLED, SERVER_ERROR)
            return None
        self._count(SENT_LEAN)
        self._strikes = 0
        if self.pace is not None:
            self.pace.succeeded()
        return etag

    def _botocore_succeeded(self) -> None:
        if not getattr(self._thread, "strike", False):
            return
        self._thread.strike = False
        with self._lock:
            self._strikes += 1
            off = self._strikes >= STRIKES_TO_DISABLE and self.lean is not None
            if off:
                lean, self.lean = self.lean, None
                self._counts[LEAN_OFF, "declined"] += 1
        if off:
            self._notify(f"the lean PUT was declined {STRIKES_TO_DISABLE} times in a row where botocore then "
                         f"succeeded (to {lean.route.host_header}); botocore sends everything from now on")

    def _probe_checksum(self) -> TransportChecksum:
        from mpupload.s3.xxprobe import probe_params, server_validates_xxhash128

        # Bounded: the preflight's probe runs with short timeouts and three attempts.
        known = self._verdict.wait(self.stop, timeout=120.0) if self._verdict is not None else None
        if known is not None:
            validates, why = known
        else:
            validates, why = server_validates_xxhash128(self.client, bucket=self.s.bucket, prefix=self.s.prefix,
                                                       params=probe_params(self.object_params))
        chosen = TransportChecksum(XXHASH128 if validates else fallback_crc())
        self._counts[CHECKSUM, chosen.algorithm] += 1  # under self._lock (checksum property)
        if not validates:
            self._notify(f"transport checksum {chosen.algorithm}: the server does not validate XXHASH128 ({why}); "
                         "the xxh3-128 digest is kept in each object's metadata")
        return chosen

    def _decide_parts(self) -> TransportChecksum:
        """Once per process. --checksum CRC64NVME: FULL_OBJECT without a probe; auto and XXHASH128 (which parts
        cannot use): FULL_OBJECT where the run's probe says the server keeps it, else the composite CRC of
        before, said once; any other choice: that algorithm's composite, as asked."""
        name = self.s.checksum.upper()
        full, why = False, ""
        if name == CRC64NVME:
            full = can_combine()
            why = "" if full else "the installed awscrt has no combine_crc64nvme (pip install -U awscrt)"
        elif name in (AUTO, XXHASH128):
            from mpupload.s3.fullprobe import server_keeps_full_object

            known = self._full_verdict.wait(self.stop, timeout=120.0) if self._full_verdict is not None else None
            if known is None:
                known = server_keeps_full_object(self.client, bucket=self.s.bucket, prefix=self.s.prefix,
                                                 objects=self.object_params)
            full, why = known
        if full:
            chosen = TransportChecksum(CRC64NVME)
            if why:  # kept, not checked (moto): the value is still the file's, and verify compares it
                self._notify(f"multipart uploads carry a FULL_OBJECT CRC64NVME checksum, but {why}")
        else:
            chosen = TransportChecksum(fallback_crc() if name in (AUTO, XXHASH128, CRC64NVME) else self.s.checksum)
            if name in (AUTO, XXHASH128, CRC64NVME):
                self._notify(f"multipart uploads get composite per-part {chosen.algorithm} checksums, not a "
                             f"FULL_OBJECT CRC64NVME: {why}")
        self._full_object = full
        kind = "FULL_OBJECT" if full else ("COMPOSITE" if chosen.enabled else "none")
        self._count(MULTIPART_CHECKSUM, f"{chosen.algorithm} {kind}")
        return chosen


def open_transport(*, client, settings: Settings, stop: threading.Event, pace: Pace | None = None,
                   notify: Callable[[str], None] | None = None, verdict: SharedVerdict | None = None,
                   full_verdict: SharedVerdict | None = None) -> Transport:
    """The worker process's transport: the lean PUT along the route botocore resolved for the bucket (when
    --fast-put and it can follow), else botocore alone. The reason it cannot follow is counted, not raised."""
    from mpupload.s3.client import botocore_session
    from mpupload.s3.route import Unroutable, resolve

    lean, unavailable = None, ""
    if settings.fast_put:
        session = botocore_session(settings)
        try:
            route = resolve(client, bucket=settings.bucket, session=session, verify_tls=settings.verify_tls,
                            ca_bundle=settings.ca_bundle)
            credentials = session.get_credentials()
            if credentials is None:
                raise Unroutable("no credentials")
            lean = LeanPut(route=route, credentials=credentials, connect_timeout=settings.connect_timeout,
                           read_timeout=settings.read_timeout, sign_payload=sign_payload(settings))
        except Unroutable:
            unavailable = "unroutable"
        except Exception:  # noqa: BLE001 - botocore will meet (and report) whatever broke here
            unavailable = "setup-failed"
    return Transport(client=client, settings=settings, stop=stop, pace=pace, lean=lean,
                     lean_unavailable=unavailable, notify=notify, verdict=verdict, full_verdict=full_verdict)
