"""What the settings make of botocore and s3transfer: the client's Config (timeouts, pool, retries, checksum
policy, addressing, payload signing) and the TransferConfig of `verify --deep`."""

from __future__ import annotations

from mpupload.settings.config import KIB, Settings


def sign_payload(s: Settings) -> bool | None:
    """Whether SigV4 hashes each body (x-amz-content-sha256). With a transport checksum in a signed header
    that the server verifies, the bytes are already checked end to end, so no: the SHA-256 cost ~300 us per
    256 KiB here, a sixth of a small file's client CPU (bench/results/wan). That is botocore's own
    s3.payload_signing_enabled=False, which it applies by itself over TLS; over plain http (a local or
    private endpoint) we ask for it too. Without a checksum (--checksum none): botocore's default."""
    return False if s.checksum.lower() != "none" else None


def botocore_config(s: Settings):
    """The botocore Config: timeouts, pool size, retry mode, checksum policy, TLS."""
    from botocore.config import Config

    return Config(
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        max_pool_connections=s.max_pool_connections,
        retries={"mode": s.retry_mode, "total_max_attempts": s.retries},
        tcp_keepalive=True,
        # Our own code builds every request; botocore re-checking each parameter costs CPU per file.
        parameter_validation=False,
        # We choose the checksum ourselves (see `checksum`), sent as a header: S3-compatible servers that
        # choke on aws-chunked trailers still work, and AWS verifies it all the same.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Path style with an explicit endpoint: S3-compatible servers on localhost or an IP address rarely
        # serve BUCKET.HOST names.
        s3={"addressing_style": s.addressing_style or ("path" if s.endpoint_url else "auto"),
            "payload_signing_enabled": sign_payload(s)},
        user_agent_appid="mpupload",
    )


def transfer_config(s: Settings):
    """The s3transfer TransferConfig of `verify --deep` (its ranged GETs, one manager per verifying process).
    Uploads do not use s3transfer: their parts go through mpupload's own transport (s3/multipart.py), which
    can resume an upload after a crash and reads each part once."""
    from s3transfer.manager import TransferConfig

    return TransferConfig(
        multipart_threshold=s.multipart_threshold,
        multipart_chunksize=s.multipart_chunksize,
        max_request_concurrency=s.threads,
        # Bounds chunks read ahead of the network: memory per process ~ threads x chunksize.
        max_in_memory_upload_chunks=s.threads,
        max_submission_concurrency=max(2, s.threads // 4),
        io_chunksize=256 * KIB,
    )
