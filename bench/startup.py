#!/usr/bin/env python3
"""Start-up cost: a one-file upload, end to end, next to a bare `import boto3; boto3.client('s3')`.

    PYTHONPATH=. python bench/startup.py --runs 9 --out bench/results/startup

The goal (issue 8): one file uploads in no more than 1.2x the time the bare boto3 client takes on the
same machine in the same minute. Each round runs every variant once, in a rotating order, so both sides
see the same load; the verdict is the median over rounds of the within-round ratio (a busy, shared
2-core machine makes single times meaningless). Wall time is measured around the process; CPU is
user+sys of the whole process tree from wait4 (the kernel adds every reaped descendant to its parent).
Every mpupload run goes to a fresh prefix with a fresh state folder (no journal, empty destination),
and counts only if it exits 0 and the object landed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpupload import localserver  # noqa: E402

BUCKET = "startup"
BASELINE = "boto3 client"
FILE_BYTES = 100_000


@dataclass(frozen=True)
class Variant:
    name: str
    argv: tuple[str, ...]  # {src}, {dest} and {endpoint} are filled in per run
    uploads: bool


def _mpupload_exe() -> list[str]:
    # The console script a user runs, when installed beside this interpreter.
    script = Path(sys.executable).parent / "mpupload"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mpupload"]


def variants(extra: list[list[str]]) -> list[Variant]:
    upload = [*_mpupload_exe(), "upload", "{src}", "{dest}", "--endpoint-url", "{endpoint}"]
    out = [
        Variant("python", (sys.executable, "-c", "pass"), False),
        Variant(BASELINE, (sys.executable, "-c", "import boto3; boto3.client('s3')"), False),
        Variant("mpupload", tuple(upload), True),
    ]
    out += [Variant("mpupload " + " ".join(flags), (*upload, *flags), True) for flags in extra]
    return out


def run_once(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """(exit code, wall s, CPU s of the process tree, stderr tail)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        err.seek(0)
        tail = err.read()[-600:].decode(errors="replace")
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, tail


def _env(server: localserver.LocalS3, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.env())
    env["AWS_CONFIG_FILE"] = str(scratch / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(scratch / "no-aws-credentials")
    return env


def measure(*, runs: int, extra: list[list[str]], scratch: Path, echo) -> tuple[list[dict], dict]:
    # As installed from a wheel: byte-compiled (an editable install is not, and PYTHONDONTWRITEBYTECODE
    # would make every run compile mpupload's modules again, ~30 ms each).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "mpupload")], check=True,
                   stdout=subprocess.DEVNULL)
    server = localserver.start(scratch / "s3")
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        src = scratch / "one"
        src.mkdir()
        (src / "page.jp2").write_bytes(secrets.token_bytes(FILE_BYTES))
        base_env = _env(server, scratch)
        vs = variants(extra)
        records: list[dict] = []
        load_before = os.getloadavg()[0]
        # One unmeasured round: the first run after a server start, and cold page caches, are slower.
        for rnd in range(-1, runs):
            order = vs[rnd % len(vs):] + vs[:rnd % len(vs)] if rnd >= 0 else vs
            for pos, v in enumerate(order):
                prefix = f"r{rnd}-{secrets.token_hex(3)}"
                env = {**base_env, "XDG_STATE_HOME": str(scratch / "state" / prefix)}
                argv = [a.format(src=src, dest=f"s3://{BUCKET}/{prefix}", endpoint=server.endpoint_url)
                        for a in v.argv]
                code, wall, cpu, tail = run_once(argv, env)
                ok = code == 0
                if ok and v.uploads:
                    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("KeyCount", 0)
                    ok = listed == 1
                if rnd < 0:
                    continue
                records.append({"round": rnd, "order": pos, "variant": v.name, "ok": ok, "exit": code,
                                "wall_s": wall, "cpu_s": cpu, "error": "" if ok else tail})
                echo(f"round {rnd} {v.name:<28} {'ok ' if ok else 'BAD'} wall {wall:.3f} s  cpu {cpu:.3f} s")
        info = {"command": shlex.join(["python", "bench/startup.py", *sys.argv[1:]]),
                "argv": {v.name: list(v.argv) for v in vs}, "runs": runs, "file_bytes": FILE_BYTES,
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                "python": platform.python_version(), "platform": platform.platform(terse=True),
                # Other work on the machine stretches wall times: ratios within a round are what compare.
                "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
        return records, info
    finally:
        server.stop()


def summarize(records: list[dict]) -> list[dict]:
    """Medians per variant and the paired ratios to the bare boto3 client (median over rounds of the
    ratio within a round)."""
    names = list(dict.fromkeys(r["variant"] for r in records))
    base = {r["round"]: r for r in records if r["variant"] == BASELINE and r["ok"]}
    rows = []
    for name in names:
        ok = [r for r in records if r["variant"] == name and r["ok"]]
        row = {"variant": name, "runs": sum(r["variant"] == name for r in records), "ok_runs": len(ok)}
        for m in ("wall_s", "cpu_s"):
            vals = [r[m] for r in ok]
            row[m] = statistics.median(vals) if vals else None
            row[m + "_min"] = min(vals) if vals else None
            paired = [r[m] / base[r["round"]][m] for r in ok if r["round"] in base and base[r["round"]][m]]
            row[m + "_x_boto3"] = statistics.median(paired) if paired else None
        rows.append(row)
    return rows


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def write(out: Path, records: list[dict], rows: list[dict], info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"info": info, "summary": rows, "runs": records}, indent=1) + "\n")
    lines = [
        "# Start-up: one-file upload vs a bare boto3 client",
        "",
        f"Command: `{info['command']}`  ",
        f"{info['when']}, {info['cpus']} CPUs (load average {info['load_average'][0]} before, "
        f"{info['load_average'][1]} after), {info['platform']}, Python {info['python']}; one file of "
        f"{info['file_bytes']:,} bytes to a local SeaweedFS (fresh prefix and state folder per run); "
        f"{info['runs']} rounds, variants interleaved in a rotating order. 'x boto3' = median over rounds of the "
        "ratio to the bare boto3 client in the same round. CPU = user+sys of the whole process tree. mpupload's "
        "modules are byte-compiled before the first round, as a wheel install leaves them.",
        "",
        "| variant | ok/runs | wall s (median) | wall s (min) | wall x boto3 | CPU s (median) | CPU s (min) | CPU x boto3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['ok_runs']}/{r['runs']} | {_fmt(r['wall_s'], '.3f')} | "
                     f"{_fmt(r['wall_s_min'], '.3f')} | {_fmt(r['wall_s_x_boto3'], '.2f')} | {_fmt(r['cpu_s'], '.3f')} | "
                     f"{_fmt(r['cpu_s_min'], '.3f')} | {_fmt(r['cpu_s_x_boto3'], '.2f')} |")
    lines += ["", "Commands (`{src}` a folder with one file, `{dest}` a fresh s3://startup/PREFIX):", ""]
    lines += [f"- {name}: `{shlex.join(argv)}`" for name, argv in info["argv"].items()]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="measured rounds (each runs every variant once)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup")
    parser.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                        help="also time mpupload with these extra flags, e.g. --variant='-p 1' (repeatable)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mpupload-startup-") as tmp:
        records, info = measure(runs=args.runs, extra=[shlex.split(v) for v in args.variant], scratch=Path(tmp),
                                echo=lambda m: print(m, file=sys.stderr, flush=True))
    rows = summarize(records)
    write(args.out, records, rows, info)
    print((args.out / "results.md").read_text())
    return 0 if all(r["ok_runs"] == r["runs"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
