#!/usr/bin/env python3
"""Client CPU per small file on mpupload's upload path, measured in one thread so nothing else is
counted: the worker's FileUploader runs over the files of SOURCE one after another (optionally under
cProfile). Needs AWS_* in the environment pointing at a server, e.g. from
`python -m mpupload.localserver DIR --env-file ENV --bucket B`.

    PYTHONPATH=. python bench/profile_small.py SOURCE s3://B/PREFIX [--limit 1000] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpupload.run.plan import task_for  # noqa: E402
from mpupload.s3.client import make_client, parse_s3_url  # noqa: E402
from mpupload.s3.transport import open_transport  # noqa: E402
from mpupload.settings.config import Settings  # noqa: E402
from mpupload.source.scan import FileEntry, scan  # noqa: E402
from mpupload.worker.fileupload import FileUploader  # noqa: E402
from mpupload.worker.process import ResultSender  # noqa: E402


class _Discard:
    def put(self, item) -> None: ...


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--profile", help="write cProfile stats here and print the top functions")
    p.add_argument("--no-fast-put", action="store_true", help="send every file through botocore")
    p.add_argument("--checksum", default="auto", help="transport checksum (auto: XXHASH128 where checked, else CRC32)")
    a = p.parse_args(argv)
    from concurrent.futures import ThreadPoolExecutor

    bucket, prefix = parse_s3_url(a.dest)
    s = Settings(source=a.source, bucket=bucket, prefix=prefix, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                 processes=0, threads=1, fast_put=not a.no_fast_put, checksum=a.checksum).validated()
    tasks = [task_for(e, prefix=prefix, year_pattern=None) for e in scan(a.source) if isinstance(e, FileEntry)]
    tasks = tasks[: a.limit]
    client = make_client(s)
    stop = threading.Event()
    transport = open_transport(client=client, settings=s, stop=stop)
    up = FileUploader(client=client, parts_pool=ThreadPoolExecutor(2), settings=s,
                      sender=ResultSender(_Discard(), 0), stop=stop, transport=transport)
    up.upload(tasks[0], 0)  # first request pays lazy setup (endpoint rules, connection): not per-file
    prof = cProfile.Profile() if a.profile else None
    c0, t0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    for t in tasks[1:]:
        r = up.upload(t, 0)
        if r.status != "uploaded":
            print(f"failed {t.rel}: {r.reason}", file=sys.stderr)
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    n = len(tasks) - 1
    print(f"{n} files: {1000 * cpu / n:.2f} ms CPU/file, {1000 * wall / n:.2f} ms wall/file (one thread); "
          f"transport {transport.take_counts()}, checksum {transport.checksum.algorithm}")
    if prof:
        prof.dump_stats(a.profile)
        pstats.Stats(a.profile).sort_stats("cumulative").print_stats(45)
    return 0


if __name__ == "__main__":
    sys.exit(main())
