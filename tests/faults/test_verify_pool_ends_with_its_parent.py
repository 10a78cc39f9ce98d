"""README, "No orphaned workers": "`verify`'s pool does the same" -- when the verify coordinator dies however
it dies (here `kill -9`, as the OOM killer does), every process of its pool exits, starting nothing new.

verify's pool is a spawned ProcessPoolExecutor: its workers block on a queue whose write end they inherit
themselves, so without the parent watch (stopping.become_worker) they would wait forever. The check runs
over the 80 ms relay, so the pool is busy with HEADs when the coordinator is killed, however loaded the
machine is: each pool process is seen holding a connection to the endpoint before the kill.
"""

from __future__ import annotations

import os
import signal
import subprocess

import psutil
from helpers import alive, run_cli, start_cli, summary_of, wait_for, year_tree

FILES = 400  # at 2 HEADs in flight over 80 ms of round trip: ~15 s of checks, far longer than the set-up




def pool_workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """The verify coordinator's children that are pool workers (not multiprocessing's resource tracker)."""
    try:
        kids = psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return []
    out = []
    for k in kids:
        try:
            if "resource_tracker" not in " ".join(k.cmdline()):
                out.append(k)
        except psutil.NoSuchProcess:
            continue
    return out


def talking_to(p: psutil.Process, port: int) -> bool:
    """Does this process hold an open TCP connection to 127.0.0.1:port (it is checking objects)?"""
    try:
        return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
                   for c in p.net_connections(kind="tcp"))
    except psutil.NoSuchProcess:
        return False


def test_kill_9_of_verify_leaves_no_pool_process_behind(tmp_path, s3server, s3env, bucket, prefix, slow_link):
    src = tmp_path / "news"
    year_tree(src, FILES, size=500)
    dest = f"s3://{bucket}/{prefix}"
    # The upload goes straight to the server (fast); only verify crosses the slow link.
    up = run_cli(["upload", str(src), dest, "--endpoint-url", s3server.endpoint_url, "--json"], s3env)
    assert up.returncode == 0, up.stderr
    assert summary_of(up.stdout)["uploaded"] == FILES

    proc = start_cli(["verify", str(src), dest, "--endpoint-url", slow_link.url, "--json",
                      "--processes", "2", "--threads", "1"], s3env)
    family: list[psutil.Process] = []
    try:
        workers = wait_for(lambda: len(pool_workers(proc)) == 2 and pool_workers(proc), timeout=120,
                           what="verify's two pool processes")
        # Mid-run for real: each pool process has a connection to the endpoint open (a HEAD under way or
        # kept alive between two), not merely started.
        wait_for(lambda: all(talking_to(w, slow_link.port) for w in workers), timeout=120,
                 what="both pool processes checking objects")
        family = psutil.Process(proc.pid).children(recursive=True)  # the tracker too: nothing may outlive it
        assert proc.poll() is None, "verify finished before the kill; the test proves nothing"
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator alone, not its process group
        # wait(), not communicate(): orphans would hold the output pipes open and hang the read.
        assert proc.wait(timeout=30) == -signal.SIGKILL
        wait_for(lambda: not alive(family), timeout=10, what="every process of verify's pool to end after its parent died")
        out, _err = proc.communicate(timeout=30)
        assert '"verify_summary"' not in out, "verify got to its summary: it was not killed mid-run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        for p in alive(family):  # never leave a stray process to the other tests
            p.kill()
