"""Proving against sending: the wall time of `mpupload verify` next to the upload it checks, over a real link
(bench/relay.py adds a fixed round trip), so a migration's proof costs no more than making it.

    PYTHONPATH=. python bench/verify_pace.py --files 6000 --rtt 0.040 --rounds 3 --out bench/results/verify-pace

Each round uploads the tree to a fresh prefix, then verifies it (metadata mode: a HEAD per object), both with
mpupload's defaults, both through the same relay. The verdict is the median over rounds of verify / upload.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.relay import DelayRelay  # noqa: E402
from bench.rerun import make_tree  # noqa: E402
from mpupload import localserver  # noqa: E402


def _timed(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mpupload", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mpupload {' '.join(args[:1])} exited {done.returncode}: {done.stderr[-1500:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6000)
    parser.add_argument("--rtt", type=float, default=0.040, help="round trip the relay adds, seconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "mpupload-verify-pace")
    parser.add_argument("--out", type=Path, default=None)
    a = parser.parse_args()
    make_tree(a.data / "src", a.files)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = localserver.start(Path(tmp) / "s3")
        try:
            server.client().create_bucket(Bucket="verify-pace")
            host, port = server.endpoint_url.split("://", 1)[1].split(":")
            env = {**os.environ, **server.env(), "XDG_STATE_HOME": str(Path(tmp) / "state")}
            with DelayRelay(upstream=(host, int(port)), rtt=a.rtt) as relay:
                for i in range(a.rounds):
                    dest = [str(a.data / "src"), f"s3://verify-pace/round{i}", "--endpoint-url", relay.url]
                    up = _timed(["upload", *dest, "--quiet"], env)
                    check = _timed(["verify", *dest], env)
                    rows.append({"round": i, "upload_s": round(up, 2), "verify_s": round(check, 2),
                                 "ratio": round(check / up, 3)})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            server.stop()
    verdict = {"files": a.files, "rtt_ms": a.rtt * 1000, "rounds": rows,
               "median_ratio": statistics.median(r["ratio"] for r in rows),
               "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {platform.platform()}",
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps({k: v for k, v in verdict.items() if k != "rounds"}))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "results.json").write_text(json.dumps(verdict, indent=1) + "\n")


if __name__ == "__main__":
    main()
