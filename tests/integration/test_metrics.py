"""--metrics-address: Prometheus metrics scraped during a real run (real CLI, real worker processes, SeaweedFS
behind an 80 ms relay so the run lasts), parsed with the official client's parser, and held against the
run's own JSON summary; a port in use is a usage error before anything is sent; off by default, the library
is not even imported."""

from __future__ import annotations

import os
import socket
import urllib.request

import psutil
import pytest
from helpers import list_keys, run_cli, start_cli, summary_of, wait_for

parser = pytest.importorskip("prometheus_client.parser")

NFC_E, NFD_E = "\u00e9", "e\u0301"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple], float] | None:
    """{(sample name, sorted labels): value}, or None while nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode("utf-8")
    except OSError:
        return None
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _get(m: dict, name: str, **labels) -> float:
    return m[(name, tuple(sorted(labels.items())))]


TOO_BIG = 5 * 1024**4 + 1  # one byte over what S3 stores: fails before any read or request


def _tree(src) -> tuple[int, int]:
    """Two years of small files, a FIFO (skipped), two names for one key (both failed) and a sparse file too
    large for S3 (failed, with its bytes)."""
    n = nbytes = 0
    for year in ("1920", "1921"):
        (src / year).mkdir(parents=True)
        for i in range(30):
            data = os.urandom(2000 + i)
            (src / year / f"p{i:03}.jp2").write_bytes(data)
            n, nbytes = n + 1, nbytes + len(data)
    os.mkfifo(src / "1921" / "pipe")
    with open(src / "1921" / "huge.tif", "wb") as f:
        f.truncate(TOO_BIG)
    (src / "1920" / f"caf{NFC_E}.txt").write_bytes(b"composed")
    (src / "1920" / f"caf{NFD_E}.txt").write_bytes(b"decomposed")
    return n, nbytes


def test_a_scrape_during_the_run_parses_and_the_final_one_agrees_with_the_summary(tmp_path, s3server, s3client,
                                                                                 slow_link, s3env, bucket, prefix):
    src = tmp_path / "src"
    n, nbytes = _tree(src)
    port = _free_port()
    proc = start_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url,
                      "--json", "--processes", "1", "--threads", "2", "--progress-interval", "0.2",
                      "--metrics-address", str(port), "--metrics-linger", "120"], s3env)
    try:
        # (Before the first progress tick a scrape holds mpupload_run_finished alone.)
        during = wait_for(lambda: (m := _scrape(port)) and m.get(("mpupload_files_total", (("status", "uploaded"),)), 0) >= 3
                          and m, timeout=120, what="a scrape with uploads under way")
        # PORT alone listens on the loopback interface only.
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == "LISTEN"]
        assert listening == [("127.0.0.1", port)], listening
        final = wait_for(lambda: (m := _scrape(port)) and _get(m, "mpupload_run_finished") == 1 and m,
                         timeout=180, what="the final values")
        out, err = proc.communicate(timeout=60)  # the final scrape ended the linger: the run exits now
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err  # the two names for one key and the file too large failed
    s = summary_of(out)
    assert _get(during, "mpupload_run_finished") == 0
    assert _get(during, "mpupload_files_total", status="uploaded") < n, "the first scrape was not during the run"
    # Counters only grow: the scrape during the run is at most the final one.
    for key, value in during.items():
        if key[0].endswith("_total") and key in final:
            assert value <= final[key], key
    for status, count, size in (("uploaded", s["uploaded"], s["bytes"]), ("skipped", s["skipped"], s["bytes_skipped"]),
                                ("failed", s["failed"], s["bytes_failed"])):
        assert _get(final, "mpupload_files_total", status=status) == count
        assert _get(final, "mpupload_bytes_total", status=status) == size
    assert (s["uploaded"], s["bytes"], s["skipped"], s["failed"], s["bytes_failed"]) == (n, nbytes, 1, 3, TOO_BIG)
    assert _get(final, "mpupload_sent_bytes_total") == s["bytes_sent"]
    assert _get(final, "mpupload_requests_total", kind="lean") == s["requests"]["lean"] > 0
    assert _get(final, "mpupload_requests_total", kind="botocore") == s["requests"]["botocore"]
    assert _get(final, "mpupload_throttles_total") == s["throttles"]
    assert _get(final, "mpupload_outage_holds_total") == s["outages"]
    assert sum(v for (name, _), v in final.items() if name == "mpupload_failures_total") == s["failed"]
    # Per partition, the statuses add up to the run's.
    for status, count in (("uploaded", n), ("skipped", 1), ("failed", 3)):
        per = {dict(labels)["partition"]: v for (name, labels), v in final.items()
               if name == "mpupload_partition_files_total" and dict(labels)["status"] == status}
        assert sum(per.values()) == count, (status, per)
    assert _get(final, "mpupload_partition_files_total", partition="1920", status="uploaded") == 30
    # What never got a year (a FIFO, two names for one key) is partition "none", as in the live view.
    assert _get(final, "mpupload_partition_files_total", partition="none", status="failed") == 2
    assert _get(final, "mpupload_partition_files_total", partition="none", status="skipped") == 1
    assert _get(final, "mpupload_partition_bytes_total", partition="1921", status="failed") == TOO_BIG
    assert _get(final, "mpupload_partition_source_files", partition="1921") == 31
    assert (_get(final, "mpupload_source_files"), _get(final, "mpupload_source_counted")) == (s["found"], 1)
    assert _get(final, "mpupload_pending_files") == s["not_done"] == 0
    # Per-process resources: the coordinator and its one worker.
    assert _get(final, "mpupload_process_resident_memory_bytes", process="coordinator") > 10 * 1024 * 1024
    assert ("mpupload_process_cpu_usage_ratio", (("process", "worker-1"),)) in during
    assert _get(final, "mpupload_peak_resident_memory_bytes") == s["peak_rss"]
    assert _get(final, "mpupload_files_in_flight_limit") == s["inflight_per_process"]


def test_a_port_in_use_is_a_usage_error_before_anything_is_sent(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    (src / "1920").mkdir(parents=True)
    (src / "1920" / "a.jp2").write_bytes(b"a" * 100)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                     "--metrics-address", f"127.0.0.1:{port}"], s3env)
    assert r.returncode == 2, r.stderr
    assert f"--metrics-address 127.0.0.1:{port}: cannot listen" in r.stderr
    assert list_keys(s3client, bucket, prefix) == {}
    assert not (tmp_path / "state").exists(), "a journal was made before the usage error"


@pytest.mark.parametrize("address", ["127.0.0.1:0", "localhost:http", "1.2.3.4"])
def test_a_bad_address_is_a_usage_error(tmp_path, s3env, address):
    (tmp_path / "src").mkdir()
    r = run_cli(["upload", str(tmp_path / "src"), "s3://b/p", "--metrics-address", address], s3env)
    assert r.returncode == 2 and "not an address" in r.stderr, r.stderr


def test_off_by_default_the_library_is_not_imported(tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 10)
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "mpupload", "upload", str(src),
                        f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url, "--quiet"],
                       env=s3env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "boto3" in r.stderr  # the import trace is there ...
    assert "prometheus_client" not in r.stderr and "mpupload.observe.metrics" not in r.stderr  # ... without these
