"""The transport as a user meets it: lean requests counted in the summary, a proxy that refuses the lean
connection (the run lands whole through botocore, with one warning), virtual-hosted addressing through a
forward proxy, and XXHASH128 used only where the server checks it."""

from __future__ import annotations

import os

import pytest
from helpers import MIB, assert_landed, json_events, local_files, run_cli, summary_of

from mpupload import localserver
from mpupload.s3.probekeys import CHECKSUM_PROBE_NAME as PROBE_NAME

from .proxy import BAD_XXHASH, CORRUPTED, REFUSED, FaultProxy


def _tree(root, *, small: int = 12, large: bool = True):
    for i in range(small):
        d = root / str(1930 + i % 3)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"page {i}.jp2").write_bytes(os.urandom(20_000 + i))
    if large:
        (root / "1933").mkdir(parents=True, exist_ok=True)
        (root / "1933" / "map.tif").write_bytes(os.urandom(11 * MIB + 3))  # three 5 MiB parts
    return local_files(root)


_MP = ["--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB", "--json"]


def _warnings(stdout: str) -> list[str]:
    return [e["message"] for e in json_events(stdout) if e.get("event") == "warning"]


def _via_proxy(env: dict, proxy: FaultProxy) -> dict:
    return {**env, "HTTP_PROXY": proxy.endpoint_url, "http_proxy": proxy.endpoint_url, "NO_PROXY": "",
            "no_proxy": ""}


def test_lean_requests_counted_and_checksum_fallback_said_once(tmp_path, s3server, s3client, s3env, bucket, prefix):
    files = _tree(tmp_path / "src")
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                 "--processes", "2", *_MP], s3env)
    assert r.returncode == 0, r.stderr
    req = summary_of(r.stdout)["requests"]
    # 12 small files and 3 parts, all lean; SeaweedFS ignores XXHASH128, so the fallback CRC (CRC32C) it is.
    assert req["lean"] == 15 and req["declined"] == 0 and req["botocore"] == 0, req
    assert req["checksum"] == "CRC32C"
    fallback = [w for w in _warnings(r.stdout) if "does not validate XXHASH128" in w]
    assert len(fallback) == 1, _warnings(r.stdout)
    assert_landed(s3client, bucket, prefix, files)


def test_a_proxy_that_refuses_the_lean_connection(tmp_path, s3server, s3client, s3env, bucket, prefix):
    """A corporate proxy that lets only known clients through: botocore's requests pass, mpupload's lean
    ones get 403. Each is sent again through botocore; after a handful the lean path turns itself off."""
    proxy = FaultProxy(s3server.endpoint_url, forward=True,
                       refuse=lambda head: "Botocore" not in head.headers.get("user-agent", "")).start()
    try:
        files = _tree(tmp_path / "src", small=30)
        r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/{prefix}", "--endpoint-url",
                     s3server.endpoint_url, "--processes", "1", "--threads", "4", *_MP], _via_proxy(s3env, proxy))
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr
    req = summary_of(r.stdout)["requests"]
    assert req["lean"] == 0 and req["lean_off"] == {"declined": 1}, req
    # Five strikes turn it off; the other threads may each have had one lean request on the way.
    assert 5 <= req["declined_by_reason"]["refused"] <= 5 + 4 and req["declined"] == proxy.snapshot()[REFUSED]
    assert req["botocore"] == 33
    assert len([w for w in _warnings(r.stdout) if "lean PUT was declined" in w]) == 1
    assert_landed(s3client, bucket, prefix, files)


@pytest.fixture(scope="module")
def vhost_server(tmp_path_factory):
    server = localserver.start(tmp_path_factory.mktemp("seaweedfs-vhost"), domain_name="s3.test")
    server.client().create_bucket(Bucket="vhost")
    yield server
    server.stop()


def test_virtual_hosted_run_lands_whole(tmp_path, vhost_server, s3env):
    """BUCKET.s3.test needs no DNS: the client sends every request to a forward proxy (HTTP_PROXY), which
    hands it to SeaweedFS on 127.0.0.1; SeaweedFS (-s3.domainName=s3.test) reads the bucket from the Host."""
    hosts: list[str] = []
    proxy = FaultProxy(vhost_server.endpoint_url, forward=True,
                       refuse=lambda head: hosts.append(head.headers.get("host", "")) and False).start()
    port = vhost_server.endpoint_url.rsplit(":", 1)[1]
    env = {**_via_proxy(s3env, proxy), **{k: v for k, v in vhost_server.env().items() if k != "AWS_ENDPOINT_URL"}}
    try:
        files = _tree(tmp_path / "src")
        r = run_cli(["upload", str(tmp_path / "src"), "s3://vhost/v", "--endpoint-url", f"http://s3.test:{port}",
                     "--addressing-style", "virtual", *_MP], env)
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr
    req = summary_of(r.stdout)["requests"]
    assert req["lean"] == 15 and req["declined"] == 0, req
    assert hosts and set(hosts) == {f"vhost.s3.test:{port}"}, set(hosts)
    assert_landed(vhost_server.client(), "vhost", "v", files)


def test_where_the_server_checks_xxhash128_a_corrupted_body_is_refused(tmp_path, s3server, s3client, s3env, bucket,
                                                                        prefix):
    """A server that validates XXHASH128 (simulated: the proxy refuses a body that does not match it, as S3
    does), with a link that corrupts every third body on the way: the probe sees validation, every small
    file carries its own xxh3-128 (parts: CRC32), each corrupted body is refused and sent again, and all land
    intact."""
    proxy = FaultProxy(s3server.endpoint_url, validate_xxhash128=True, corrupt_every=3,
                       corrupt_if=lambda head: PROBE_NAME not in head.start_line).start()
    try:
        files = _tree(tmp_path / "src")
        r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url,
                     "--processes", "1", *_MP], s3env)
        counts = proxy.snapshot()
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr
    summary = summary_of(r.stdout)
    assert summary["requests"]["checksum"] == "XXHASH128", summary["requests"]
    assert not [w for w in _warnings(r.stdout) if "XXHASH128" in w]
    assert counts[CORRUPTED] >= 4
    assert counts[BAD_XXHASH] == counts[CORRUPTED] + 1  # every corrupted body, and the probe's wrong part
    assert summary["uploaded"] == len(files) and summary["failed"] == 0
    assert_landed(s3client, bucket, prefix, files)
    assert not s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{PROBE_NAME}").get("Contents")


def test_start_up_asks_the_server_once_per_run(tmp_path, s3server, s3client, s3env, bucket, prefix):
    """Every sequential round trip of start-up delays the first file by a round trip of the link, and every
    request is paid for. So, seen on the wire: the XXHASH128 probe runs once per run however many worker
    processes there are (SeaweedFS takes the wrong checksum, so one PUT tells); an empty destination is
    listed once (the preflight's listing), not again by the planner; no small body waits for a
    `100 Continue` (botocore asks for one with every PUT or POST body); and the probe's object is gone."""
    seen: list[tuple[str, dict]] = []
    proxy = FaultProxy(s3server.endpoint_url,
                       refuse=lambda head: seen.append((head.start_line, dict(head.headers))) and False).start()
    try:
        files = _tree(tmp_path / "src")
        r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url,
                     "--processes", "2", *_MP], s3env)
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["uploaded"] == len(files)
    lines = [line for line, _ in seen]
    assert len([x for x in lines if x.startswith("PUT ") and PROBE_NAME in x]) == 1, lines
    assert len([x for x in lines if x.startswith("GET ") and "list-type=2" in x]) == 1, lines
    expecting = [(line, int(h.get("content-length", 0))) for line, h in seen if "expect" in h]
    assert all(size >= MIB for _, size in expecting), expecting
    assert any(line.startswith("POST ") and "uploadId=" in line for line in lines)  # a completion went out
    assert_landed(s3client, bucket, prefix, files)
    assert not s3client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{PROBE_NAME}").get("Contents")
