import pytest

from mpupload.core.units import parse_rate, parse_size
from mpupload.s3.clientconfig import botocore_config, transfer_config
from mpupload.settings.config import (
    MIB,
    Settings,
    SettingsError,
    part_size_for,
)


@pytest.mark.parametrize("text, n", [
    ("8MiB", 8 * MIB), ("8mib", 8 * MIB), ("1024", 1024), ("1.5GiB", 3 * 512 * MIB),
    ("5 MiB", 5 * MIB), ("2KiB", 2048), (4096, 4096),
    # As the AWS CLI reads ~/.aws/config (multipart_chunksize = 8MB is 8 MiB): every unit is 1024-based.
    ("64MB", 64 * MIB), ("8mb", 8 * MIB), ("10k", 10_240), ("10KB", 10_240), ("1GB", 1024**3), ("1TB", 1024**4),
    ("5M", 5 * MIB), ("50000000", 50_000_000),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "MiB", "8XB", "-1", "eight", "1e6"])
def test_parse_size_rejects(bad):
    with pytest.raises(SettingsError):
        parse_size(bad)


@pytest.mark.parametrize("kw, msg", [
    ({"threads": 0}, "--threads"),
    ({"processes": -1}, "--processes"),
    ({"multipart_chunksize": 4 * MIB}, "at least"),
    ({"multipart_chunksize": 6 * 1024**3}, "at most"),
    ({"read_timeout": 0}, "timeouts"),
    ({"retry_mode": "legacy"}, "legacy"),
    ({"year_pattern": "(\\d{4}"}, "not a valid regex"),
    ({"year_pattern": "\\d{4}"}, "capturing group"),
    ({"checksum": "MD5"}, "--checksum"),
])
def test_validation_rejects(kw, msg):
    with pytest.raises(SettingsError, match=msg):
        Settings(**kw).validated()


def test_pool_never_smaller_than_threads():
    s = Settings(threads=64, max_pool_connections=10).validated()
    assert s.max_pool_connections >= 64
    assert botocore_config(s).max_pool_connections >= 64


def test_built_configs_carry_the_settings():
    s = Settings(read_timeout=7, connect_timeout=3, retries=4, retry_mode="adaptive", threads=5,
                 multipart_threshold=6 * MIB, multipart_chunksize=7 * MIB).validated()
    bc = botocore_config(s)
    assert (bc.read_timeout, bc.connect_timeout) == (7, 3)
    assert bc.retries == {"mode": "adaptive", "total_max_attempts": 4}
    tc = transfer_config(s)
    assert (tc.multipart_threshold, tc.multipart_chunksize, tc.max_request_concurrency) == (6 * MIB, 7 * MIB, 5)


def test_part_size_grows_to_fit_10000_parts():
    assert part_size_for(100 * MIB, 8 * MIB) == 8 * MIB
    big = 200 * 1024**3  # 200 GiB at 8 MiB parts would need 25,600 parts
    p = part_size_for(big, 8 * MIB)
    assert -(-big // p) <= 10_000 and p > 8 * MIB


def test_default_processes_from_cpu_count():
    assert Settings().effective_processes >= 2
    assert Settings(processes=0).effective_processes == 1


@pytest.mark.parametrize("text, n", [("50MB/s", 50 * MIB), ("50MiB/s", 50 * MIB), ("50000000", 50_000_000),
                                     ("20 mb/S", 20 * MIB), ("", None), (None, None)])
def test_parse_rate_reads_mb_as_the_aws_cli(text, n):
    assert parse_rate(text) == n
