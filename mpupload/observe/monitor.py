"""psutil samples of the coordinator and its workers (CPU%, RSS) and of the system's network send rate,
for the progress view and the summary. Sampling is cheap; it runs on the coordinator's tick."""

from __future__ import annotations

import time

import psutil


class ResourceMonitor:
    def __init__(self):
        self._procs: dict[str, psutil.Process] = {"coordinator": psutil.Process()}
        self._procs["coordinator"].cpu_percent(None)  # first call only primes the counter
        self._last_net = self._net_sent()
        self._last_t = time.monotonic()
        self.peak_rss = 0

    @staticmethod
    def _net_sent() -> int:
        try:
            return psutil.net_io_counters().bytes_sent
        except Exception:  # some containers hide /proc/net
            return 0

    def add_worker(self, name: str, pid: int) -> None:
        try:
            p = psutil.Process(pid)
            p.cpu_percent(None)
            self._procs[name] = p
        except psutil.Error:
            pass

    def forget(self, name: str) -> None:
        self._procs.pop(name, None)

    def sample(self) -> dict:
        now = time.monotonic()
        procs: dict[str, dict] = {}
        total_rss = 0
        cpu_seconds = 0.0
        for name, p in list(self._procs.items()):
            try:
                with p.oneshot():
                    rss = p.memory_info().rss
                    cpu = p.cpu_percent(None)
                    t = p.cpu_times()
                procs[name] = {"cpu_percent": round(cpu, 1), "rss": rss}
                total_rss += rss
                cpu_seconds += t.user + t.system
            except psutil.Error:
                if name != "coordinator":
                    self._procs.pop(name, None)
        self.peak_rss = max(self.peak_rss, total_rss)
        net = self._net_sent()
        span = max(now - self._last_t, 1e-6)
        net_rate = max(0, net - self._last_net) / span
        self._last_net, self._last_t = net, now
        return {
            "processes": procs,
            "cpu_percent": round(sum(p["cpu_percent"] for p in procs.values()), 1),
            "rss": total_rss,
            "peak_rss": self.peak_rss,
            "cpu_seconds": round(cpu_seconds, 2),
            "net_sent_per_s": net_rate,
        }
