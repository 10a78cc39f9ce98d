"""Running one tool invocation and measuring it: wall time, client CPU of the whole process tree, peak
RSS of the tree, server CPU.

Client CPU comes from getrusage(RUSAGE_CHILDREN) deltas: the kernel adds a child's user+sys time (and
that of every descendant it reaped) when it is reaped, so worker processes, Go threads and short-lived
helpers are all counted, which psutil sampling would miss between samples. The bench runs one tool at
a time and reaps nothing else meanwhile, so the delta is exactly the tool's. psutil sampling of the tree
every ~50 ms gives the peak RSS (and a CPU cross-check)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import psutil

SAMPLE_SECONDS = 0.05


@dataclass
class Measurement:
    returncode: int | None  # None: killed at the timeout
    wall_s: float
    cpu_s: float  # user+sys of the whole client tree (rusage of children)
    cpu_sampled_s: float  # the same from psutil samples (a lower bound; a cross-check)
    peak_rss: int  # bytes, sum over the tree at the worst sample
    server_cpu_s: float
    stderr_tail: str


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class _Sampler(threading.Thread):
    """Samples RSS and CPU of a process tree until told to stop; bounded by the tool's timeout."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self._cpu: dict[int, float] = {}  # last seen CPU per pid: the sum survives a child's exit
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss = 0
            for p in _tree(self.root):
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                        self._cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self._halt.wait(SAMPLE_SECONDS)

    @property
    def cpu(self) -> float:
        return sum(self._cpu.values())

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _server_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return 0.0


def run_measured(argv: list[str], *, env: dict[str, str], timeout: float, server_pid: int | None,
                 log_path: str) -> Measurement:
    """Run argv to completion (or kill its whole group at `timeout`) and measure it."""
    cpu0, srv0 = _children_cpu(), _server_cpu(server_pid)
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        sampler = _Sampler(proc.pid)
        sampler.start()
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own child's group: every helper it started
            proc.wait(timeout=30)
            code = None
        wall = time.perf_counter() - t0
        sampler.stop()
    cpu1, srv1 = _children_cpu(), _server_cpu(server_pid)
    with open(log_path, "rb") as log:
        tail = log.read()[-2000:].decode("utf-8", "replace")
    return Measurement(returncode=code, wall_s=wall, cpu_s=cpu1 - cpu0, cpu_sampled_s=sampler.cpu,
                       peak_rss=sampler.peak_rss, server_cpu_s=srv1 - srv0, stderr_tail=tail)
