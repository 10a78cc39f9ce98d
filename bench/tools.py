"""The uploaders under test and how each is invoked. Every tool gets the same server, credentials (from
the environment, as a user would pass them) and concurrency class; each tool's command is built here and
nowhere else, so the comparison is visible in one place."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEER_WORKERS = 16  # the peers' concurrency flag: what the reference numbers were measured with


@dataclass(frozen=True)
class Target:
    """Where one run uploads to."""

    source: Path
    bucket: str
    prefix: str
    endpoint: str
    env: dict[str, str]  # server credentials + endpoint, on top of a clean environment


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Tool:
    name: str
    binary: str | None  # None: a Python module run by this interpreter
    build: Callable[[Target, str], Invocation] = field(repr=False)

    def path(self) -> str | None:
        """The executable, or None when it is not installed (the bench reports and skips it)."""
        if self.binary is None:
            return sys.executable
        beside = Path(sys.executable).parent / self.binary
        if beside.exists():
            return str(beside)
        return shutil.which(self.binary)


def clean_env(extra: dict[str, str], scratch: Path) -> dict[str, str]:
    """The caller's environment without AWS_*/RCLONE_* settings, plus the server's; config files point
    at nothing so a developer's ~/.aws or rclone.conf cannot change a result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(extra)
    env["AWS_CONFIG_FILE"] = str(scratch / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(scratch / "no-aws-credentials")
    env["AWS_REGION"] = extra.get("AWS_DEFAULT_REGION", "us-east-1")
    env["RCLONE_CONFIG"] = str(scratch / "rclone.conf")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _mpupload(flags: tuple[str, ...] = ()) -> Callable[[Target, str], Invocation]:
    def build(t: Target, exe: str) -> Invocation:
        argv = [exe, "-m", "mpupload", "upload", str(t.source), f"s3://{t.bucket}/{t.prefix}",
                "--endpoint-url", t.endpoint, *flags]
        return Invocation(argv, t.env)
    return build


def _s5cmd(flags: tuple[str, ...]) -> Callable[[Target, str], Invocation]:
    def build(t: Target, exe: str) -> Invocation:
        # The quoted wildcard is expanded by s5cmd itself (recursively), keeping relative paths.
        return Invocation([exe, "--endpoint-url", t.endpoint, *flags, "cp",
                           f"{t.source}/*", f"s3://{t.bucket}/{t.prefix}/"], t.env)
    return build


def _rclone(flags: tuple[str, ...]) -> Callable[[Target, str], Invocation]:
    def build(t: Target, exe: str) -> Invocation:
        env = dict(t.env)
        env.update({
            "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": t.endpoint,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": t.env["AWS_ACCESS_KEY_ID"],
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": t.env["AWS_SECRET_ACCESS_KEY"],
            "RCLONE_CONFIG_BENCH_REGION": t.env.get("AWS_DEFAULT_REGION", "us-east-1"),
        })
        return Invocation([exe, "copy", str(t.source), f"bench:{t.bucket}/{t.prefix}", *flags], env)
    return build


def _aws(s3_settings: dict[str, int] | None = None) -> Callable[[Target, str], Invocation]:
    """The AWS CLI; its concurrency is set only in a config file, so a tuned run gets its own file in
    the run's scratch folder (beside the empty one clean_env points at), never ~/.aws."""
    def build(t: Target, exe: str) -> Invocation:
        env = dict(t.env)
        if s3_settings:
            path = Path(env["AWS_CONFIG_FILE"]).parent / "aws-tuned.config"
            lines = ["[default]", "s3 ="] + [f"  {k} = {v}" for k, v in s3_settings.items()]
            path.write_text("\n".join(lines) + "\n")
            env["AWS_CONFIG_FILE"] = str(path)
        return Invocation([exe, "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url", t.endpoint,
                           str(t.source), f"s3://{t.bucket}/{t.prefix}/"], env)
    return build


def _seed_v2(t: Target, exe: str) -> Invocation:
    return Invocation([exe, str(BENCH / "seed_v2.py"), str(t.source), f"s3://{t.bucket}/{t.prefix}",
                       "--endpoint-url", t.endpoint], t.env)


_PEER = ("--numworkers", str(PEER_WORKERS))
TUNED_WORKERS = 64  # the peers tuned for a long link: enough requests in flight to cover 100 ms

TOOLS: dict[str, Tool] = {
    "mpupload": Tool("mpupload", None, _mpupload()),
    # Plain "s5cmd" and "rclone" run with PEER_WORKERS (what the loopback comparisons always used);
    # "-default" is the tool exactly as installed, "-tuned" with TUNED_WORKERS. "aws" has no flag for
    # it: plain "aws" is its defaults (10 requests in flight).
    "s5cmd": Tool("s5cmd", "s5cmd", _s5cmd(_PEER)),
    "s5cmd-default": Tool("s5cmd-default", "s5cmd", _s5cmd(())),  # 256 workers
    "rclone": Tool("rclone", "rclone", _rclone(("--transfers", str(PEER_WORKERS)))),
    "rclone-default": Tool("rclone-default", "rclone", _rclone(())),  # 4 transfers, 8 checkers
    "rclone-tuned": Tool("rclone-tuned", "rclone", _rclone(("--transfers", str(TUNED_WORKERS),
                                                            "--checkers", str(TUNED_WORKERS)))),
    "aws": Tool("aws", "aws", _aws()),
    "aws-tuned": Tool("aws-tuned", "aws", _aws({"max_concurrent_requests": TUNED_WORKERS,
                                                 "max_queue_size": 10 * TUNED_WORKERS})),
    "seed_v2": Tool("seed_v2", None, _seed_v2),
    # Not in the default comparison: the A/B of the lean PUT (every request through botocore instead).
    "mpupload-botocore": Tool("mpupload-botocore", None, _mpupload(("--no-fast-put",))),
}
DEFAULT_TOOLS = ("mpupload", "s5cmd", "rclone", "aws", "seed_v2")
# Over a delayed link every tool as its users get it, and the peers tuned as a careful user would.
WAN_TOOLS = ("mpupload", "s5cmd-default", "rclone-default", "rclone-tuned", "aws", "aws-tuned")


def mpupload_variant(*, processes: int, threads: int, chunksize_mib: int | None = None) -> Tool:
    """mpupload with explicit settings, for the matrix sweep."""
    flags = ["--processes", str(processes), "--threads", str(threads)]
    name = f"mpupload p{processes}t{threads}"
    if chunksize_mib:
        flags += ["--multipart-chunksize", f"{chunksize_mib}MiB"]
        name += f"c{chunksize_mib}"
    return Tool(name, None, _mpupload(tuple(flags)))
