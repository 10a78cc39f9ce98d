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


def _s5cmd(t: Target, exe: str) -> Invocation:
    # The quoted wildcard is expanded by s5cmd itself (recursively), keeping relative paths.
    return Invocation([exe, "--endpoint-url", t.endpoint, "--numworkers", str(PEER_WORKERS), "cp",
                       f"{t.source}/*", f"s3://{t.bucket}/{t.prefix}/"], t.env)


def _rclone(t: Target, exe: str) -> Invocation:
    env = dict(t.env)
    env.update({
        "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": t.endpoint,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": t.env["AWS_ACCESS_KEY_ID"],
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": t.env["AWS_SECRET_ACCESS_KEY"],
        "RCLONE_CONFIG_BENCH_REGION": t.env.get("AWS_DEFAULT_REGION", "us-east-1"),
    })
    return Invocation([exe, "copy", str(t.source), f"bench:{t.bucket}/{t.prefix}",
                       "--transfers", str(PEER_WORKERS)], env)


def _aws(t: Target, exe: str) -> Invocation:
    return Invocation([exe, "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url", t.endpoint,
                       str(t.source), f"s3://{t.bucket}/{t.prefix}/"], t.env)


def _seed_v2(t: Target, exe: str) -> Invocation:
    return Invocation([exe, str(BENCH / "seed_v2.py"), str(t.source), f"s3://{t.bucket}/{t.prefix}",
                       "--endpoint-url", t.endpoint], t.env)


TOOLS: dict[str, Tool] = {
    "mpupload": Tool("mpupload", None, _mpupload()),
    "s5cmd": Tool("s5cmd", "s5cmd", _s5cmd),
    "rclone": Tool("rclone", "rclone", _rclone),
    "aws": Tool("aws", "aws", _aws),
    "seed_v2": Tool("seed_v2", None, _seed_v2),
    # Not in the default comparison: the A/B of the lean PUT (every request through botocore instead).
    "mpupload-botocore": Tool("mpupload-botocore", None, _mpupload(("--no-fast-put",))),
}
DEFAULT_TOOLS = ("mpupload", "s5cmd", "rclone", "aws", "seed_v2")


def mpupload_variant(*, processes: int, threads: int, chunksize_mib: int | None = None) -> Tool:
    """mpupload with explicit settings, for the matrix sweep."""
    flags = ["--processes", str(processes), "--threads", str(threads)]
    name = f"mpupload p{processes}t{threads}"
    if chunksize_mib:
        flags += ["--multipart-chunksize", f"{chunksize_mib}MiB"]
        name += f"c{chunksize_mib}"
    return Tool(name, None, _mpupload(tuple(flags)))
