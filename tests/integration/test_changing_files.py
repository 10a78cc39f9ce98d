"""A file that changes while it is being uploaded is never recorded with a stale digest: it is sent again
(bounded attempts) or reported failed. The real client, server and transport as a worker opens it
(open_transport: the lean PUT every small file and every part takes, botocore for the rest); the other
writer appends to the file just before a request goes out (wrapping the lean PUT, or a botocore hook for
CompleteMultipartUpload, which is always botocore's)."""

from __future__ import annotations

import threading

import xxhash
from helpers import MIB

from mpupload.core.messages import FAILED, UPLOADED, FileTask
from mpupload.s3.client import make_client
from mpupload.s3.transport import open_transport
from mpupload.settings.config import Settings
from mpupload.worker.fileupload import FileUploader
from mpupload.worker.results import ResultSender


class _Sink:
    def __init__(self):
        self.items = []

    def put(self, item):
        self.items.append(item)


def _counts(transport) -> dict[str, int]:
    """The transport's counters by name ("lean", "declined.refused", ...) since the last call."""
    return {f"{kind}.{detail}" if detail else kind: n for kind, detail, n in transport.take_counts()}


def _uploader(s3server, bucket, **kw):
    settings = Settings(endpoint_url=s3server.endpoint_url, bucket=bucket, backoff_base=0.01, backoff_cap=0.05,
                        region=s3server.region, **kw).validated()
    client = make_client(settings)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(2)
    stop = threading.Event()
    transport = open_transport(client=client, settings=settings, stop=stop)
    assert transport.lean is not None, _counts(transport)  # the path a worker's PUTs take
    up = FileUploader(client=client, parts_pool=pool, settings=settings, sender=ResultSender(_Sink(), 1),
                      stop=stop, transport=transport)
    return up, client


def _task(path, key):
    st = path.stat()
    return FileTask(path=str(path), rel=path.name, key=key, size=st.st_size, mtime_ns=st.st_mtime_ns,
                    inode=st.st_ino, partition="1999")


def _append_before_lean_put(up: FileUploader, path, times: int) -> dict[str, int]:
    """The other writer: appends to the file just before the lean PUT sends it (the body is already read)."""
    calls = {"n": 0}
    lean = up.transport.lean
    real_put = lean.put

    def put(**kw):
        if calls["n"] < times:
            calls["n"] += 1
            with open(path, "ab") as f:
                f.write(b"+more")
        return real_put(**kw)

    lean.put = put
    return calls


def _append_during(client, operation: str, path, times: int):
    calls = {"n": 0}

    def grow(request=None, **_):
        # Only the file's own requests: the transport's FULL_OBJECT probe completes an upload of its own.
        if request is not None and path.name not in request.url:
            return
        if calls["n"] < times:
            calls["n"] += 1
            with open(path, "ab") as f:
                f.write(b"+more")

    client.meta.events.register(f"before-send.s3.{operation}", grow)
    return calls


def test_file_changed_during_put_is_sent_again_with_its_new_digest(tmp_path, s3server, s3client, s3env,
                                                                    bucket, prefix, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3server.secret_key)
    path = tmp_path / "page.jp2"
    path.write_bytes(b"first version")
    up, _client = _uploader(s3server, bucket)
    calls = _append_before_lean_put(up, path, times=1)
    r = up.upload(_task(path, f"{prefix}/page.jp2"), 1)
    assert calls["n"] == 1 and r.status == UPLOADED and r.attempts == 2
    # Both tries went lean, none through botocore: the lean path is what was proven here.
    counts = _counts(up.transport)
    assert (counts.get("lean"), counts.get("botocore", 0)) == (2, 0), counts
    obj = s3client.get_object(Bucket=bucket, Key=f"{prefix}/page.jp2")
    body = obj["Body"].read()
    assert body == path.read_bytes() == b"first version+more"
    assert obj["Metadata"]["xxh3-128"] == xxhash.xxh3_128_hexdigest(body) == r.digest


def test_file_that_never_stops_changing_fails_with_the_reason(tmp_path, s3server, bucket, prefix, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3server.secret_key)
    path = tmp_path / "live.log"
    path.write_bytes(b"x" * (6 * MIB))
    up, client = _uploader(s3server, bucket, file_attempts=3, multipart_threshold=5 * MIB)
    calls = _append_during(client, "CompleteMultipartUpload", path, times=99)
    r = up.upload(_task(path, f"{prefix}/live.log"), 1)
    assert r.status == FAILED and r.attempts == 3, (r.attempts, r.reason)
    assert "changed" in r.reason
    assert calls["n"] == 3  # each try got as far as completing, and each found the file changed
    counts = _counts(up.transport)
    assert counts.get("lean", 0) >= 3 and counts.get("botocore", 0) == 0, counts  # parts went lean
