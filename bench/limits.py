"""Measure --max-bandwidth / --max-requests-per-second where the server sees them: mpupload uploads SOURCE
through a relay (bench/relay.py, RTT added) that counts the bytes and PUT requests it forwards over time
(bench/meter.py); prints the busiest 10 s, the average and the per-second series.

    PYTHONPATH=. python bench/limits.py --bytes 20MB/s SOURCE --rtt-ms 40     # server: $AWS_ENDPOINT_URL
    PYTHONPATH=. python bench/limits.py --requests 100 SOURCE --rtt-ms 40
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.meter import Meter
from bench.relay import DelayRelay


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kind = ap.add_mutually_exclusive_group(required=True)
    kind.add_argument("--bytes", help="--max-bandwidth value, e.g. 20MB/s")
    kind.add_argument("--requests", help="--max-requests-per-second value, e.g. 100")
    ap.add_argument("source")
    ap.add_argument("--bucket", default="archive")
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("extra", nargs="*", help="more mpupload upload flags (after --)")
    a = ap.parse_args(argv)
    what, flag, value = ("bytes", "--max-bandwidth", a.bytes) if a.bytes else \
        ("requests", "--max-requests-per-second", a.requests)
    host, port = os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1].split(":")
    meter = Meter()
    with DelayRelay(upstream=(host, int(port)), rtt=a.rtt_ms / 1000, meter=meter) as relay:
        r = subprocess.run([sys.executable, "-m", "mpupload", "upload", a.source, f"s3://{a.bucket}/limits-{time.time():.0f}",
                            "--endpoint-url", relay.url, flag, value, "--json", *a.extra], capture_output=True, text=True)
    summary = next((json.loads(x) for x in r.stdout.splitlines() if '"summary"' in x), None)
    if summary is None:
        print(r.stderr[-3000:], file=sys.stderr)
        return 1
    avg, span = meter.average(what)
    series = meter.bytes if what == "bytes" else meter.requests
    lo = min(series)
    per_s: dict[int, float] = {}
    for slot, v in series.items():
        per_s[(slot - lo) // 10] = per_s.get((slot - lo) // 10, 0) + v
    scale = 1e6 if what == "bytes" else 1
    print(json.dumps({"limit": value, "what": what, "exit": r.returncode, "uploaded": summary["uploaded"],
                      "seconds": summary["seconds"], "limit_waits": summary.get("limit_waits"),
                      "busiest_10s": round(meter.busiest(what) / scale, 2), "average": round(avg / scale, 2),
                      "span_s": round(span, 1),
                      "per_second": [round(per_s.get(i, 0) / scale, 1) for i in range(max(per_s) + 1)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
