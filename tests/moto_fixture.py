"""A second S3 implementation for the tests: moto's server (`moto_server`, from moto[server]) as a real HTTP
server on 127.0.0.1, started once per session like SeaweedFS. It records what SeaweedFS does not model:
server-side encryption and KMS key ids, storage classes, tags, ACLs, checksum types; and it lists keys in
byte order, as AWS does. It accepts any credentials, stores checksums without validating them, and does
not model SSE-C, bucket policies, expected bucket owners or requester pays (tests that need those watch the
headers through a loopback proxy, tests/faults/proxy.py).

Fixtures: `motoserver` (session), `moto_client`, `moto_bucket` (one per test module), `motoenv` (the
environment of a CLI run against it)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mpupload.localserver import stop_process

LOOPBACK = "127.0.0.1"
ACCOUNT = "123456789012"  # moto's default account: the owner of every bucket it makes
_counter = itertools.count(1)


@dataclass
class MotoServer:
    process: subprocess.Popen
    port: int
    access_key: str = "moto-access"
    secret_key: str = "moto-secret"
    region: str = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self, **kwargs):
        """An independent boto3 client (for checking what landed)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=kwargs.pop("endpoint_url", self.endpoint_url),
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            region_name=self.region,
                            config=Config(retries={"mode": "standard", "max_attempts": 3},
                                          s3={"addressing_style": "path"}), **kwargs)

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_ENDPOINT_URL": self.endpoint_url}

    def stop(self) -> None:
        stop_process(self.process)


def _binary() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        raise RuntimeError("moto_server not found: pip install 'moto[server]' (the test extra has it)")
    return found


def start_moto(log: Path) -> MotoServer:
    """Start moto_server on a free loopback port; ready once a real CreateBucket and PutObject succeed."""
    from mpupload.localserver import pick_ports

    port = pick_ports(1)[0]
    with open(log, "wb") as out:
        proc = subprocess.Popen([_binary(), "-H", LOOPBACK, "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = MotoServer(process=proc, port=port)
    client = server.client()
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            client.create_bucket(Bucket="moto-ready")
            client.put_object(Bucket="moto-ready", Key="probe", Body=b"ok")
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.2)  # polling a server's readiness: there is no event to wait on


@pytest.fixture(scope="session")
def motoserver(tmp_path_factory):
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_client(motoserver):
    return motoserver.client()


@pytest.fixture(scope="module")
def moto_bucket(moto_client, request):
    name = "m-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:40].lower() + f"-{next(_counter)}"
    moto_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def motoenv(motoserver, tmp_path):
    """Environment for a CLI run against moto: credentials via the standard chain, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MPUPLOAD_"))}
    env.update(motoserver.env())
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env
