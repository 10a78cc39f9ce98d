"""Docs that run: every ```bash / ```console block of README.md, in order, in one folder, against the real
server. ENDPOINT and BUCKET come from the fixtures (the README's walk-through keeps them when set), `mpupload`
is this checkout, and what a block exports is there for the next one, as in one terminal. A block preceded by
`<!-- readme-test: skip because ... -->` is not run (the reason stays visible in the README);
`<!-- readme-test: skip-if-unknown COMMAND -->` runs once `mpupload --help` lists COMMAND."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The README's opening lines set up and test the whole project: not run here (test.sh would run this test).
OPENING = ["./scripts/demo.sh", "./scripts/test.sh"]
_BLOCK = re.compile(r"(?:<!--\s*readme-test:\s*(?P<mark>[^>]*?)\s*-->\s*\n)?```(?:bash|console)\n(?P<body>.*?)^```",
                    re.S | re.M)
_BLOCK_SECONDS = 180


@dataclass
class Block:
    line: int
    body: str
    mark: str

    def skip_reason(self, known_commands: set[str]) -> str | None:
        if [ln.split("#")[0].strip() for ln in self.body.splitlines()] == OPENING:
            return "the project's own setup and test runner"
        if self.mark.startswith("skip because"):
            return self.mark
        if self.mark.startswith("skip-if-unknown"):
            command = self.mark.split()[-1]
            return None if command in known_commands else f"`mpupload {command}` does not exist yet"
        assert not self.mark, f"README line {self.line}: unknown readme-test mark {self.mark!r}"
        return None


def readme_blocks(text: str) -> list[Block]:
    return [Block(line=text.count("\n", 0, m.start("body")) + 1, body=m.group("body"), mark=m.group("mark") or "")
            for m in _BLOCK.finditer(text)]


def test_every_block_is_run_or_says_why_not():
    blocks = readme_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    assert blocks[0].body.splitlines()[0].startswith("./scripts/demo.sh")  # the opening, exactly as it was
    for b in blocks:
        if b.mark.startswith("skip because"):
            assert len(b.mark) > len("skip because") + 10, f"README line {b.line}: say why"


def _mpupload_on_path(folder: Path) -> Path:
    """`mpupload` as the README writes it: this checkout's, through the test's interpreter."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mpupload"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mpupload "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _commands(env: dict) -> set[str]:
    out = subprocess.run(["mpupload", "--help"], env=env, capture_output=True, text=True, timeout=60).stdout
    section = out.split("Commands:", 1)[-1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()}


def test_readme_commands_run(tmp_path, s3server, s3env, bucket):
    work = tmp_path / "work"
    work.mkdir()
    env = {**s3env, "ENDPOINT": s3server.endpoint_url, "BUCKET": bucket, "PYTHONPATH": str(REPO),
           "PATH": f"{_mpupload_on_path(tmp_path)}{os.pathsep}{s3env.get('PATH', '')}"}
    known = _commands(env)
    assert {"upload", "verify", "tune", "report", "config"} <= known
    exported = tmp_path / "env"
    ran = 0
    for block in readme_blocks((REPO / "README.md").read_text(encoding="utf-8")):
        if block.skip_reason(known):
            continue
        # -e: a failing line fails the block; the environment it leaves goes on to the next block.
        script = f"set -euo pipefail\n{block.body}\nenv -0 > {exported}\n"
        r = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                           timeout=_BLOCK_SECONDS)
        assert r.returncode == 0, f"README line {block.line}:\n{block.body}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr, f"README line {block.line}:\n{r.stderr}"
        print(f"--- README line {block.line}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")  # shown with -s or on failure
        env = dict(item.split("=", 1) for item in exported.read_text().split("\0") if "=" in item)
        ran += 1
    assert ran >= 8
    if "status" not in known:
        pytest.skip("ran every block but the status step (no `mpupload status` yet)")
