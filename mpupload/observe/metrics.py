"""`--metrics-address`: the run's counts for Prometheus, served over HTTP with the official client library
(`prometheus_client`, the `metrics` extra), imported only when the option is given.

A Sink like the views: it keeps the latest Snapshot the coordinator publishes (each progress tick, and the
final one at the end), and a custom collector turns that snapshot into metric families when Prometheus
scrapes. Nothing is counted twice: what the summary says and what a scrape says come from the same
snapshots. The server stays up until the sink is closed, after the run's final snapshot (finish) and its
report; with `--metrics-linger` it waits, at most that long, until the final values have been scraped once,
so a scrape interval that ends after the run still sees them (`mpupload_run_finished` is then 1).

Names follow Prometheus' conventions: the `mpupload_` prefix, base units (`_bytes`, `_seconds`), `_total`
on counters; labels `status`, `partition`, `kind`, `reason`, `process`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from mpupload.core.errors import SettingsError
from mpupload.observe.sinks import RunStart, Sink
from mpupload.observe.stats import NO_PARTITION, Snapshot


class MetricsSink(Sink):
    """Serves the latest snapshot at http://HOST:PORT/metrics from a daemon thread of its own."""

    def __init__(self, host: str, port: int, *, linger: float = 0.0):
        try:
            from prometheus_client import start_http_server
            from prometheus_client.registry import CollectorRegistry
        except ImportError:
            raise SettingsError("--metrics-address needs the prometheus_client library: "
                                "pip install 'mpupload[metrics]'") from None
        self.linger = linger
        self.snap: Snapshot | None = None
        self.run: RunStart | None = None
        self.finished = False
        self.final_scraped = threading.Event()
        registry = CollectorRegistry(auto_describe=False)  # only ours: no process/GC metrics of the library
        registry.register(_SnapshotCollector(self))
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:  # in use, or an address this machine does not have: a usage error
            raise SettingsError(f"--metrics-address {host}:{port}: cannot listen: {exc.strerror or exc}"
                                " (another run on that port? choose another one)") from None
        bound = self._server.server_address
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}/metrics"

    def start(self, run: RunStart) -> None:
        self.run = run

    def progress(self, snap: Snapshot) -> None:
        self.snap = snap  # one reference swapped: a scrape reads either the old snapshot or the new one

    def finish(self, snap: Snapshot, failures, *, interrupted: str | bool, fatal: str | None) -> None:
        self.snap = snap
        self.finished = True

    def close(self) -> None:
        if self.finished and self.linger > 0:
            self.final_scraped.wait(self.linger)
        self._server.shutdown()
        self._server.server_close()


def _family(kind: str, name: str, doc: str, labels: tuple[str, ...] = ()):
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(name, doc, labels=list(labels)) if labels else cls(name, doc)


class _SnapshotCollector:
    """A prometheus_client collector reading the sink's latest snapshot at each scrape."""

    def __init__(self, sink: MetricsSink):
        self.sink = sink

    def collect(self) -> Iterator[Any]:
        sink = self.sink
        # `finished` is set after the final snapshot: read first, True means `snap` is the final one.
        finished = sink.finished
        snap = sink.snap
        done = _family("gauge", "mpupload_run_finished", "1 once the run has ended and these are its final values")
        done.add_metric([], 1.0 if finished and snap is not None else 0.0)
        yield done
        if sink.run is not None:
            from prometheus_client.core import InfoMetricFamily

            info = InfoMetricFamily("mpupload_run", "What the run uploads")
            info.add_metric([], {"source": sink.run.source, "destination": sink.run.destination,
                                 "journal": sink.run.journal or ""})
            yield info
        if snap is None:
            return
        yield from _counts(snap)
        yield from _partitions(snap)
        yield from _requests(snap)
        yield from _resources(snap.resources)
        if finished:
            sink.final_scraped.set()


def _counts(s: Snapshot) -> Iterator[Any]:
    files = _family("counter", "mpupload_files", "Files settled, by status", ("status",))
    nbytes = _family("counter", "mpupload_bytes", "Bytes of the files settled, by status", ("status",))
    for status, n, b in (("uploaded", s.uploaded, s.bytes_uploaded), ("skipped", s.skipped, s.bytes_skipped),
                         ("failed", s.failed, s.bytes_failed)):
        files.add_metric([status], n)
        nbytes.add_metric([status], b)
    yield files
    yield nbytes
    for kind, name, doc, value in (
        ("counter", "mpupload_sent_bytes", "Bytes put on the wire (parts and tries again included)", s.bytes_sent),
        ("counter", "mpupload_file_retries", "Tries of files beyond their first (--file-attempts)", s.retries),
        ("counter", "mpupload_parts_reused", "Parts of resumed multipart uploads the server already had", s.parts_reused),
        ("counter", "mpupload_worker_restarts", "Worker processes started again after one died", s.worker_restarts),
        ("gauge", "mpupload_source_files", "Files the run covers (so far, until mpupload_source_counted is 1)",
         s.total_files),
        ("gauge", "mpupload_source_bytes", "Bytes the run covers (so far, until mpupload_source_counted is 1)",
         s.total_bytes),
        ("gauge", "mpupload_source_counted", "1 once the whole source has been counted", float(s.total_known)),
        ("gauge", "mpupload_pending_files", "Files found and not settled yet", s.pending),
        ("gauge", "mpupload_elapsed_seconds", "Seconds since the run started", s.elapsed),
        ("gauge", "mpupload_rate_bytes_per_second", "Bytes sent per second over the last 10 s", s.bytes_per_s),
        ("gauge", "mpupload_rate_files_per_second", "Files settled per second over the last 10 s",
         s.files_per_min / 60.0),
    ):
        family = _family(kind, name, doc)
        family.add_metric([], value)
        yield family
    if s.eta_seconds is not None:
        eta = _family("gauge", "mpupload_eta_seconds", "Seconds left at the current rates (absent while unknown)")
        eta.add_metric([], s.eta_seconds)
        yield eta
    failures = _family("counter", "mpupload_failures", "Failed files by reason (the part before any detail; "
                       f"the {_REASONS} most frequent, the rest as 'other')", ("reason",))
    for reason, n in _bounded((reason, n) for reason, n, _examples in s.failure_reasons):
        failures.add_metric([reason], n)
    yield failures
    skips = _family("counter", "mpupload_skips", "Skipped files by reason (the most frequent; the rest as 'other')",
                    ("reason",))
    for reason, n in _bounded(s.skip_reasons):
        skips.add_metric([reason], n)
    yield skips


_REASONS = 20  # a reason may hold a name (two names for one key): each is a series, so only the top ones


def _bounded(reasons) -> list[tuple[str, int]]:
    """Reasons, most frequent first, as at most _REASONS label values plus "other" for the rest."""
    reasons = list(reasons)
    if len(reasons) <= _REASONS:
        return reasons
    return [*reasons[:_REASONS - 1], ("other", sum(n for _, n in reasons[_REASONS - 1:]))]


def _partitions(s: Snapshot) -> Iterator[Any]:
    """Per partition (year; bounded: 1800-2100 plus "none"): files and bytes settled by status, and the totals."""
    files = _family("counter", "mpupload_partition_files", "Files settled per partition, by status",
                    ("partition", "status"))
    nbytes = _family("counter", "mpupload_partition_bytes", "Bytes settled per partition, by status",
                     ("partition", "status"))
    total_files = _family("gauge", "mpupload_partition_source_files", "Files the partition holds", ("partition",))
    total_bytes = _family("gauge", "mpupload_partition_source_bytes", "Bytes the partition holds", ("partition",))
    for p in s.partitions:
        name = p.name if p.name != NO_PARTITION else "none"
        uploaded = p.done - p.skipped - p.failed
        for status, n, b in (("uploaded", uploaded, p.done_bytes - p.skipped_bytes - p.failed_bytes),
                             ("skipped", p.skipped, p.skipped_bytes), ("failed", p.failed, p.failed_bytes)):
            files.add_metric([name, status], n)
            nbytes.add_metric([name, status], b)
        total_files.add_metric([name], p.files)
        total_bytes.add_metric([name], p.bytes)
    yield from (files, nbytes, total_files, total_bytes)


def _requests(s: Snapshot) -> Iterator[Any]:
    """PutObject / UploadPart requests by the way they were sent (README, Lean PUTs)."""
    t = s.transport
    sent = _family("counter", "mpupload_requests", "PUT and part requests sent, by kind (lean: mpupload's own "
                   "signed PUT; botocore)", ("kind",))
    sent.add_metric(["lean"], t.lean)
    sent.add_metric(["botocore"], t.botocore)
    yield sent
    declined = _family("counter", "mpupload_requests_declined", "Lean requests not stored, sent again through "
                       "botocore, by reason", ("reason",))
    for reason, n in sorted(t.declined.items()):
        declined.add_metric([reason], n)
    yield declined
    lean_off = _family("gauge", "mpupload_lean_off_processes", "Processes whose lean path turned itself off, "
                       "by reason", ("reason",))
    for reason, n in sorted(t.lean_off.items()):
        lean_off.add_metric([reason], n)
    yield lean_off


def _resources(res: dict) -> Iterator[Any]:
    """The pace's counts and the psutil sample of the coordinator and its workers (monitor.py)."""
    for kind, name, doc, key in (
        ("counter", "mpupload_throttles", "Throttled answers (503 SlowDown, 429)", "throttles"),
        ("counter", "mpupload_outage_holds", "Times every worker held for an endpoint that stopped answering",
         "outages"),
        ("counter", "mpupload_limit_waits", "Requests that waited for --max-bandwidth / --max-requests-per-second",
         "limit_waits"),
        ("counter", "mpupload_limit_wait_seconds", "Seconds requests waited for the limits", "limit_wait_seconds"),
        ("counter", "mpupload_partition_pauses", "Pauses between partitions (--partition-pause)", "partition_pauses"),
        ("gauge", "mpupload_files_in_flight", "Files the workers hold in flight now", "inflight_now"),
        ("gauge", "mpupload_files_in_flight_limit", "Files each process may have in flight (follows the link)",
         "inflight_limit"),
        ("gauge", "mpupload_resident_memory_bytes", "RSS of the coordinator and its workers together", "rss"),
        ("gauge", "mpupload_peak_resident_memory_bytes", "Highest RSS of all processes together so far", "peak_rss"),
        ("gauge", "mpupload_network_sent_bytes_per_second", "The machine's network send rate", "net_sent_per_s"),
    ):
        if res.get(key) is not None:
            family = _family(kind, name, doc)
            family.add_metric([], float(res[key]))
            yield family
    cpu = _family("gauge", "mpupload_process_cpu_usage_ratio", "CPU used per process since the last sample "
                  "(1.0 = one core busy)", ("process",))
    rss = _family("gauge", "mpupload_process_resident_memory_bytes", "RSS per process", ("process",))
    for process, sample in sorted(res.get("processes", {}).items()):
        cpu.add_metric([process], sample.get("cpu_percent", 0.0) / 100.0)
        rss.add_metric([process], sample.get("rss", 0))
    yield cpu
    yield rss
