"""The link a bench run crosses: straight to the server, or through bench/relay.py in a process of its own.

The relay runs as a separate process (`python -m bench.relay`), one per run: its copying does not share
the bench's GIL with the measuring thread, it is reaped after the run (so its CPU never lands in the
tool's rusage), and each run gets its own counts of connections opened and relay CPU.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_START_TIMEOUT = 15.0


@dataclass
class Link:
    url: str  # where the tool is pointed
    rtt_ms: float | None  # None: straight to the server
    # After the run, from the relay: accepted (connections opened), peak_open, cpu_s.
    stats: dict = field(default_factory=dict)


@contextmanager
def link(server_url: str, *, rtt_ms: float | None) -> Iterator[Link]:
    """Yield the link for one run; a relay is started before and stopped after it."""
    if rtt_ms is None:
        yield Link(server_url, None)
        return
    upstream = server_url.split("://", 1)[1].rstrip("/")
    proc = subprocess.Popen([sys.executable, "-m", "bench.relay", "--to", upstream, "--rtt-ms", f"{rtt_ms:g}"],
                            cwd=REPO, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], _START_TIMEOUT)
        first = proc.stdout.readline() if ready else ""
        if not first.startswith("http://"):
            raise RuntimeError(f"the delay relay did not start (got {first!r})")
        lnk = Link(first.split()[0], rtt_ms)
        yield lnk
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate(timeout=10)
    lines = [ln for ln in (rest or "").splitlines() if ln.startswith("{")]
    if lines:
        lnk.stats = json.loads(lines[-1])
