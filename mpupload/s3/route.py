"""Where the lean PUT goes, as botocore resolved it: not a parallel guess.

Once per worker process, botocore itself builds one PutObject for a probe key of the bucket; a before-send
hook takes the request and answers it locally, so nothing reaches the network. From that request come the
scheme, host, port and path prefix (so virtual-hosted AWS `https://BUCKET.s3.REGION.amazonaws.com/KEY`,
`AWS_ENDPOINT_URL(_S3)`, path style on S3-compatible servers and endpoint rules all come out as botocore
would send them) and, from its Authorization header, the region and service botocore signs for. A HEAD of
the bucket first lets botocore's region redirector learn a bucket that lives in another region.

TLS trust and proxies follow botocore's own order: an explicit --ca-bundle or --no-verify-tls, else the
session's `ca_bundle` (AWS_CA_BUNDLE or the profile's), else botocore's default bundle; proxies from the
client config, else HTTP(S)_PROXY honouring NO_PROXY.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mpupload.s3.probekeys import ROUTE_PROBE_KEY

_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Unroutable(Exception):
    """The lean path cannot reproduce what botocore sends for this bucket (the reason says why)."""


@dataclass(frozen=True)
class Route:
    scheme: str
    host: str  # to connect to (and, with the port when not the default, the Host header)
    port: int
    base_path: str  # '' for virtual-hosted, '/BUCKET' (maybe under a prefix) for path style
    region: str
    service: str
    verify: bool | str  # as botocore: False, or a CA bundle path
    proxy: str | None = None  # the proxy URL botocore would use for this endpoint, without credentials
    proxy_auth: str | None = None  # a Proxy-Authorization value from user:password in the proxy URL

    @property
    def https(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        default = 443 if self.https else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def tls_verify(session, *, verify_tls: bool, ca_bundle: str | None) -> bool | str:
    """What botocore verifies against: the explicit bundle, no verification when turned off, the session's
    `ca_bundle` (AWS_CA_BUNDLE, the profile), else botocore's default bundle."""
    if ca_bundle:
        return ca_bundle
    if not verify_tls:
        return False
    configured = session.get_config_variable("ca_bundle") if session is not None else None
    if configured:
        return configured
    from botocore.httpsession import get_cert_path

    return get_cert_path(True)


def proxy_for(url: str, configured: dict | None) -> str | None:
    """The proxy botocore would use for `url`: the client config's proxies, else the environment's
    (HTTP_PROXY / HTTPS_PROXY), unless NO_PROXY covers the host."""
    parts = urlsplit(url)
    if configured:
        return configured.get(parts.scheme) or configured.get(f"{parts.scheme}://{parts.hostname}")
    if urllib.request.proxy_bypass_environment(parts.netloc) or urllib.request.proxy_bypass_environment(
            parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _split_proxy(proxy: str) -> tuple[str, str | None]:
    """The proxy URL without user:password, and a Basic Proxy-Authorization value made from them."""
    if "://" not in proxy:
        proxy = "http://" + proxy  # as botocore: a bare host:port is an http proxy
    p = urlsplit(proxy)
    auth = None
    if p.username is not None:
        raw = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
        auth = "Basic " + base64.b64encode(raw).decode("ascii")
    host = p.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return f"{p.scheme}://{netloc}{':' + str(p.port) if p.port else ''}", auth


def captured_put(client, bucket: str) -> tuple[str, dict[str, str]]:
    """The URL and headers of the PutObject botocore would send for a probe key of `bucket` (not sent)."""
    from botocore.awsrequest import AWSResponse

    seen: dict = {}

    class _Empty:
        def stream(self, **_kwargs):
            yield b""

    def capture(request, **_kwargs):
        seen["url"] = request.url
        seen["headers"] = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
        return AWSResponse(request.url, 200, {}, _Empty())  # answered here: nothing is sent

    uid = "mpupload-route-capture"
    client.meta.events.register_first("before-send.s3.PutObject", capture, unique_id=uid)
    try:
        client.put_object(Bucket=bucket, Key=ROUTE_PROBE_KEY, Body=b"")
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", unique_id=uid)
    if "url" not in seen:
        raise Unroutable("botocore built no request for the probe")
    return seen["url"], seen["headers"]


def learn_bucket_region(client, bucket: str) -> None:
    """A HEAD of the bucket: for a bucket in another region, botocore's redirector answers the 301 and
    remembers the bucket's region for this client. Errors are the preflight's business, not ours."""
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - only the side effect matters; the run reports real errors elsewhere
        pass


def resolve(client, *, bucket: str, session=None, verify_tls: bool = True, ca_bundle: str | None = None) -> Route:
    """The Route botocore would take for objects of `bucket`; raises Unroutable where the lean PUT cannot
    follow (another signing scheme, a proxy spoken to over TLS)."""
    learn_bucket_region(client, bucket)
    url, headers = captured_put(client, bucket)
    m = _CREDENTIAL.search(headers.get("authorization", ""))
    if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 ") or m is None:
        raise Unroutable("botocore signs this bucket with another scheme than SigV4")
    region, service = m.group(1), m.group(2)
    if service != "s3":
        raise Unroutable(f"botocore signs this bucket for the {service!r} service")
    u = urlsplit(url)
    suffix = "/" + ROUTE_PROBE_KEY
    if u.scheme not in ("http", "https") or not u.hostname or not u.path.endswith(suffix) or u.query:
        raise Unroutable("botocore addresses this bucket in a way the lean PUT does not reproduce")
    proxy_url = proxy_for(url, getattr(client.meta.config, "proxies", None))
    proxy = auth = None
    if proxy_url:
        if (getattr(client.meta.config, "proxies_config", None) or {}):
            raise Unroutable("proxy settings beyond a proxy URL (proxies_config)")
        proxy, auth = _split_proxy(proxy_url)
        if not proxy.startswith("http://"):
            raise Unroutable("a proxy spoken to over TLS")
    return Route(scheme=u.scheme, host=u.hostname, port=u.port or (443 if u.scheme == "https" else 80),
                 base_path=u.path[: -len(suffix)], region=region, service=service,
                 verify=tls_verify(session, verify_tls=verify_tls, ca_bundle=ca_bundle) if u.scheme == "https" else False,
                 proxy=proxy, proxy_auth=auth)
