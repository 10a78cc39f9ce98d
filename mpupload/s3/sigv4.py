"""AWS Signature Version 4 for the lean PUT: the same canonical request, string to sign and signature
botocore's S3SigV4Auth makes for a PutObject or UploadPart (tests/unit/test_sigv4.py holds them equal at a
fixed clock), without the request model, event plumbing and header parsing around it.

Only what a PUT of bytes needs: the path is sent as given (S3 does not normalise or double-encode it), the
query is sorted and fully percent-encoded, every header we send is signed except the ones botocore leaves out
(User-Agent, Expect, hop-by-hop and proxy headers), and values are trimmed with inner runs of spaces collapsed.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import threading
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Never signed (as botocore): hop-by-hop, proxy and tracing headers that proxies and clients may change.
_UNSIGNED_HEADERS = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "traceparent", "tracestate", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"})


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def quote_path(key: str) -> str:
    """An object key as it appears in the URL path (and in the canonical request): '/' kept."""
    return quote(key, safe="/~")


def canonical_query(query: dict[str, str] | None) -> str:
    if not query:
        return ""
    # Sorted by the encoded name, then value (SigV4's rule).
    pairs = sorted((quote(k, safe="-_.~"), quote(str(v), safe="-_.~")) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def amz_date(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


class Signer:
    """Signs S3 requests for one region. Thread-safe; caches the day's signing key per secret."""

    def __init__(self, *, region: str, service: str = "s3"):
        self.region, self.service = region, service
        self._lock = threading.Lock()
        self._key: tuple[str, str, bytes] | None = None  # (secret, day, key): only the current day's is needed

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == secret and cached[1] == day:
            return cached[2]
        k = _hmac(("AWS4" + secret).encode("utf-8"), day)
        key = _hmac(_hmac(_hmac(k, self.region), self.service), "aws4_request")
        with self._lock:
            self._key = (secret, day, key)
        return key

    def sign(self, *, method: str, path: str, query: str, headers: dict[str, str], payload_hash: str,
             access_key: str, secret_key: str, token: str | None, date: str) -> dict[str, str]:
        """Add x-amz-date, x-amz-content-sha256, the session token and Authorization to `headers` (lower-case
        names, `host` included) and return it. `path` is already percent-encoded, `query` canonical."""
        headers["x-amz-date"] = date
        headers["x-amz-content-sha256"] = payload_hash
        if token:
            headers["x-amz-security-token"] = token
        names = sorted(n for n in headers if n not in _UNSIGNED_HEADERS)
        signed = ";".join(names)
        canonical = "\n".join((method, path, query, *(f"{n}:{' '.join(str(headers[n]).split())}" for n in names),
                               "", signed, payload_hash))
        day = date[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{date}\n{scope}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
        signature = hmac.new(self._signing_key(secret_key, day), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        headers["authorization"] = f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        return headers
