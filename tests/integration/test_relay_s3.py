"""SigV4 through bench/relay.py: the client signs for the relay's host:port, the relay forwards the Host
header untouched and SeaweedFS checks the signature against the Host it receives, so signed requests
(PUT, multipart, GET) and the real CLI all work through a delayed link."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from helpers import MIB, run_cli, summary_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.relay import DelayRelay  # noqa: E402


def _upstream(s3server) -> tuple[str, int]:
    host, port = s3server.endpoint_url.split("://", 1)[1].split(":")
    return host, int(port)


def test_signed_requests_pass_through_the_relay(s3server, s3client, bucket, prefix, tmp_path):
    body = os.urandom(300_000)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * MIB))
    with DelayRelay(upstream=_upstream(s3server), rtt=0.04) as relay:
        far = s3server.client(endpoint_url=relay.url)
        far.put_object(Bucket=bucket, Key=f"{prefix}/small", Body=body)
        # Multipart: create, parts, complete, all signed for the relay's port.
        far.upload_file(str(big), bucket, f"{prefix}/big",
                        Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
        assert far.get_object(Bucket=bucket, Key=f"{prefix}/small")["Body"].read() == body
        assert relay.accepted >= 1
    # Checked directly, not through the relay.
    assert s3client.get_object(Bucket=bucket, Key=f"{prefix}/small")["Body"].read() == body
    assert s3client.head_object(Bucket=bucket, Key=f"{prefix}/big")["ContentLength"] == 11 * MIB


def test_the_cli_uploads_through_the_relay(s3server, s3client, s3env, bucket, prefix, tmp_path):
    src = tmp_path / "src" / "1950"
    src.mkdir(parents=True)
    for i in range(20):
        (src / f"page-{i}.jp2").write_bytes(os.urandom(50_000 + i))
    with DelayRelay(upstream=_upstream(s3server), rtt=0.04) as relay:
        env = dict(s3env, AWS_ENDPOINT_URL=relay.url)
        r = run_cli(["upload", str(src.parent), f"s3://{bucket}/{prefix}", "--endpoint-url", relay.url, "--json"], env)
    assert r.returncode == 0, r.stderr + r.stdout
    assert summary_of(r.stdout)["uploaded"] == 20
    keys = [o["Key"] for o in s3client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])]
    assert len(keys) == 20
