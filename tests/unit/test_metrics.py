"""The metrics sink on its own (a real HTTP server on loopback, scraped and parsed with the official client's
parser): the address rules, reasons kept to a bounded number of series, the final values marked, and the
linger that ends at the first scrape of them."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from mpupload.core.errors import SettingsError
from mpupload.core.messages import FAILED, UPLOADED, UploadResult
from mpupload.core.units import parse_address
from mpupload.observe.sinks import RunStart
from mpupload.observe.stats import Stats

parser = pytest.importorskip("prometheus_client.parser")
from mpupload.observe.metrics import MetricsSink  # noqa: E402


@pytest.mark.parametrize(("text", "want"), [
    ("9464", ("127.0.0.1", 9464)), (":9464", ("127.0.0.1", 9464)), ("127.0.0.1:80", ("127.0.0.1", 80)),
    ("0.0.0.0:9464", ("0.0.0.0", 9464)), ("[::1]:9464", ("::1", 9464)), ("localhost:9464", ("localhost", 9464)),
])
def test_addresses_default_to_loopback(text, want):
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:65536", "a:b", "9464x"])
def test_bad_addresses(text):
    with pytest.raises(SettingsError, match="not an address"):
        parse_address(text)


def _scrape(sink: MetricsSink) -> dict:
    with urllib.request.urlopen(sink.url, timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def sink():
    s = MetricsSink("127.0.0.1", 0, linger=30)  # port 0: any free one (sink.url names it)
    yield s
    s.linger = 0
    s.close()


def test_reasons_are_a_bounded_set_of_series_whose_sum_is_every_failure(sink):
    stats = Stats()
    for i in range(50):
        stats.add(UploadResult(rel=f"f{i}", key=f"k{i}", status=FAILED, reason=f"reason number {i}", size=10))
    stats.add(UploadResult(rel="ok", key="ok", status=UPLOADED, size=7))
    sink.progress(stats.snapshot())
    m = _scrape(sink)
    failures = {labels: v for (name, labels), v in m.items() if name == "mpupload_failures_total"}
    assert len(failures) == 20 and sum(failures.values()) == 50
    assert failures[(("reason", "other"),)] == 31
    assert m[("mpupload_bytes_total", (("status", "failed"),))] == 500
    assert m[("mpupload_partition_bytes_total", (("partition", "none"), ("status", "uploaded")))] == 7


def test_before_the_first_tick_only_the_run_state_is_served(sink):
    sink.start(RunStart(source="/src", destination="s3://b/p", pool="1 process", concurrency="8", journal="/j"))
    m = _scrape(sink)
    assert m[("mpupload_run_finished", ())] == 0
    assert m[("mpupload_run_info", (("destination", "s3://b/p"), ("journal", "/j"), ("source", "/src")))] == 1
    assert not any(name == "mpupload_files_total" for name, _ in m)


def test_the_linger_ends_at_the_first_scrape_of_the_final_values(sink):
    stats = Stats()
    sink.progress(stats.snapshot())
    stats.add(UploadResult(rel="a", key="a", status=UPLOADED, size=3))
    sink.finish(stats.snapshot(), [], interrupted=False, fatal=None)
    closed = threading.Event()
    closer = threading.Thread(target=lambda: (sink.close(), closed.set()))
    started = time.monotonic()
    closer.start()
    assert not closed.wait(0.3), "close() returned before the final values were scraped"
    m = _scrape(sink)
    assert (m[("mpupload_run_finished", ())], m[("mpupload_files_total", (("status", "uploaded"),))]) == (1, 1)
    assert closed.wait(10)
    assert time.monotonic() - started < 10  # the scrape ended it, not the 30 s linger
    sink.close = lambda: None  # already closed (the fixture's close)


def test_without_a_linger_close_does_not_wait(sink):
    sink.linger = 0
    sink.finish(Stats().snapshot(), [], interrupted=False, fatal=None)
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 2
    sink.close = lambda: None
