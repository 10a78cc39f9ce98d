"""One journal resolver: `config show` and `status` name the journal a sharded run used (`--shard 2/4` gives a
run its own journal; both commands once computed the unsharded one)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli


def test_config_show_and_status_name_the_sharded_runs_journal(s3server, s3env, bucket, prefix, tmp_path):
    src = tmp_path / "src"
    for i in range(24):  # enough names that the 2nd of 4 shares holds some
        (src / "1950").mkdir(parents=True, exist_ok=True)
        (src / "1950" / f"page-{i:03d}.txt").write_text(f"page {i}")
    dest = f"s3://{bucket}/{prefix}"
    common = ["--endpoint-url", s3server.endpoint_url]
    up = run_cli(["upload", str(src), dest, *common, "--shard", "2/4", "--quiet"], s3env)
    assert up.returncode == 0, up.stderr
    journals = sorted((Path(s3env["XDG_STATE_HOME"]) / "mpupload" / "journals").glob("*.sqlite"))
    assert len(journals) == 1, journals
    used = str(journals[0])

    show = run_cli(["config", "show", str(src), dest, *common, "--shard", "2/4", "--json"], s3env)
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["settings"]["journal"]["value"] == used

    status = run_cli(["status", str(src), dest, *common, "--shard", "2/4", "--json"], s3env)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["journal"] == used and doc["running"] is False

    # Another shard of the same migration has its own journal, which no run has used yet.
    other = run_cli(["status", str(src), dest, *common, "--shard", "3/4", "--json"], s3env)
    assert other.returncode == 2 and "no journal" in other.stderr
