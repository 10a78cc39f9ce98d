"""A loopback TCP relay that delays every byte by a fixed time each way: a long link on one machine.

    with DelayRelay(upstream=("127.0.0.1", 8333), rtt=0.080) as relay:
        ...  # point the client at relay.url
    python -m bench.relay --to 127.0.0.1:8333 --rtt-ms 80 [--port N]

Each direction is a bandwidth-delay pipe, not stop-and-wait: a chunk read at time t is written on at
t + rtt/2, in order, while later chunks keep arriving, so a window of data is in flight as on a real
long link. Per connection and direction at most `max_queued` bytes wait; beyond that the relay stops
reading and the sender's own TCP window fills, so hundreds of connections stay bounded in memory.

A new connection also pays TCP's handshake: the kernel completes the loopback handshake at once, so
the relay holds the client's first bytes until one round trip after it connected (`handshake=False`
turns that off). A request on a fresh connection costs two round trips, on a kept-alive one one:
what makes connection reuse matter on a real link.

Bytes are forwarded untouched, Host header included: the client signs (SigV4) for 127.0.0.1:<relay
port> and the server checks the signature against the Host header it receives, so it verifies.
A half-close (FIN) and a reset reach the other side after the same delay as the data before them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import struct
import threading
import time

LOOPBACK = "127.0.0.1"
_CHUNK = 256 * 1024  # one read; also the StreamReader buffer limit, so a read is one chunk
_MAX_QUEUED = 4 * 1024 * 1024  # per direction: 4 MiB per rtt/2 still allows 80 MiB/s at 100 ms
_RESET: None = None  # queued in place of data: the sender reset (or the read failed)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the peer sees a reset as the relay did, not a clean end."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, delay: float, not_before: float,
                max_queued: int, meter=None) -> None:
    """Copy src to dst, each chunk `delay` after it was read (counting from `not_before` at the earliest).
    Returns after forwarding EOF or a reset; raises when dst fails."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()  # bounded by bytes, below
    room = asyncio.Event()
    room.set()
    queued = 0

    async def receive() -> None:
        nonlocal queued
        while True:
            try:
                data = await src.read(_CHUNK)
            except Exception:  # a reset, or anything else that ends this side: the other must hear of it
                data = _RESET
            # The arrival time is stamped at once; the send side only waits for it.
            queue.put_nowait((max(loop.time(), not_before) + delay, data))
            if not data:
                return
            queued += len(data)
            if queued > max_queued:
                room.clear()
                await room.wait()

    reader = asyncio.create_task(receive())
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is _RESET:
                _abort(dst)
                return
            if not data:
                if dst.can_write_eof():
                    dst.write_eof()
                return
            dst.write(data)
            if meter is not None:
                meter(data)  # as it reaches the server's side of the link
            await dst.drain()
            queued -= len(data)
            if queued <= max_queued:
                room.set()
    finally:
        reader.cancel()


class DelayRelay:
    """Listens on 127.0.0.1 (`port`, `url`) and relays every connection to `upstream` with `rtt`
    seconds of round trip added (half each way). Runs its own asyncio loop in a background thread."""

    def __init__(self, *, upstream: tuple[str, int], rtt: float, port: int = 0, handshake: bool = True,
                 max_queued: int = _MAX_QUEUED, meter=None):
        """meter: called with every chunk sent towards the upstream, as it is sent (bench/meter.py counts
        bytes and requests over time with it)."""
        if rtt < 0:
            raise ValueError("rtt must be >= 0")
        self.upstream = upstream
        self.rtt = rtt
        self.handshake = handshake
        self.max_queued = max_queued
        self.meter = meter
        # Bound here, so the port is known (and a taken port fails) before the thread starts.
        self._sock = socket.create_server((LOOPBACK, port))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        # Counters, written by the relay's loop only (read them after stop() for exact values).
        self.accepted = 0
        self.open = 0
        self.peak_open = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()  # one per connection
        self._pipes: set[asyncio.Task] = set()  # two per connection

    def __enter__(self) -> DelayRelay:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> DelayRelay:
        self._thread = threading.Thread(target=self._run, name=f"delay-relay-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay relay did not start within 10 s")
        if self._failed is not None:
            raise RuntimeError("delay relay failed to start") from self._failed
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection (reset), then join the thread (at most `timeout`)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._thread is not None and self._thread.is_alive():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop already ended
                pass
            self._thread.join(timeout)
        self._sock.close()

    # -- the loop's side ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start(); after start it only ends the relay
            self._failed = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, sock=self._sock, limit=_CHUNK, backlog=1024)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for w in list(self._writers):
            _abort(w)
        # Cancel the pipes, not the connection tasks: those then end normally (asyncio's stream
        # callback logs a cancelled connection task as an error).
        for t in list(self._pipes):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        connected = loop.time()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_w)
        self.accepted += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        up_w: asyncio.StreamWriter | None = None
        try:
            try:
                up_r, up_w = await asyncio.open_connection(*self.upstream, limit=_CHUNK)
            except OSError:
                _abort(client_w)  # as a refused connection looks from afar
                return
            self._writers.add(up_w)
            half = self.rtt / 2
            pipes = [
                asyncio.create_task(_pipe(client_r, up_w, delay=half, max_queued=self.max_queued,
                                          not_before=connected + self.rtt if self.handshake else 0.0,
                                          meter=self.meter)),
                asyncio.create_task(_pipe(up_r, client_w, delay=half, not_before=0.0, max_queued=self.max_queued)),
            ]
            self._pipes.update(pipes)
            try:
                done, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
                if any(not t.cancelled() and t.exception() is not None for t in done):
                    _abort(client_w)  # one side failed: the other must not hang on a half-dead pair
                    _abort(up_w)
            finally:
                for t in pipes:
                    t.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                self._pipes.difference_update(pipes)
        finally:
            self.open -= 1
            self._tasks.discard(task)
            for w in (client_w, up_w):
                if w is not None:
                    self._writers.discard(w)
                    w.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: run a relay until interrupted; the first line printed starts with its URL."""
    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n\n")[0])
    p.add_argument("--to", required=True, help="upstream HOST:PORT, e.g. 127.0.0.1:8333")
    p.add_argument("--rtt-ms", type=float, required=True, help="round trip to add, in milliseconds")
    p.add_argument("--port", type=int, default=0, help="port to listen on, on 127.0.0.1 (default: any free)")
    p.add_argument("--no-handshake", action="store_true", help="do not charge a new connection one round trip")
    a = p.parse_args(argv)
    host, _, port = a.to.rpartition(":")
    relay = DelayRelay(upstream=(host, int(port)), rtt=a.rtt_ms / 1000, port=a.port, handshake=not a.no_handshake)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with relay:
        print(f"{relay.url} -> {host}:{port}, {a.rtt_ms:g} ms round trip added", flush=True)
        while not done.wait(1):  # a timed wait, so the signal handler runs promptly
            pass
    # The last line: what a caller (bench/run.py) records about the run it relayed.
    print(json.dumps({"accepted": relay.accepted, "peak_open": relay.peak_open, "cpu_s": time.process_time()}),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
