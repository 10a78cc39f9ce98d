"""The seed's V2 design, kept as the baseline: one process, 16 threads, boto3 `upload_file` per file
(with the xxh3-128 digest as metadata). It is what mpupload replaced; the bench reports ratios to it.

    python bench/seed_v2.py SOURCE s3://BUCKET/PREFIX [--endpoint-url URL] [--threads 16]
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import xxhash
from botocore.config import Config


def _files(root: str):
    for dirpath, _dirs, names in os.walk(root):
        for n in sorted(names):
            path = os.path.join(dirpath, n)
            yield path, os.path.relpath(path, root).replace(os.sep, "/")


def _digest(path: str) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * 1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--endpoint-url")
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args(argv)
    bucket, _, prefix = a.dest[5:].partition("/")
    client = boto3.client("s3", endpoint_url=a.endpoint_url,
                          config=Config(max_pool_connections=a.threads + 4, s3={"addressing_style": "path"},
                                        retries={"mode": "standard", "max_attempts": 10}))

    def one(item: tuple[str, str]) -> None:
        path, rel = item
        key = f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel
        client.upload_file(path, bucket, key, ExtraArgs={"Metadata": {"xxh3-128": _digest(path)}})

    failed = 0
    with ThreadPoolExecutor(max_workers=a.threads) as pool:
        for fut in [pool.submit(one, item) for item in _files(a.source)]:
            try:
                fut.result()
            except Exception as exc:  # count and go on: the bench checks what landed
                failed += 1
                print(f"failed: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
