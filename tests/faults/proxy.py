"""A loopback HTTP/1.1 proxy the fault tests own: it sits between mpupload and the real SeaweedFS and,
on a seeded share of PUT/POST requests, answers 503 SlowDown or 500 InternalError, resets the
connection half-way through the body, or stalls past the client's read timeout. An outage switch
resets every connection, new or kept alive, until it is turned off.

Requests that are not picked for a fault are forwarded byte for byte, Host header included: the client
signs (SigV4) for the proxy's host:port and the server checks the signature against the Host it
receives, so rewriting it would break every request. `Expect: 100-continue` is passed to the server and
its interim answer relayed, so the client's wait-for-100 logic runs against the real server.

Threads and blocking sockets: one thread per client connection, each with its own upstream connection,
kept alive for as long as both sides keep it.
"""

from __future__ import annotations

import base64
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import xxhash

LOOPBACK = "127.0.0.1"
_HEAD_LIMIT = 64 * 1024  # request and response heads are small; anything bigger is a bug
_IO_TIMEOUT = 60.0  # an idle connection thread ends after this (bounded even if a client leaks a socket)
_CHUNK = 256 * 1024

# The kinds of fault, as counted in `FaultProxy.counts`.
SLOWDOWN, INTERNAL, RESET, STALL, OUTAGE = "slowdown", "internal", "reset", "stall", "outage"
# A stall after the server stored the request: the client gives up on a write that in fact landed.
STALL_LATE = "stall_late"


@dataclass
class FaultPlan:
    """Shares (0..1) of PUT/POST requests that get each fault; the rest are forwarded untouched."""

    slowdown: float = 0.0
    internal: float = 0.0
    reset: float = 0.0
    stall: float = 0.0
    stall_seconds: float = 5.0
    stall_every: int = 0  # besides the share: every Nth PUT/POST stalls (0 = none), a periodic hiccup
    # Every second stall holds the server's answer instead of the request (the write lands, the client
    # times out and sends it again).
    alternate_late_stalls: bool = True

    def pick(self, rng: random.Random, nth: int) -> str | None:
        x = rng.random()  # drawn every time, so the sequence of faults does not depend on stall_every
        if self.stall_every and nth % self.stall_every == 0:
            return STALL
        for kind, share in ((SLOWDOWN, self.slowdown), (INTERNAL, self.internal), (RESET, self.reset),
                            (STALL, self.stall)):
            if x < share:
                return kind
            x -= share
        return None


@dataclass(frozen=True)
class Exchange:
    """One forwarded request as the proxy saw it: `began` when its head had arrived, `answered` just before
    the answer went back (time.monotonic()). The client sent it no earlier and heard back no earlier."""

    method: str
    target: str  # the request target, e.g. /bucket/prefix/1920/p0001.jp2?uploadId=...
    began: float
    answered: float


class _Closed(Exception):
    """The peer closed (or reset) its side."""


class _Stream:
    """A socket with a read buffer: heads are read up to their blank line, bodies by length or chunk."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        try:
            data = self.sock.recv(_CHUNK)
        except OSError as exc:
            raise _Closed(str(exc)) from None
        if not data:
            raise _Closed("eof")
        self.buf += data

    def read_until(self, marker: bytes, limit: int = _HEAD_LIMIT) -> bytes:
        while True:
            at = self.buf.find(marker)
            if at >= 0:
                out = bytes(self.buf[: at + len(marker)])
                del self.buf[: at + len(marker)]
                return out
            if len(self.buf) > limit:
                raise _Closed("head too long")
            self._fill()

    def read_some(self, most: int) -> bytes:
        if not self.buf:
            self._fill()
        out = bytes(self.buf[:most])
        del self.buf[:most]
        return out

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _Closed(str(exc)) from None


@dataclass
class _Head:
    raw: bytes
    start_line: str
    headers: dict[str, str]  # lower-cased names; the raw bytes are what is forwarded

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def status(self) -> int:
        return int(self.start_line.split(" ", 2)[1])

    def says_close(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()

    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None


def _read_head(stream: _Stream) -> _Head:
    raw = stream.read_until(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return _Head(raw=raw, start_line=lines[0], headers=headers)


def _copy_body(src: _Stream, dst: _Stream | None, head: _Head, *, until_close: bool = False,
               limit: int | None = None) -> int:
    """Copy one message body (Content-Length, chunked, or up to close) from src to dst, raw.
    With `limit`, stop after that many bytes (a reset half-way). dst None reads and drops it."""
    moved = 0

    def put(data: bytes) -> None:
        if dst is not None:
            dst.send(data)

    if head.chunked():
        while limit is None or moved < limit:
            size_line = src.read_until(b"\r\n")
            put(size_line)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    line = src.read_until(b"\r\n")
                    put(line)
                    if line == b"\r\n":
                        return moved
            left = size + 2  # the chunk and its CRLF
            while left:
                data = src.read_some(min(left, _CHUNK))
                put(data)
                left -= len(data)
                moved += len(data)
        return moved
    length = head.length()
    if length is None and not until_close:
        return 0
    left = length if length is not None else None
    while left is None or left > 0:
        if limit is not None and moved >= limit:
            return moved
        want = _CHUNK if left is None else min(left, _CHUNK)
        try:
            data = src.read_some(want)
        except _Closed:
            if left is None:
                return moved
            raise
        put(data)
        moved += len(data)
        if left is not None:
            left -= len(data)
    return moved


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a TCP RST (connection reset), not a clean FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _error_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>fault-proxy</RequestId></Error>").encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"x-amz-request-id: fault-proxy\r\nConnection: close\r\n\r\n").encode()
    return head + body


def _origin_form(head: _Head) -> _Head:
    """'PUT http://bucket.s3.test:9000/k?x HTTP/1.1' (what a client sends a forward proxy) -> 'PUT /k?x HTTP/1.1'.
    The Host header, which the client signed, is left as it is."""
    method, target, version = head.start_line.split(" ", 2)
    if "://" not in target:
        return head
    u = urlsplit(target)
    line = f"{method} {u.path or '/'}{'?' + u.query if u.query else ''} {version}"
    raw = line.encode("latin-1") + head.raw[len(head.start_line.encode("latin-1")):]
    return _Head(raw=raw, start_line=line, headers=head.headers)


class _Sink:
    """A body collected in memory (the checksum-validating mode reads it whole before deciding)."""

    def __init__(self):
        self.data = bytearray()

    def send(self, data: bytes) -> None:
        self.data += data


_ERRORS = {
    SLOWDOWN: _error_response(503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    INTERNAL: _error_response(500, "Internal Server Error", "InternalError",
                              "We encountered an internal error. Please try again."),
}
# Counted in `FaultProxy.counts`: requests the refuse rule turned away, bodies the checksum check refused,
# and bodies corrupted on the way (before the check, as a flaky link would).
REFUSED, BAD_XXHASH, CORRUPTED = "refused", "bad_xxhash128", "corrupted"
_FORBIDDEN = _error_response(403, "Forbidden", "AccessDenied", "Refused by the proxy's policy.")
_BAD_DIGEST = _error_response(400, "Bad Request", "BadDigest",
                              "The XXHASH128 you specified did not match the calculated checksum.")


LIST = "LIST"  # counted in `FaultProxy.counts`: object listings (ListObjects / ListObjectsV2), their targets kept
_LISTINGS_KEPT = 10_000


def _lists_objects(head: _Head) -> bool:
    """A GET of a bucket (path style or virtual-hosted) with ListObjects' parameters; not ?uploads,
    ?location and the other bucket sub-resources."""
    if head.method != "GET":
        return False
    u = urlsplit(head.start_line.split(" ")[1])
    query = {part.split("=", 1)[0] for part in u.query.split("&") if part}
    at_bucket = u.path.strip("/").count("/") == 0
    other = {"uploads", "versions", "location", "acl", "policy", "tagging", "lifecycle", "cors", "versioning"}
    return at_bucket and not query & other and ("list-type" in query or "prefix" in query or "delimiter" in query)


class FaultProxy:
    """Start with `start()`, point the client at `endpoint_url`, change `plan` or `outage` at any time."""

    def __init__(self, upstream_url: str, *, seed: int = 1, plan: FaultPlan | None = None, forward: bool = False,
                 refuse: Callable[[_Head], bool] | None = None, validate_xxhash128: bool = False,
                 corrupt_every: int = 0, corrupt_if: Callable[[_Head], bool] | None = None):
        """forward: also take absolute-form requests (HTTP_PROXY mode); every name is sent to the upstream on
        127.0.0.1, so BUCKET.NAME hosts need no DNS. refuse: requests this rule picks get 403 from the proxy.
        validate_xxhash128: refuse a PUT whose body does not match its x-amz-checksum-xxhash128, as S3 does;
        corrupt_every: flip one byte of every Nth such body (those corrupt_if allows) before that check."""
        host_port = upstream_url.split("://", 1)[1].rstrip("/")
        host, _, port = host_port.partition(":")
        if host != LOOPBACK:
            raise ValueError("the fault proxy only forwards to 127.0.0.1")
        self.upstream = (host, int(port))
        self.plan = plan or FaultPlan()
        self.forward, self.refuse = forward, refuse
        self.validate_xxhash128, self.corrupt_every, self.corrupt_if = validate_xxhash128, corrupt_every, corrupt_if
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        # Faults by kind, plus "requests", "writes" (PUT/POST), "forwarded" and one count per method.
        self.counts: Counter[str] = Counter()
        self.exchanges: list[Exchange] = []  # every request forwarded untouched, in the order answered
        self.listings: list[str] = []  # the request targets of object listings, oldest first (bounded)
        self._outage = threading.Event()
        self._closing = threading.Event()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"

    # -- control, from the test ------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        t = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def set_outage(self, on: bool) -> None:
        if on:
            self._outage.set()
            self._reset_all()  # kept-alive connections die too, as when a server goes away
        else:
            self._outage.clear()

    @property
    def in_outage(self) -> bool:
        return self._outage.is_set()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def trail(self) -> list[Exchange]:
        """The requests forwarded so far (a copy)."""
        with self._lock:
            return list(self.exchanges)

    def wait_for(self, what: str, at_least: int, *, timeout: float) -> bool:
        """Bounded polling until counts[what] >= at_least."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.snapshot()[what] >= at_least:
                return True
            self._closing.wait(0.05)
        return False

    def stop(self) -> None:
        self._closing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        self._reset_all()
        for t in list(self._threads):
            t.join(timeout=5)

    # -- internals -------------------------------------------------------------------------------------
    def _count(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self.counts[k] += 1

    def _track(self, sock: socket.socket, on: bool) -> None:
        with self._lock:
            (self._socks.add if on else self._socks.discard)(sock)

    def _reset_all(self) -> None:
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked on it; it then resets and exits
            except OSError:
                pass

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._outage.is_set():
                self._count(OUTAGE)
                _reset(client)
                continue
            t = threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()

    def _serve(self, client_sock: socket.socket) -> None:
        client_sock.settimeout(_IO_TIMEOUT)
        self._track(client_sock, True)
        upstream_sock: socket.socket | None = None
        try:
            upstream_sock = socket.create_connection(self.upstream, timeout=_IO_TIMEOUT)
            self._track(upstream_sock, True)
            client, upstream = _Stream(client_sock), _Stream(upstream_sock)
            while not self._closing.is_set():
                if not self._one_request(client, upstream):
                    break
        except (_Closed, OSError, ValueError):
            pass
        finally:
            for s in (client_sock, upstream_sock):
                if s is not None:
                    self._track(s, False)
                    _reset(s) if self._outage.is_set() else s.close()

    def _one_request(self, client: _Stream, upstream: _Stream) -> bool:
        """Handle one request on a kept-alive connection; False when the connection must end."""
        head = _read_head(client)
        began = time.monotonic()
        if self._outage.is_set():
            self._count(OUTAGE)
            _reset(client.sock)
            return False
        if self.forward:
            head = _origin_form(head)
        expects = "100-continue" in head.headers.get("expect", "").lower()
        if self.refuse is not None and self.refuse(head):
            self._count(REFUSED)
            if not expects:
                _copy_body(client, None, head)
            client.send(_FORBIDDEN)
            return False
        if self.validate_xxhash128 and "x-amz-checksum-xxhash128" in head.headers and not head.chunked():
            return self._validated(head, client, upstream, expects)
        method = head.method
        listing = _lists_objects(head)
        with self._lock:
            self.counts["requests"] += 1
            self.counts[method] += 1
            if listing:
                self.counts[LIST] += 1
                if len(self.listings) < _LISTINGS_KEPT:
                    self.listings.append(head.start_line.split(" ")[1])
            if method in ("PUT", "POST"):
                self.counts["writes"] += 1
            fault = self.plan.pick(self._rng, self.counts["writes"]) if method in ("PUT", "POST") else None
            if fault == STALL and self.plan.alternate_late_stalls and (self.counts[STALL] + self.counts[STALL_LATE]) % 2:
                fault = STALL_LATE
            if fault:
                self.counts[fault] += 1
        if fault in _ERRORS:
            if not expects:
                _copy_body(client, None, head)  # read it all, as a server would, then refuse it
            client.send(_ERRORS[fault])
            return False  # the client may not have sent its body: this connection is spent
        if fault == RESET:
            if expects:
                client.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            half = max(1, (head.length() or 2) // 2)
            _copy_body(client, None, head, limit=half)
            _reset(client.sock)
            return False
        if fault == STALL:
            if expects:
                client.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            _copy_body(client, None, head)
            self._closing.wait(self.plan.stall_seconds)  # never answer in time; the client gives up
            return False
        return self._forward(head, client, upstream, expects, hold_answer=fault == STALL_LATE, began=began)

    def _validated(self, head: _Head, client: _Stream, upstream: _Stream, expects: bool) -> bool:
        """Read the whole body, maybe corrupt it, check its XXHASH128; refuse it (400 BadDigest) or forward it."""
        self._count("requests", head.method, "writes")
        if expects:
            client.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = _Sink()
        _copy_body(client, body, head)
        if self.corrupt_every and (self.corrupt_if is None or self.corrupt_if(head)) and body.data:
            with self._lock:
                self.counts["corruptible"] += 1
                due = self.counts["corruptible"] % self.corrupt_every == 0
            if due:
                body.data[len(body.data) // 2] ^= 0xFF
                self._count(CORRUPTED)
        expected = head.headers["x-amz-checksum-xxhash128"]
        if base64.b64encode(xxhash.xxh3_128_digest(bytes(body.data))).decode() != expected:
            self._count(BAD_XXHASH)
            client.send(_BAD_DIGEST)
            return False
        upstream.send(head.raw)
        upstream.send(bytes(body.data))
        response = _read_head(upstream)
        while response.status == 100:
            response = _read_head(upstream)
        client.send(response.raw)
        delimited = response.chunked() or response.length() is not None
        _copy_body(upstream, client, response, until_close=not delimited)
        self._count("forwarded")
        return delimited and not (head.says_close() or response.says_close())

    def _forward(self, head: _Head, client: _Stream, upstream: _Stream, expects: bool, *,
                 hold_answer: bool = False, began: float = 0.0) -> bool:
        upstream.send(head.raw)
        if expects:
            interim = _read_head(upstream)
            client.send(interim.raw)
            if interim.status != 100:
                # A final answer instead of 100: the client will not send the body.
                _copy_body(upstream, client, interim, until_close=interim.says_close())
                self._count("forwarded")
                return False
        _copy_body(client, upstream, head)
        response = _read_head(upstream)
        while response.status == 100:  # a server may send 100 even when not asked
            client.send(response.raw)
            response = _read_head(upstream)
        if hold_answer:
            _copy_body(upstream, None, response)  # the server is done; the client never hears of it
            self._closing.wait(self.plan.stall_seconds)
            return False
        exchange = Exchange(head.method, head.start_line.split(" ", 2)[1], began, time.monotonic())
        with self._lock:
            self.exchanges.append(exchange)
        client.send(response.raw)
        no_body = head.method == "HEAD" or response.status in (204, 304)
        if not no_body:
            delimited = response.chunked() or response.length() is not None
            _copy_body(upstream, client, response, until_close=not delimited)
            if not delimited:
                return False
        self._count("forwarded")
        return not (head.says_close() or response.says_close())
