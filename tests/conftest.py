"""Shared fixtures: one real SeaweedFS S3 server per test session on 127.0.0.1, one bucket per test
module (SeaweedFS gives each bucket its own volumes, ~75 slots here), a fresh prefix per test."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository: bench.relay

from mpupload import localserver  # noqa: E402

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def s3server(tmp_path_factory):
    server = localserver.start(tmp_path_factory.mktemp("seaweedfs"), readonly_identity=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3client(s3server):
    return s3server.client()


@pytest.fixture(scope="module")
def bucket(s3client, request):
    name = "t-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:40].lower() + f"-{next(_counter)}"
    s3client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def prefix(request):
    return f"{request.node.name[:60]}-{next(_counter)}".replace("[", "-").replace("]", "").replace("/", "-")


@pytest.fixture
def slow_link(s3server):
    """A relay in front of the server adding 80 ms of round trip (bench/relay.py), as a real link does: a
    run through it is long enough to be stopped or killed mid-way however busy the machine is."""
    from bench.relay import DelayRelay

    host, port = s3server.endpoint_url.split("://", 1)[1].split(":")
    with DelayRelay(upstream=(host, int(port)), rtt=0.080) as relay:
        yield relay


@pytest.fixture
def s3env(s3server, tmp_path):
    """Environment for a CLI run: credentials via the standard chain, nothing else inherited from AWS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MPUPLOAD_"))}
    env.update(s3server.env())
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # each test its own journals
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # and no settings file but its own
    return env

# moto's server, the second S3 implementation (tests/moto_fixture.py): motoserver, moto_client, moto_bucket, motoenv
from moto_fixture import moto_bucket, moto_client, motoenv, motoserver  # noqa: E402, F401
