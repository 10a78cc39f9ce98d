"""--executor dask (a LocalCluster of worker processes, as the issue judges it) and --shard K/N, against the
real S3 server; a worker killed mid-run; four shards through a counting relay."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from helpers import MIB, assert_landed, local_files, run_cli, start_cli, summary_of, wait_for

pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_archive import make_archive  # noqa: E402


def up(src, bucket, prefix, server, *extra):
    return ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", server.endpoint_url, "--json", *extra]


def journal_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM stored").fetchone()[0]


def test_local_cluster_of_three_lands_the_archive_whole(tmp_path, s3server, s3client, s3env, bucket, prefix):
    src = tmp_path / "archive"
    make_archive(src, pages=120, large=2, large_size=10 * MIB, seed=7)  # two multipart files among them
    files = local_files(src)
    journal = tmp_path / "j.sqlite"
    done = run_cli(up(src, bucket, prefix, s3server, "--executor", "dask", "--processes", "3",
                      "--journal", str(journal)), s3env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr, done.stderr[-3000:]  # Dask's logs stay out
    s = summary_of(done.stdout)
    assert (s["uploaded"], s["failed"], s["skipped"]) == (len(files), 0, 0)
    assert_landed(s3client, bucket, prefix, files)
    assert journal_rows(journal) == len(files)
    again = run_cli(up(src, bucket, prefix, s3server, "--executor", "dask", "--processes", "3",
                       "--journal", str(journal)), s3env)
    s = summary_of(again.stdout)
    assert again.returncode == 0 and (s["uploaded"], s["skipped"], s["bytes_sent"]) == (0, len(files), 0)


def _dask_workers(cli_pid: int) -> list:
    """The Dask worker processes of a run's LocalCluster: children of the CLI started by multiprocessing's
    spawn (its nannies live in the CLI process itself)."""
    import psutil

    try:
        children = psutil.Process(cli_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for p in children:
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _stored(journal: Path) -> int:
    try:
        return journal_rows(journal)
    except sqlite3.Error:
        return 0


def test_a_killed_dask_worker_costs_no_file(tmp_path, s3server, s3client, s3env, bucket, prefix, slow_link):
    src = tmp_path / "archive"
    make_archive(src, pages=500, large=0, seed=11)
    files = local_files(src)
    journal = tmp_path / "j.sqlite"
    # 80 ms of round trip and 2 files in flight per worker: 500 files take several seconds however fast the
    # machine, so a worker is killed with most of the run still ahead of it.
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json",
            "--executor", "dask", "--processes", "3", "--threads", "1", "--batch-files", "16",
            "--journal", str(journal)]
    run = start_cli(args, s3env)

    def under_way():
        assert run.poll() is None, "the run ended before a worker could be killed"
        return _stored(journal) >= 10 and _dask_workers(run.pid)

    s = _summary_after(run, lambda: wait_for(under_way, timeout=120,
                                             what="a run under way with its Dask workers")[0].kill())
    assert (s["uploaded"] + s["skipped"], s["failed"]) == (len(files), 0), s
    assert s["worker_restarts"] >= 1, s  # the dead worker's batches went out again
    assert_landed(s3client, bucket, prefix, files)
    assert journal_rows(journal) == len(files)
    again = run_cli(up(src, bucket, prefix, s3server, "--executor", "dask", "--processes", "3",
                       "--journal", str(journal)), s3env)
    s = summary_of(again.stdout)
    assert again.returncode == 0 and (s["uploaded"], s["bytes_sent"]) == (0, 0)


def _parts_landed(journal: Path, s3client, bucket: str) -> bool:
    """A multipart upload journaled with its id, with at least one part at S3."""
    try:
        with sqlite3.connect(journal) as db:
            rows = db.execute("SELECT key, upload_id FROM multipart WHERE upload_id != ''").fetchall()
    except sqlite3.Error:
        return False
    for key, upload_id in rows:
        try:
            if s3client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts"):
                return True
        except Exception:
            continue
    return False


def test_a_multipart_upload_cut_by_a_worker_death_is_resumed(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                                             slow_link):
    src = tmp_path / "big"
    src.mkdir()
    for i in range(3):
        (src / f"scan{i}.tif").write_bytes(os.urandom(40 * MIB))  # 5 parts of 8 MiB each
    files = local_files(src)
    journal = tmp_path / "j.sqlite"
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", slow_link.url, "--json",
            "--executor", "dask", "--processes", "1", "--threads", "1", "--journal", str(journal)]
    run = start_cli(args, s3env)
    def kill_one_worker():
        wait_for(lambda: _parts_landed(journal, s3client, bucket), timeout=120, what="a part of a multipart upload")
        # One worker: its nanny starts another, where Dask starts the task again; the batch comes back to the
        # coordinator, which hands out the unfinished files with their journaled upload ids.
        _dask_workers(run.pid)[0].kill()

    s = _summary_after(run, kill_one_worker)
    assert (s["uploaded"], s["failed"]) == (len(files), 0), s
    assert s["parts_reused"] >= 1, s  # resumed, not started again
    assert_landed(s3client, bucket, prefix, files)
    assert not s3client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_four_shards_cover_every_file_exactly_once(tmp_path, s3server, s3client, s3env, bucket, prefix):
    import threading
    from collections import Counter
    from urllib.parse import unquote

    from faults.proxy import FaultProxy

    src = tmp_path / "archive"
    make_archive(src, pages=160, large=0, seed=5)
    files = local_files(src)
    puts: Counter[str] = Counter()
    lock = threading.Lock()

    def count(head) -> bool:  # the proxy's rule for refusing: here it only counts, and refuses nothing
        method, target = head.start_line.split(" ")[:2]
        path = unquote(target.split("?", 1)[0])
        if method == "PUT" and path.startswith(f"/{bucket}/{prefix}/") and "/.mpupload-" not in path:  # not probes
            with lock:
                puts[path[len(f"/{bucket}/{prefix}/"):]] += 1
        return False

    proxy = FaultProxy(s3server.endpoint_url, refuse=count).start()
    try:
        # Together, as N machines would: each shard its own journal (by default), so none waits for another.
        runs = [start_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url,
                           "--json", "--processes", "1", "--shard", f"{k}/4"], s3env) for k in range(1, 5)]
        outs = [r.communicate(timeout=240) for r in runs]
    finally:
        proxy.stop()
    assert [r.returncode for r in runs] == [0, 0, 0, 0], [e[-2000:] for _, e in outs]
    shares = [summary_of(out)["uploaded"] for out, _ in outs]
    assert sum(shares) == len(files) and all(shares), shares  # disjoint, and every shard had a share
    assert puts == Counter(dict.fromkeys(files, 1))  # every file sent exactly once, by exactly one shard
    assert_landed(s3client, bucket, prefix, files)
    whole = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url], s3env)
    assert whole.returncode == 0 and f"MATCH: {len(files)} ok" in whole.stdout, whole.stdout[-2000:]
    one = run_cli(["verify", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                   "--shard", "2/4"], s3env)
    assert one.returncode == 0 and f"MATCH: {shares[1]} ok" in one.stdout and "0 extra" in one.stdout, one.stdout
    journals = sorted(p.name for p in (tmp_path / "state" / "mpupload" / "journals").glob("*.sqlite"))
    assert len(journals) == 4 and all(f"-shard{k}of4" in j for k, j in zip("1234", journals, strict=True)), journals


def _mount_namespace() -> list[str] | None:
    """The command that runs a program in a mount namespace of its own: `unshare -m` as root (CI runs as root
    on a plain machine: no user namespace needed), else `unshare -rm` (unprivileged user namespaces); None
    when neither is allowed here (a container without CAP_SYS_ADMIN, user namespaces turned off).
    util-linux makes the new namespace's mounts private: the bind mount never reaches the host."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return None
    for cmd in (["unshare", "-m"], ["unshare", "-rm"]) if os.geteuid() == 0 else (["unshare", "-rm"],):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return None


@pytest.mark.parametrize("view", ["mount namespace", "per-process path"])
def test_a_worker_that_sees_other_files_stops_the_run_at_once(tmp_path, s3server, s3env, bucket, prefix, view):
    """A scheduler named with --scheduler, and one worker whose SOURCE is another folder, as a machine without
    the shared filesystem would see it: exit 3, nothing uploaded. Two ways to give one worker another view of
    the same path: a mount namespace binding an empty folder over SOURCE (needs root or user namespaces), and,
    anywhere, SOURCE named through /proc/self/cwd, which each process resolves against its own working
    folder (the coordinator's holds the archive, the worker's an empty folder of that name)."""
    import subprocess

    from distributed import Client, LocalCluster

    here, there = tmp_path / "here", tmp_path / "there"
    make_archive(here / "archive", pages=30, large=0, seed=3)
    (there / "archive").mkdir(parents=True)
    worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker", "--nthreads", "1", "--no-dashboard",
                  "--no-nanny"]
    if view == "mount namespace":
        unshare = _mount_namespace()
        if unshare is None:
            pytest.skip("no mount namespace here (neither root nor user namespaces); the per-process path "
                        "variant holds the same promise")
        src = here / "archive"
        wrap = [*unshare, "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
                str(there / "archive"), str(src)]
    else:
        src = Path("/proc/self/cwd/archive")
        assert os.path.abspath(src) == str(src)  # the CLI takes SOURCE as given, links unresolved
        wrap = []
    repo = str(Path(__file__).resolve().parents[2])
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        worker = subprocess.Popen([*wrap, *worker_cmd, cluster.scheduler_address], cwd=there,
                                  env={**os.environ, "PYTHONPATH": repo}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            with Client(cluster.scheduler_address, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=60)
            r = run_cli(up(src, bucket, prefix, s3server, "--executor", "dask", "--scheduler",
                           cluster.scheduler_address), s3env, cwd=here)
        finally:
            worker.kill()
            worker.wait(timeout=10)
    assert r.returncode == 3, r.stderr[-3000:]
    summary = summary_of(r.stdout)
    assert "do not see the files" in summary["fatal"] and "not found there" in summary["fatal"], summary
    assert "16 of 16 sample files differ" in summary["fatal"], summary  # every one, not some
    assert "Traceback" not in r.stderr
    assert summary["uploaded"] == 0


def test_without_dask_installed_the_executor_is_a_usage_error(tmp_path, s3env):
    hide = tmp_path / "no-dask"
    (hide / "distributed").mkdir(parents=True)
    (hide / "distributed" / "__init__.py").write_text("raise ImportError('No module named distributed')\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    r = run_cli(["upload", str(src), "s3://b/p", "--executor", "dask"], {**s3env, "PYTHONPATH": str(hide)})
    assert r.returncode == 2
    assert r.stderr.strip() == "mpupload: error: --executor dask needs Dask distributed: pip install 'mpupload[dask]'"


def test_a_slowdown_on_one_worker_reaches_the_whole_run(tmp_path, s3client, s3env, bucket, prefix, s3server):
    """The coordinator's pace hears only what the cluster relays (relay.py): its throttle count proves the
    SlowDowns a worker met crossed the scheduler, the same way they reach every other worker."""
    from faults.proxy import SLOWDOWN, FaultPlan, FaultProxy

    src = tmp_path / "archive"
    make_archive(src, pages=80, large=0, seed=9)
    files = local_files(src)
    proxy = FaultProxy(s3server.endpoint_url, seed=4, plan=FaultPlan(slowdown=0.1)).start()
    try:
        r = run_cli(up(src, bucket, prefix, proxy, "--executor", "dask", "--processes", "2", "--retries", "10"), s3env)
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    s = summary_of(r.stdout)
    assert (s["uploaded"], s["failed"]) == (len(files), 0)
    slowdowns = proxy.snapshot()[SLOWDOWN]
    assert slowdowns >= 1
    assert 1 <= s["throttles"] <= slowdowns, (s["throttles"], slowdowns)
    assert_landed(s3client, bucket, prefix, files)


def _summary_after(run, kill) -> dict:
    """Kill what `kill` kills while the run goes on, then the run's summary once it ended by itself (exit 0)."""
    try:
        kill()
        out, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-3000:]
    return summary_of(out)
