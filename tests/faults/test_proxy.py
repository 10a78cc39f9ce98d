"""The fault proxy itself, against a tiny echo server: bytes pass untouched (Host header, Content-Length
and chunked bodies), connections are kept alive, 100-continue works, and each fault looks to a client
the way it should. The scenarios trust these properties."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import socket
import threading

import pytest

from .proxy import INTERNAL, OUTAGE, RESET, SLOWDOWN, STALL, FaultPlan, FaultProxy


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue answered by the base class

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if not size:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _answer(self) -> None:
        body = self._body()
        reply = json.dumps({"method": self.command, "host": self.headers["Host"], "len": len(body),
                            "sha": hashlib.sha256(body).hexdigest(),
                            "te": self.headers.get("Transfer-Encoding", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def echo_proxy():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    proxy = FaultProxy(f"http://127.0.0.1:{server.server_address[1]}", seed=5).start()
    yield proxy
    proxy.stop()
    server.shutdown()
    server.server_close()
    t.join(5)


def _conn(proxy: FaultProxy, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def test_bytes_pass_untouched_on_one_kept_alive_connection(echo_proxy):
    conn = _conn(echo_proxy)
    body = bytes(range(256)) * 1000
    conn.request("PUT", "/b/k1", body=body, headers={"Host": "signed-for.example:1234"})
    first = json.loads(conn.getresponse().read())
    sock = conn.sock
    conn.request("PUT", "/b/k2", body=iter([body[:1000], body[1000:]]), encode_chunked=True)
    second = json.loads(conn.getresponse().read())
    conn.request("GET", "/b/k1")
    third = json.loads(conn.getresponse().read())
    assert conn.sock is sock, "the proxy did not keep the connection alive"
    assert first["host"] == "signed-for.example:1234", "the Host header the client signed was changed"
    assert first["sha"] == second["sha"] == hashlib.sha256(body).hexdigest()
    assert second["te"] == "chunked" and third["method"] == "GET"
    assert echo_proxy.wait_for("forwarded", 3, timeout=5)  # counted just after the last byte went out
    conn.close()


def test_expect_100_continue_is_relayed(echo_proxy):
    with socket.create_connection(("127.0.0.1", echo_proxy.port), timeout=10) as s:
        s.sendall(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 100")
        s.sendall(b"hello")
        reply = b""
        for _ in range(100):  # bounded: the reply is a few hundred bytes
            reply += s.recv(4096)
            if reply.endswith(b"}"):
                break
    assert b" 200 " in reply.split(b"\r\n")[0] and hashlib.sha256(b"hello").hexdigest().encode() in reply


@pytest.mark.parametrize("kind, status, code", [(SLOWDOWN, 503, b"<Code>SlowDown</Code>"),
                                                (INTERNAL, 500, b"<Code>InternalError</Code>")])
def test_error_faults_answer_like_s3(echo_proxy, kind, status, code):
    echo_proxy.plan = FaultPlan(**{kind: 1.0})
    conn = _conn(echo_proxy)
    conn.request("PUT", "/b/k", body=b"x" * 100)
    resp = conn.getresponse()
    assert resp.status == status and code in resp.read()
    conn.request("GET", "/b/k")  # reads are never faulted
    assert conn.getresponse().status == 200
    assert echo_proxy.snapshot()[kind] == 1  # counted before the answer was sent


def test_reset_fault_resets_the_connection(echo_proxy):
    echo_proxy.plan = FaultPlan(reset=1.0)
    conn = _conn(echo_proxy)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        conn.request("PUT", "/b/k", body=b"x" * 200_000)
        conn.getresponse().read()
    assert echo_proxy.snapshot()[RESET] == 1


def test_stall_outlasts_the_read_timeout(echo_proxy):
    echo_proxy.plan = FaultPlan(stall=1.0, stall_seconds=3)
    conn = _conn(echo_proxy, timeout=0.5)
    conn.request("PUT", "/b/k", body=b"x")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    assert echo_proxy.snapshot()[STALL] == 1


def test_outage_refuses_everything_until_it_ends(echo_proxy):
    echo_proxy.set_outage(True)
    conn = _conn(echo_proxy)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        conn.request("GET", "/b/k")
        conn.getresponse().read()
    conn.close()
    echo_proxy.set_outage(False)
    conn = _conn(echo_proxy)
    conn.request("GET", "/b/k")
    assert conn.getresponse().status == 200
    assert echo_proxy.snapshot()[OUTAGE] >= 1
