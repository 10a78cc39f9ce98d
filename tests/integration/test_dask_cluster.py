"""README's promises for a Dask cluster the user runs (`--executor dask --scheduler ADDR`), held through the CLI
against a real scheduler and real worker processes started by the test (tests/dask_cluster.py) and the real
S3 server: a whole run read back byte for byte; the bound on outstanding tasks as the scheduler sees it, also
as a worker joins; the limit on hand-backs after worker deaths; --max-bandwidth / --max-requests-per-second
split between the workers; workers that stop when their coordinator is killed."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from dask_cluster import ExternalCluster, cluster_env
from helpers import (
    MIB,
    assert_landed,
    json_events,
    list_keys,
    local_files,
    run_cli,
    start_cli,
    summary_of,
    wait_for,
)

pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_archive import make_archive  # noqa: E402

from bench.meter import Meter  # noqa: E402
from bench.relay import DelayRelay  # noqa: E402


def upload_args(src: Path, bucket: str, prefix: str, endpoint: str, scheduler: str, *extra: str) -> list[str]:
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", endpoint, "--json",
            "--executor", "dask", "--scheduler", scheduler, *extra]


def tiny_files(root: Path, count: int, size: int = 1024) -> None:
    for i in range(count):
        p = root / str(1990 + i % 3) / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))


def _upstream(s3server) -> tuple[str, int]:
    host, port = s3server.endpoint_url.split("://", 1)[1].split(":")
    return host, int(port)


@pytest.fixture(scope="module")
def shared_cluster(s3server, tmp_path_factory):
    """A scheduler and two workers of two threads for the tests that leave the cluster as they found it
    (nothing killed); the tests that kill start their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MPUPLOAD_"))}
    env.update(s3server.env())
    cluster = ExternalCluster(tmp_path_factory.mktemp("dask"), cluster_env(env), workers=2)
    try:
        yield cluster
    finally:
        cluster.close()


def _executed(cluster: ExternalCluster) -> int:
    def look(dask_worker) -> int:
        return dask_worker.state.executed_count

    return sum(cluster.client.run(look).values())


def test_a_run_on_an_external_cluster_lands_every_byte(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                                      shared_cluster):
    """README: `mpupload upload ... --executor dask --scheduler tcp://...` on a cluster already running."""
    src = tmp_path / "archive"
    make_archive(src, pages=60, large=1, large_size=12 * MIB, seed=21)  # one multipart file among them
    files = local_files(src)
    before = _executed(shared_cluster)
    r = run_cli(upload_args(src, bucket, prefix, s3server.endpoint_url, shared_cluster.address,
                            "--batch-files", "8"), s3env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (len(files), 0, 0), s
    assert_landed(s3client, bucket, prefix, files)  # read back: the same bytes, the right digests
    # The batches ran as tasks on the cluster's workers (not in some local fallback): 61 files, 8 a batch.
    assert _executed(shared_cluster) - before >= len(files) // 8, (before, _executed(shared_cluster))
