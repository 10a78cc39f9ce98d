"""Over TLS, against SeaweedFS serving a self-signed certificate: verification stays on unless turned off,
and with the certificate as CA bundle the upload (small and multipart) lands whole."""

from __future__ import annotations

import os

import pytest
from helpers import MIB, assert_landed, local_files, run_cli, summary_of

from mpupload import localserver


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    server = localserver.start(tmp_path_factory.mktemp("seaweedfs-tls"), https=True)
    server.client().create_bucket(Bucket="tls")
    yield server
    server.stop()


@pytest.fixture
def tls_env(tls_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(tls_server.env())
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


def _tree(root):
    (root / "1933").mkdir(parents=True)
    (root / "1933" / "page.jp2").write_bytes(os.urandom(70_000))
    (root / "1933" / "map.tif").write_bytes(os.urandom(6 * MIB + 1))
    return local_files(root)


def test_self_signed_certificate_is_refused_by_default(tmp_path, tls_server, tls_env):
    _tree(tmp_path / "a")
    r = run_cli(["upload", str(tmp_path / "a"), "s3://tls/x", "--endpoint-url", tls_server.https_url], tls_env)
    assert r.returncode == 3
    assert "TLS verification failed" in r.stderr and "Traceback" not in r.stderr


def test_upload_over_https_with_ca_bundle(tmp_path, tls_server, tls_env):
    files = _tree(tmp_path / "a")
    r = run_cli(["upload", str(tmp_path / "a"), "s3://tls/ok", "--endpoint-url", tls_server.https_url,
                 "--ca-bundle", str(tls_server.cert_file), "--multipart-threshold", "5MiB",
                 "--multipart-chunksize", "5MiB", "--json"], tls_env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["uploaded"] == 2
    client = tls_server.client(endpoint_url=tls_server.https_url, verify=str(tls_server.cert_file))
    assert_landed(client, "tls", "ok", files)


def test_aws_ca_bundle_is_trusted_with_no_flag(tmp_path, tls_server, tls_env):
    """As a new user behind a corporate TLS setup: the certificate in AWS_CA_BUNDLE, no mpupload flag. Both
    botocore and the lean PUT trust it; small files and parts go lean, none declined."""
    files = _tree(tmp_path / "a")
    env = {**tls_env, "AWS_CA_BUNDLE": str(tls_server.cert_file)}
    r = run_cli(["upload", str(tmp_path / "a"), "s3://tls/bundle", "--endpoint-url", tls_server.https_url,
                 "--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB", "--json"], env)
    assert r.returncode == 0, r.stderr
    summary = summary_of(r.stdout)
    assert summary["uploaded"] == 2
    assert summary["requests"]["lean"] == 3 and summary["requests"]["declined"] == 0, summary["requests"]
    client = tls_server.client(endpoint_url=tls_server.https_url, verify=str(tls_server.cert_file))
    assert_landed(client, "tls", "bundle", files)


def test_profile_ca_bundle_is_trusted(tmp_path, tls_server, tls_env):
    files = _tree(tmp_path / "a")
    config = tmp_path / "aws-config"
    config.write_text(f"[profile corp]\nca_bundle = {tls_server.cert_file}\nregion = {tls_server.region}\n"
                      f"aws_access_key_id = {tls_server.access_key}\naws_secret_access_key = {tls_server.secret_key}\n")
    config.chmod(0o600)
    env = {k: v for k, v in tls_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env["AWS_CONFIG_FILE"] = str(config)
    r = run_cli(["upload", str(tmp_path / "a"), "s3://tls/profile", "--endpoint-url", tls_server.https_url,
                 "--profile", "corp", "--json"], env)
    assert r.returncode == 0, r.stderr
    assert summary_of(r.stdout)["requests"]["declined"] == 0
    client = tls_server.client(endpoint_url=tls_server.https_url, verify=str(tls_server.cert_file))
    assert_landed(client, "tls", "profile", files)
