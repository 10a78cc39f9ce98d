"""Exit 0 means every file under SOURCE landed. A folder that cannot be read fails the run (exit 1) naming
it; a name that is not valid UTF-8 lands under a reversible key, round-trips byte for byte, `verify` agrees,
and a rerun uploads nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import json_events, list_keys, run_cli, summary_of

from mpupload.core.keys import name_bytes
from mpupload.core.s3limits import decode_source_path

# Root reads any folder whatever its mode (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as in CI. Dropping those
# two capabilities from the CLI's process (it stays uid 0, so every other file stays readable) makes a mode
# 000 folder unreadable for it, as for any other user; a user that is not root needs nothing.
_SETPRIV = shutil.which("setpriv")
_DROP = "-dac_override,-dac_read_search"


def _as_reader(args: list[str], env: dict, *, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI, as a process for which mode bits hold."""
    if os.geteuid() != 0:
        return run_cli(args, env, timeout=timeout)
    cmd = [_SETPRIV, f"--bounding-set={_DROP}", f"--inh-caps={_DROP}", sys.executable, "-m", "mpupload", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _bytes_file(folder, name: bytes, data: bytes) -> None:
    fd = os.open(os.fsencode(folder) + b"/" + name, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    os.close(fd)


# Undecodable bytes beside names that sort around their escapes ("%" 0x25, "~" 0x7E, "z"), so a wrong walk
# order would show as verify's missing / extra.
BAD_NAMES = {b"bad-\xff\xfe-name.jp2": b"latin-1 name", b"caf\xe9 100%.txt": b"percent too",
             b"bad-%41.jp2": b"a valid name with an escape in it", b"bad-~.jp2": b"tilde", b"badz.jp2": b"z"}


@pytest.mark.skipif(os.geteuid() == 0 and _SETPRIV is None, reason="running as root without setpriv: no way to "
                    "make a folder unreadable for the CLI (root ignores mode bits)")
def test_unreadable_folder_fails_the_run_and_names_it(tmp_path, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    (src / "1950" / "locked").mkdir(parents=True)
    (src / "1950" / "a.jp2").write_bytes(b"a" * 100)
    (src / "1950" / "locked" / "secret.jp2").write_bytes(b"secret")
    (src / "1950" / "locked").chmod(0)
    log = tmp_path / "run.jsonl"
    try:
        r = _as_reader(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", _endpoint(s3env), "--json",
                        "--log-file", str(log)], s3env)
    finally:
        (src / "1950" / "locked").chmod(0o755)
    assert r.returncode == 1, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (1, 1, 0)
    [failed] = [e for e in json_events(r.stdout) if e.get("event") == "failed"]
    assert failed["path"] == "1950/locked" and "folder unreadable" in failed["reason"] \
        and "Permission denied" in failed["reason"]
    assert list(list_keys(s3client, bucket, prefix)) == [f"{prefix}/1950/a.jp2"]
    logged = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    assert [(x["relpath"], x["status"]) for x in logged if x["event"] == "file" and x["status"] != "uploaded"] \
        == [("1950/locked", "failed")]
    assert logged[-1]["exit_code"] == 1
    # Readable again: the rerun uploads what was left behind, and only that.
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", _endpoint(s3env), "--json"], s3env)
    assert r.returncode == 0 and summary_of(r.stdout)["uploaded"] == 1, r.stdout + r.stderr


def _endpoint(env: dict) -> str:
    return env["MPUPLOAD_TEST_ENDPOINT"]


@pytest.fixture
def s3env(s3env, s3server):
    return {**s3env, "MPUPLOAD_TEST_ENDPOINT": s3server.endpoint_url}


def test_names_not_utf8_land_round_trip_verify_and_rerun_nothing(tmp_path, s3client, s3env, bucket, prefix):
    src = tmp_path / "src"
    (src / "1960").mkdir(parents=True)
    for name, data in BAD_NAMES.items():
        _bytes_file(src / "1960", name, data)
    bad_dir = os.fsencode(src / "1960") + b"/dir-\xe6\x97"  # a folder name cut in the middle of a character
    os.mkdir(bad_dir)
    _bytes_file(os.fsdecode(bad_dir), b"inside.txt", b"in a folder whose name is not UTF-8")
    originals = {f"1960/{n.decode('latin-1')}": n for n in BAD_NAMES}  # just for counting
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", _endpoint(s3env), "--json"]
    r = run_cli(args, s3env)
    assert r.returncode == 0, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["skipped"], s["failed"]) == (len(originals) + 1, 0, 0)
    keys = list_keys(s3client, bucket, prefix)
    assert f"{prefix}/1960/bad-%FF%FE-name.jp2" in keys and f"{prefix}/1960/caf%E9 100%25.txt" in keys
    assert f"{prefix}/1960/dir-%E6%97/inside.txt" in keys
    # Each key decodes back to the bytes of the local name; the object holds the file's bytes and its
    # source-path metadata the original bytes.
    for key in keys:
        rel = key[len(prefix) + 1:]
        raw = name_bytes(rel)
        with open(os.fsencode(src) + b"/" + raw, "rb") as f:
            data = f.read()
        obj = s3client.get_object(Bucket=bucket, Key=key)
        assert obj["Body"].read() == data, key
        assert decode_source_path(obj["Metadata"]["source-path"]) == raw, key
    # verify agrees with the keys (no missing, no extra), by metadata and by the bytes.
    for deep in ([], ["--deep"]):
        v = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", _endpoint(s3env), "--json",
                     *deep], s3env)
        assert v.returncode == 0, v.stdout + v.stderr
        last = json_events(v.stdout)[-1]
        assert last["match"] and last["ok"] == len(keys), last
    # A rerun uploads nothing: with the journal, and with it lost (the listing and digests decide).
    r = run_cli(args, s3env)
    assert r.returncode == 0 and summary_of(r.stdout)["uploaded"] == 0, r.stdout + r.stderr
    shutil.rmtree(tmp_path / "state")
    r = run_cli(args, s3env)
    assert r.returncode == 0 and summary_of(r.stdout)["uploaded"] == 0, r.stdout + r.stderr
