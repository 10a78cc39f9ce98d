"""S3's 2 KB of user metadata and 1,024-byte keys, held on every request whatever server is behind it: the
proxy records the x-amz-meta-* headers of every PutObject and CreateMultipartUpload of a real run (SeaweedFS
accepts more, AWS refuses it with 400 MetadataTooLarge), on a tree with a 700-byte CJK path."""

from __future__ import annotations

import json
import threading

from helpers import assert_landed, json_events, run_cli, summary_of

from mpupload.core.s3limits import MAX_METADATA_BYTES, decode_source_path

from .hostile import long_key_file
from .proxy import FaultProxy

MIB = 1024 * 1024
# 700 bytes of UTF-8 in three folders (a name holds at most 255 bytes): 3 x 77 CJK characters + "/".
CJK_DIRS = "/".join(["\u65e5\u672c\u8a9e" * 25 + "\u6587\u66f8"] * 3) + "-scan"


class MetadataRecorder:
    """Every PUT / POST head the proxy sees: the x-amz-meta-* bytes (names without the prefix, as S3 counts)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sizes: list[tuple[str, int]] = []

    def __call__(self, head) -> bool:
        if head.method in ("PUT", "POST"):
            # Header values arrive as latin-1 text: one character per byte on the wire.
            n = sum(len(name) - len("x-amz-meta-") + len(value) for name, value in head.headers.items()
                    if name.startswith("x-amz-meta-"))
            with self.lock:
                self.sizes.append((head.start_line, n))
        return False  # refuse nothing: record only


def test_metadata_within_2kb_on_every_request_and_long_key_fails(tmp_path, s3server, s3client, s3env, bucket, prefix):
    assert len(CJK_DIRS.encode()) == 700
    src = tmp_path / "src"
    files = {f"1930/{CJK_DIRS}/page.jp2": b"p" * 3000, f"1930/{CJK_DIRS}/big.bin": b"b" * (11 * MIB + 5),
             "1930/plain.jp2": b"plain", "1930/big-plain.bin": b"q" * (6 * MIB)}
    good = {}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        good[rel] = src / rel
    too_long = long_key_file(src)  # over 1,024 bytes: fails at planning, nothing sent
    recorder = MetadataRecorder()
    proxy = FaultProxy(s3server.endpoint_url, refuse=recorder).start()
    log = tmp_path / "run.jsonl"
    try:
        r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url, "--json",
                     "--multipart-threshold", "5MB", "--multipart-chunksize", "5MB", "--processes", "1",
                     "--log-file", str(log)], s3env, timeout=120)
    finally:
        proxy.stop()
    assert r.returncode == 1, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"]) == (len(good), 1)
    [failed] = [e for e in json_events(r.stdout) if e.get("event") == "failed"]
    assert failed["path"] == too_long and "S3 allows at most 1024" in failed["reason"]
    assert_landed(s3client, bucket, prefix, good)

    # Every object-creating request, small PUT or CreateMultipartUpload, held to S3's rule.
    creating = [(line, n) for line, n in recorder.sizes if "uploadId=" not in line and "partNumber=" not in line]
    assert len(creating) >= len(good), recorder.sizes
    assert max(n for _, n in creating) <= MAX_METADATA_BYTES, creating
    assert not any(too_long.split("/")[0][:50] in line for line, _ in recorder.sizes)  # never sent

    # The long CJK paths went as RFC 2047 words (percent-encoded they take 2,100 bytes); the path is intact.
    for rel in files:
        meta = s3client.head_object(Bucket=bucket, Key=f"{prefix}/{rel}")["Metadata"]
        assert decode_source_path(meta["source-path"]) == rel.encode()
        assert meta["source-path"].startswith("=?UTF-8?B?") == (CJK_DIRS in rel)
    lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    forms = {x["relpath"]: x["source_path"] for x in lines if x["event"] == "file" and x["status"] == "uploaded"}
    assert forms == {rel: "rfc2047" if CJK_DIRS in rel else "percent-encoded" for rel in files}
    warnings = [e for e in json_events(r.stdout) if e.get("event") == "warning" and "source-path" in e["message"]]
    assert len(warnings) == 1  # once per run, however many files
