"""README, "Status from another terminal": "status never takes the lock itself, so it can neither block the
run nor stop one from starting, and it never writes."

- Never writes: after a run, `status` in every form (text, --json, --watch, and the read of the journal
  itself that stands in when there is no progress document) leaves every file beside the journal as it was:
  same names, bytes, modes and mtimes, and the folder's own mtime (no file made and removed).
- Never in the run's way: `status --json` is called over and over from before a run starts until after it
  ended, and `status --watch` follows the run; the run starts, lands everything and exits 0, each status call
  answers (exit 0), and no status process ever appears in the kernel's table of locks. The run goes through
  the 80 ms relay, so it lasts long enough to be watched however loaded the machine is.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from helpers import assert_landed, local_files, run_cli, summary_of, wait_for


def tree(root: Path, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        p = root / str(1930 + i % 10) / f"p{i:04d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(400 + i))


def snapshot(folder: Path) -> dict[str, tuple]:
    """Everything beside the journal: each entry's kind, mode, size, mtime and (files) bytes' digest."""
    out: dict[str, tuple] = {".": ("dir", folder.stat().st_mode, folder.stat().st_mtime_ns)}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        rel = p.relative_to(folder).as_posix()
        if p.is_file():
            out[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[rel] = ("dir", st.st_mode, st.st_mtime_ns)
    return out


def status(journal: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(["status", "--journal", str(journal), *extra], env, timeout=60)


def test_status_alone_changes_nothing_beside_the_journal(tmp_path, s3server, s3env, bucket, prefix):
    src = tmp_path / "a"
    tree(src, 30)
    journal = tmp_path / "state" / "archive.sqlite"
    up = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", s3server.endpoint_url,
                  "--journal", str(journal), "--json"], s3env)
    assert up.returncode == 0, up.stderr
    folder = journal.parent
    before = snapshot(folder)
    assert {journal.name, f"{journal.name}.lock", f"{journal.name}.progress.json"} <= set(before)

    text = status(journal, s3env)
    assert text.returncode == 0, text.stderr
    assert "finished" in text.stdout
    as_json = status(journal, s3env, "--json")
    assert as_json.returncode == 0, as_json.stderr
    st = json.loads(as_json.stdout)
    assert (st["running"], st["state"], st["exit_code"], st["done_files"]) == (False, "finished", 0, 30)
    watched = status(journal, s3env, "--json", "--watch", "0.5")  # no run holds it: shown once, then done
    assert watched.returncode == 0, watched.stderr
    assert [json.loads(line)["running"] for line in watched.stdout.splitlines()] == [False]
    assert snapshot(folder) == before

    # A journal without its progress document (a run of an older mpupload): status reads the journal
    # itself, read-only, and still writes nothing there (no -wal or -shm left behind either).
    (folder / f"{journal.name}.progress.json").unlink()
    before = snapshot(folder)
    old = status(journal, s3env, "--json")
    assert old.returncode == 0, old.stderr
    st = json.loads(old.stdout)
    assert (st["running"], st["stored_in_journal"]) == (False, 30)
    assert status(journal, s3env).returncode == 0
    assert snapshot(folder) == before


def locks_held_by(pids: set[int]) -> list[str]:
    """Lines of the kernel's lock table held by any of these processes."""
    with open("/proc/locks", encoding="ascii", errors="replace") as f:
        return [line for line in f if len(line.split()) > 4 and line.split()[4].isdigit()
                and int(line.split()[4]) in pids]


def test_a_run_starts_and_finishes_while_status_looks_on(tmp_path, s3server, s3client, s3env, bucket, prefix,
                                                          slow_link):
    src = tmp_path / "a"
    tree(src, 20)
    journal = tmp_path / "state" / "archive.sqlite"
    dest = [str(src), f"s3://{bucket}/{prefix}", "--journal", str(journal), "--json"]
    first = run_cli(["upload", *dest, "--endpoint-url", s3server.endpoint_url], s3env)
    assert first.returncode == 0, first.stderr
    tree(src, 300, start=20)  # the second run has 300 files to send over the slow link: ~10 s

    # One-shot status calls, back to back, from before the run starts until after it ended.
    calls: list[tuple[int, int, dict | None]] = []  # (status pid, exit code, its JSON)
    status_pids: set[int] = set()
    stop = threading.Event()

    def hammer() -> None:
        for _ in range(500):  # bounded; the run ends well before
            if stop.is_set():
                return
            p = subprocess.Popen([sys.executable, "-m", "mpupload", "status", "--journal", str(journal), "--json"],
                                 env=s3env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            status_pids.add(p.pid)
            out, _err = p.communicate(timeout=60)
            calls.append((p.pid, p.returncode, json.loads(out) if p.returncode == 0 else None))
            stop.wait(0.1)  # pacing only (shared cores), not a synchronisation

    looker = threading.Thread(target=hammer, name="status-hammer", daemon=True)
    looker.start()
    outs = {name: open(tmp_path / name, "w") for name in ("run", "run.err", "watch", "watch.err")}  # noqa: SIM115

    def text_of(name: str) -> str:
        return (tmp_path / name).read_text()  # written by the child itself: nothing buffered here

    run: subprocess.Popen | None = None
    watch: subprocess.Popen | None = None
    try:
        wait_for(lambda: len(calls) >= 1, timeout=60, what="a first status call before the run")
        # Output to files: a process blocked on a full pipe would look like one that does not end.
        run = subprocess.Popen([sys.executable, "-m", "mpupload", "upload", *dest, "--endpoint-url", slow_link.url,
                                "--processes", "1", "--threads", "1"], env=s3env, stdout=outs["run"],
                               stderr=outs["run.err"], text=True)
        # Once status sees the run holding the journal, a --watch follows it to its end.
        # (or a status call to fail, or the run to end: then the assertions below say what went wrong)
        wait_for(lambda: any(c[1] != 0 or (c[2]["running"] and c[2]["pid"] == run.pid) for c in calls)
                 or run.poll() is not None, timeout=120, what="status to see the run holding the journal")
        assert all(code == 0 for _pid, code, _doc in calls), [c[:2] for c in calls if c[1] != 0]
        assert run.poll() is None, "the run ended before status saw it: " + text_of("run.err")[-2000:]
        watch = subprocess.Popen([sys.executable, "-m", "mpupload", "status", "--journal", str(journal), "--json",
                                  "--watch", "0.5"], env=s3env, stdout=outs["watch"], stderr=outs["watch.err"],
                                 text=True)
        status_pids.add(watch.pid)
        held_by_status: list[str] = []

        def ended(p: subprocess.Popen) -> bool:
            held_by_status.extend(locks_held_by(status_pids))  # sampled all along
            return p.poll() is not None

        wait_for(lambda: ended(run), timeout=240, what="the run to end", interval=0.1)
        # --watch ends by itself once the run let go of the journal.
        wait_for(lambda: ended(watch), timeout=60, what="status --watch to end after the run", interval=0.1)
        stop.set()
        looker.join(timeout=120)
    finally:
        stop.set()
        for p in (run, watch):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        for f in outs.values():
            f.close()
    out, err, w_out, w_err = text_of("run"), text_of("run.err"), text_of("watch"), text_of("watch.err")

    assert run.returncode == 0, err
    assert "another mpupload run" not in err
    s = summary_of(out)
    assert (s["uploaded"], s["skipped"], s["failed"]) == (300, 20, 0)
    assert_landed(s3client, bucket, prefix, local_files(src))

    assert held_by_status == [], f"a status process held a lock: {held_by_status}"
    assert not looker.is_alive()
    assert calls and all(code == 0 for _pid, code, _doc in calls), [c[:2] for c in calls if c[1] != 0]
    assert calls[0][2]["running"] is False  # the first call came before the run
    assert watch.returncode == 0, w_err
    frames = [json.loads(line) for line in w_out.splitlines()]
    assert frames[0]["running"] is True and frames[0]["pid"] == run.pid
    assert frames[-1]["running"] is False and frames[-1]["state"] == "finished" and frames[-1]["exit_code"] == 0
    assert frames[-1]["done_files"] == 320
