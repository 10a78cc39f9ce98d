"""The lean PUT: one SigV4-signed request on a kept-alive connection per thread, to the Route botocore
resolved (route.py), through the proxy botocore would use, trusting what botocore trusts.

Why: botocore spends ~1.5 ms of CPU per request on machinery a PUT of bytes we already hold does not need
(request model serialisation, event plumbing, header parsing through the email package). On a 2-core
machine where the S3 server needs ~4.5 ms per small object, that CPU is the throughput.

Only the happy path lives here: anything but a 200 raises Declined with a short reason, and the transport
sends that request through botocore, whose retries and error types the rest of mpupload knows.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import ssl
import threading
from urllib.parse import urlsplit

from mpupload.s3.audit import AUDIT_HEADERS
from mpupload.s3.route import Route
from mpupload.s3.sigv4 import UNSIGNED_PAYLOAD, Signer, amz_date, canonical_query, quote_path

# Why a lean request did not store its body (the counters and the summary name these).
THROTTLED, SERVER_ERROR, REFUSED, REGION, CONNECTION, TLS, PROXY = (
    "throttled", "server-error", "refused", "region", "connection", "tls", "proxy")
_REGION_CODES = ("AuthorizationHeaderMalformed", "PermanentRedirect", "IncorrectEndpoint", "TemporaryRedirect")
_CODE = re.compile(rb"<Code>([^<]{1,64})</Code>")


class Declined(Exception):
    """The lean request did not store the body; botocore must send it. `status` is the HTTP status (0 when
    no answer came), `reason` one of the names above."""

    def __init__(self, reason: str, message: str, *, status: int = 0):
        super().__init__(message)
        self.reason, self.status = reason, status


def _reason_of(status: int, body: bytes) -> str:
    if status in (429, 503):
        return THROTTLED
    if status >= 500:
        return SERVER_ERROR
    if status in (301, 307):
        return REGION
    m = _CODE.search(body[:4096])
    if m is not None and m.group(1).decode("ascii", "replace") in _REGION_CODES:
        return REGION
    return REFUSED


class LeanPut:
    """PUT bodies along a Route with SigV4. Thread-safe: one kept-alive connection per thread."""

    def __init__(self, *, route: Route, credentials, connect_timeout: float, read_timeout: float,
                 user_agent: str = "mpupload", sign_payload: bool | None = None):
        self.route = route
        # None: as botocore by default (hash the body over http, not over TLS); False: as botocore with
        # s3.payload_signing_enabled=False (config.sign_payload says when mpupload asks for that).
        self._sign_payload = (not route.https) if sign_payload is None else sign_payload
        self._creds = credentials  # botocore Credentials: get_frozen_credentials() refreshes temporary ones
        self._signer = Signer(region=route.region, service=route.service)
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._ua = user_agent
        self._local = threading.local()
        self._ssl: ssl.SSLContext | None = None
        if route.https:
            verify = route.verify
            self._ssl = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._proxy_host = self._proxy_port = None
        if route.proxy:
            p = urlsplit(route.proxy)
            self._proxy_host, self._proxy_port = p.hostname, p.port or 80

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        r = self.route
        if r.proxy and r.https:  # a CONNECT tunnel through the proxy, TLS inside it
            conn = http.client.HTTPSConnection(self._proxy_host, self._proxy_port, timeout=self._connect_timeout,
                                               context=self._ssl)
            conn.set_tunnel(r.host, r.port, headers={"Proxy-Authorization": r.proxy_auth} if r.proxy_auth else None)
        elif r.proxy:  # plain http: absolute-form requests to the proxy
            conn = http.client.HTTPConnection(self._proxy_host, self._proxy_port, timeout=self._connect_timeout)
        elif r.https:
            conn = http.client.HTTPSConnection(r.host, r.port, timeout=self._connect_timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(r.host, r.port, timeout=self._connect_timeout)
        conn.connect()
        conn.sock.settimeout(self._read_timeout)
        self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        self._drop()

    def signed_headers(self, *, key: str, body: bytes | bytearray | memoryview, headers: dict[str, str],
                       query: dict[str, str] | None = None, date: str | None = None,
                       method: str = "PUT") -> tuple[str, dict[str, str]]:
        """The request target (path and query) and every header of the signed request (a PUT by default)."""
        r = self.route
        path = f"{r.base_path}/{quote_path(key)}"
        qs = canonical_query(query)
        payload = hashlib.sha256(body).hexdigest() if self._sign_payload else UNSIGNED_PAYLOAD
        creds = self._creds.get_frozen_credentials()
        h = {"host": r.host_header, **headers}
        self._signer.sign(method=method, path=path, query=qs, headers=h, payload_hash=payload,
                          access_key=creds.access_key, secret_key=creds.secret_key, token=creds.token,
                          date=date or amz_date())
        return (f"{path}?{qs}" if qs else path), h

    def _exchange(self, method: str, *, key: str, body: bytes | bytearray, headers: dict[str, str],
                  query: dict[str, str] | None) -> tuple[int, bytes, dict[str, str]]:
        """One signed request on this thread's kept-alive connection: (status, body, the answer's headers with
        lower-case names). Raises Declined when no answer came (the caller asks botocore instead)."""
        target, h = self.signed_headers(key=key, body=body, headers=headers, query=query, method=method)
        r = self.route
        if r.proxy and not r.https:
            target = f"http://{r.host_header}{target}"
            if r.proxy_auth:
                h["proxy-authorization"] = r.proxy_auth
        if method == "PUT":
            h["content-length"] = str(len(body))
        h["user-agent"] = self._ua
        try:
            conn = self._conn()
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in h.items():
                conn.putheader(name, value)
            conn.endheaders(body if method == "PUT" else None)
            resp = conn.getresponse()
            data = resp.read()  # drain (nothing for a HEAD), so the connection can carry the next request
            answer = {name.lower(): value for name, value in resp.getheaders()}
            if resp.will_close:
                self._drop()
        except ssl.SSLError as exc:
            self._drop()
            raise Declined(TLS, f"{type(exc).__name__}: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            # A tunnel the proxy refused is the proxy's doing, not the endpoint's.
            reason = PROXY if r.proxy and "Tunnel" in str(exc) else CONNECTION
            raise Declined(reason, f"{type(exc).__name__}: {exc}") from None
        return resp.status, data, answer

    def head(self, *, key: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        """HEAD key (verify's check of an object): (status, the answer's headers, names lower-case). Raises
        Declined when no answer came."""
        status, _, answer = self._exchange("HEAD", key=key, body=b"", headers=dict(headers or {}), query=None)
        return status, answer

    def put(self, *, key: str, body: bytes | bytearray, headers: dict[str, str],
            query: dict[str, str] | None = None, reply: dict[str, str] | None = None) -> str:
        """Store body at key (with query partNumber/uploadId: as one part) with extra headers (lower-case
        names); return the ETag, and fill `reply` (when given) with the audit headers of the answer
        (audit.py). Raises Declined when it may not have been stored."""
        status, data, answer = self._exchange("PUT", key=key, body=body, headers=headers, query=query)
        if reply is not None:
            reply.update((name, answer[name.lower()]) for name in AUDIT_HEADERS if answer.get(name.lower()))
        if status != 200:
            raise Declined(_reason_of(status, data), f"HTTP {status}", status=status)
        return answer.get("etag", "").strip('"')
