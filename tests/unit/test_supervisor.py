"""The supervisor with a fake worker: batches out, results back, a dead worker replaced with its files
handed on, the respawn limit, sentinels, a lazy start. No S3, no journal."""

from __future__ import annotations

import os
import threading
import time

import pytest

from mpupload.core.messages import (
    FAILED,
    UPLOADED,
    Batch,
    BatchTaken,
    FileTask,
    UploadResult,
    WorkerDone,
    WorkerReport,
    WorkerStarted,
)
from mpupload.run.supervisor import Supervisor


@pytest.fixture(autouse=True)
def _no_client_warm_up(monkeypatch):
    """A forked start first builds an S3 client for the workers to inherit (spawning.py); the fake workers
    here need none, and their settings are a plain string. Whether a start forks depends on the threads the
    test process happens to have, so without this the tests passed in a full run and failed alone."""
    monkeypatch.setattr("mpupload.run.supervisor.warm_up", lambda _settings: None)


def fake_worker(worker_id, settings, tasks, results, stop, *, own_process=True, **_kwargs):
    """Like run_worker: "uploads" every file. Settings "die:all": each worker dies with exit code 7 on the
    batch it takes (its BatchTaken flushed first); "die-once:PATH": only the first one to create PATH."""
    results.put(WorkerStarted(worker=worker_id, pid=os.getpid()))
    while not stop.is_set():
        batch = tasks.get()
        if batch is None:
            break
        results.put(BatchTaken(worker=worker_id, batch_id=batch.batch_id))
        if own_process and _doomed(settings):
            results.close()
            results.join_thread()  # what it said reaches the pipe before the death
            os._exit(7)
        results.put(WorkerReport(worker=worker_id, bytes_sent=0, results=tuple(
            UploadResult(rel=t.rel, key=t.key, status=UPLOADED, size=t.size, batch_id=batch.batch_id)
            for t in batch.tasks)))
    results.put(WorkerDone(worker=worker_id))


def _doomed(settings: str) -> bool:
    if settings == "die:all":
        return True
    if settings.startswith("die-once:"):
        try:
            os.close(os.open(settings.split(":", 1)[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False
    return False


def make_batches(n_batches: int, per: int) -> list[Batch]:
    return [Batch(batch_id=b + 1, partition="1920", tasks=tuple(
        FileTask(path=f"/x/{b}/{i}", rel=f"{b}/{i}", key=f"k/{b}/{i}", size=1, mtime_ns=1, inode=1,
                 partition="1920") for i in range(per))) for b in range(n_batches)]


def drive(sup: Supervisor, batches: list[Batch], *, timeout: float = 60) -> list[UploadResult]:
    """A minimal conductor: a feeder thread hands out, the loop dispatches and watches, as coordinator.py."""
    got: list[UploadResult] = []
    fed = threading.Event()

    def dispatch(msg):
        if sup.note(msg):
            return
        if isinstance(msg, WorkerReport):
            sup.settled(msg.results)
            got.extend(msg.results)

    def feed():
        for b in batches:
            sup.hand_out(b)
        fed.set()

    threading.Thread(target=feed, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not sup.all_done:
        assert time.monotonic() < deadline, "the pool did not finish"
        msg = sup.next_message(0.1)
        if msg is not None:
            dispatch(msg)
        sup.watch(dispatch)
        if fed.is_set() and sup.idle and not sup.closed:
            sup.close()
    sup.shutdown(kill=False)
    sup.release_queues()
    return got


def test_threads_take_every_batch_and_end_on_their_sentinels():
    sup = Supervisor(worker=fake_worker, settings="ok", processes=3, inline=True)
    sup.start()
    got = drive(sup, make_batches(10, 5))
    assert sorted(r.rel for r in got) == sorted(f"{b}/{i}" for b in range(10) for i in range(5))
    assert sup.restarts == 0 and all(not s.handle.is_alive() for s in sup.slots)


def test_a_worker_process_that_dies_is_replaced_and_its_files_still_done(tmp_path):
    sup = Supervisor(worker=fake_worker, settings=f"die-once:{tmp_path / 'dead'}", processes=2, inline=False)
    sup.start()
    got = drive(sup, make_batches(6, 4))
    assert sup.restarts == 1
    assert {r.rel for r in got if r.status == UPLOADED} == {f"{b}/{i}" for b in range(6) for i in range(4)}
    assert not [r for r in got if r.status == FAILED]


def test_past_the_respawn_limit_the_files_fail_with_the_reason():
    sup = Supervisor(worker=fake_worker, settings="die:all", processes=1, inline=False)
    sup.start()
    got = drive(sup, make_batches(1, 3))
    assert sup.restarts == 3  # MAX_RESPAWNS_PER_SLOT, then the slot is given up
    assert {r.status for r in got} == {FAILED} and len(got) == 3
    assert got[0].reason == "worker process died (exit code 7)"


def test_a_lazy_pool_with_no_work_starts_nothing():
    sup = Supervisor(worker=fake_worker, settings="ok", processes=2, inline=False)
    sup.start(lazily=True)
    assert drive(sup, []) == [] and not sup.started
    assert all(s.handle is None for s in sup.slots)


def test_a_lazy_pool_starts_with_the_first_batch():
    sup = Supervisor(worker=fake_worker, settings="ok", processes=2, inline=True)
    sup.start(lazily=True)
    assert len(drive(sup, make_batches(2, 2))) == 4 and sup.started


def test_outstanding_files_are_settled_file_by_file_and_taken_for_a_dead_worker():
    from mpupload.core.messages import FileTask
    from mpupload.run.outstanding import Outstanding

    tasks = [FileTask(path=f"/s/{n}", rel=n, key=f"p/{n}", size=1, mtime_ns=0, inode=0,
                      partition="1920") for n in "abc"]
    out = Outstanding()
    out.add(7, tasks)
    out.add(8, tasks[:1])
    out.settle([UploadResult(rel="a", key="p/a", status="uploaded", batch_id=7),
                UploadResult(rel="a", key="p/a", status="uploaded", batch_id=8)])
    assert out.batches() == {7} and out.holds(7, "b") and not out.holds(7, "a")
    assert sorted(t.rel for t in out.take(7)) == ["b", "c"] and not out
