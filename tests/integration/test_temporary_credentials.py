"""Temporary credentials that rotate mid-run: an AWS profile whose `credential_process` hands out short-lived
keys, each a SeaweedFS service account that the server itself stops accepting once it expires. A run over the
slow link, crossing two rotations, must land every file through the lean PUT with no request declined: a
signer that kept the first keys it was given would be refused once they die (and botocore, which refreshes,
would have to send those files instead).

botocore refreshes temporary credentials 15 minutes before their `Expiration` (advisory; it blocks at 10).
Real STS keys live an hour; here a key lives seconds, so the script reports `Expiration` as the moment it
rotates plus those 15 minutes: botocore asks again exactly when the script has a new key, and the server
kills the old key only after every worker was handed the new one (plus a grace for requests in flight)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from helpers import assert_landed, local_files, start_cli, summary_of, wait_for

PERIOD = 4.0  # seconds each key is the one handed out
KEYS = 3  # key 0 and 1 are killed mid-run; key 2 lasts to the end
FILES = 500
RATE = 25  # requests per second: FILES / RATE = 20 s at least, a promise of the limiter, not machine speed
GRACE = 2.0  # after every worker holds the next key: requests signed with the old one have arrived

# Runs as `python -S SCRIPT SCHEDULE`: no site-packages, so a refresh costs ~20 ms, not a full start-up.
_CREDENTIAL_PROCESS = '''
import json, os, sys, time
schedule = json.load(open(sys.argv[1]))
now = time.time()
start = schedule.get("start")  # set by the test once the first worker asked: the key clock starts then
if start is None:
    index, rotates = 0, now + 1.0  # ask again in a second: the clock may have started by then
else:
    index = min(int((now - start) / schedule["period"]), len(schedule["keys"]) - 1)
    last = index == len(schedule["keys"]) - 1
    rotates = now + 3600 if last else start + (index + 1) * schedule["period"]
key = schedule["keys"][index]
# The log names the key by its index and the asking process: never a key or secret.
with open(schedule["log"], "a") as log:
    log.write(json.dumps({"t": now, "pid": os.getppid(), "key": index}) + "\\n")
expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rotates + 900))
print(json.dumps({"Version": 1, "AccessKeyId": key["id"], "SecretAccessKey": key["secret"], "Expiration": expires}))
'''


def _iam_config(keys: list[dict], expires: list[int]) -> dict:
    """One identity holding one service account per key; each account's key dies at its `expires`."""
    actions = ["Read", "List", "Write", "Tagging"]
    return {"identities": [{"name": "rotating-holder", "actions": actions}],
            "service_accounts": [{"id": f"sa-rotating-{i}", "parent_user": "rotating-holder", "actions": actions,
                                  "credential": {"accessKey": k["id"], "secretKey": k["secret"]},
                                  "expiration": expires[i]} for i, k in enumerate(keys)]}


def _accepted(s3server, key: dict, bucket: str) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=s3server.endpoint_url, aws_access_key_id=key["id"],
                          aws_secret_access_key=key["secret"], region_name=s3server.region,
                          config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError:
        return False
    return True


def _handouts(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]


@pytest.fixture
def rotating_keys(s3server, bucket):
    """KEYS fresh key pairs the server accepts (for now); afterwards their accounts expire."""
    import secrets

    keys = [{"id": f"ROTATING{i}{secrets.token_hex(6).upper()}", "secret": secrets.token_urlsafe(30)}
            for i in range(KEYS)]
    far = int(time.time()) + 3600
    s3server.put_iam_config(_iam_config(keys, [far] * KEYS))
    # The S3 side reloads the filer's identities on its own schedule: wait until every key works.
    wait_for(lambda: all(_accepted(s3server, k, bucket) for k in keys), timeout=30, what="the new keys accepted",
             interval=0.2)
    yield keys
    s3server.put_iam_config(_iam_config(keys, [int(time.time()) - 1] * KEYS))


def test_keys_that_rotate_and_die_mid_run_cost_no_file_and_no_lean_request(
        tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link, rotating_keys):
    keys = rotating_keys
    src = tmp_path / "src"
    for i in range(FILES):
        p = src / str(1990 + i % 4) / f"f{i:04d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(1500 + i))
    log, schedule_path, script = tmp_path / "handouts.jsonl", tmp_path / "schedule.json", tmp_path / "creds.py"
    script.write_text(_CREDENTIAL_PROCESS)
    schedule = {"period": PERIOD, "keys": keys, "log": str(log)}

    def write_schedule() -> None:
        tmp = schedule_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(schedule))
        tmp.chmod(0o600)  # it holds the secrets
        tmp.replace(schedule_path)  # the script never reads half a file

    write_schedule()
    config = tmp_path / "aws-config"
    config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} -S {script} {schedule_path}\n")
    env = {k: v for k, v in s3env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                        "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")}
    env["AWS_CONFIG_FILE"] = str(config)

    proc = start_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json",
                      "--profile", "rotating", "--processes", "2", "--max-requests-per-second", str(RATE)], env)
    dead_since: list[float] = []
    try:
        def worker_pids() -> set[int]:
            assert proc.poll() is None, f"the run ended early (exit {proc.returncode})"
            return {h["pid"] for h in _handouts(log) if h["pid"] != proc.pid}

        wait_for(worker_pids, timeout=120, what="a worker asking for credentials")
        schedule["start"] = time.time()
        write_schedule()
        expires = [int(time.time()) + 3600] * KEYS
        for old in range(KEYS - 1):
            # Every worker that held the old key has been handed the next one: only then may it die.
            def moved_on(old: int = old) -> bool:
                assert proc.poll() is None, f"the run ended before key {old} rotated (exit {proc.returncode})"
                hs = _handouts(log)
                holders = {h["pid"] for h in hs if h["key"] == old and h["pid"] != proc.pid}
                return bool(holders) and holders <= {h["pid"] for h in hs if h["key"] > old}

            wait_for(moved_on, timeout=PERIOD + 60, what=f"every worker handed a key after key {old}", interval=0.1)
            deadline = time.monotonic() + GRACE
            wait_for(lambda d=deadline: time.monotonic() >= d, timeout=GRACE + 1, what="the grace", interval=0.1)
            expires[old] = int(time.time()) - 1
            s3server.put_iam_config(_iam_config(keys, expires))
            wait_for(lambda old=old: not _accepted(s3server, keys[old], bucket), timeout=30,
                     what=f"key {old} refused", interval=0.2)
            dead_since.append(time.time())
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.communicate(timeout=30)
    hs = _handouts(log)
    print("handouts (pid, key, seconds):", [(h["pid"], h["key"], round(h["t"] - hs[0]["t"], 2)) for h in hs],
          "coordinator", proc.pid, "keys dead after", [round(t - hs[0]["t"], 2) for t in dead_since])
    assert proc.returncode == 0, err[-3000:]
    s = summary_of(out)
    assert (s["uploaded"], s["failed"]) == (FILES, 0)
    # Every PUT went lean and none was declined: no request was signed with a key the server had killed.
    req = s["requests"]
    assert (req["lean"], req["botocore"], req["declined"], req["lean_off"]) == (FILES, 0, 0, {}), req
    # The run went on well after the last kill: those objects were signed with the last key.
    stored_after = [o for page in s3client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for o in page.get("Contents", []) if o["LastModified"].timestamp() >= dead_since[-1] + 1]
    assert len(stored_after) >= 20, f"only {len(stored_after)} objects stored after the last key died"
    # Each key went to a worker, and every worker moved on to the last key.
    workers = {h["pid"] for h in hs if h["pid"] != proc.pid}
    assert {h["key"] for h in hs if h["pid"] in workers} == set(range(KEYS))
    assert workers == {h["pid"] for h in hs if h["key"] == KEYS - 1 and h["pid"] in workers}
    assert not any(_accepted(s3server, k, bucket) for k in keys[:-1]), "the old keys still work"
    assert_landed(s3client, bucket, prefix, local_files(src))
    assert subprocess.run(["grep", "-rlF", "-e", keys[0]["secret"], str(tmp_path / "state")],
                          capture_output=True).returncode == 1, "a secret was written under the state folder"
