"""An external Dask cluster for the tests, as a user deploys one: `python -m distributed.cli.dask_scheduler` and
`dask_worker` processes (each worker with its nanny) on 127.0.0.1, started by the test and killed by it. Also
small looks at the cluster's state through a Client of the test's own, never through mpupload's code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import wait_for

_REPO = str(Path(__file__).resolve().parents[1])
START_TIMEOUT = 90.0  # seconds for a process to come up on a busy 2-core machine (imports dask and boto3)


def cluster_env(s3env: dict) -> dict:
    """The workers' environment: the run's own credential chain (they never travel through the scheduler),
    mpupload importable, nothing else from MPUPLOAD_*."""
    return {**s3env, "PYTHONPATH": _REPO}


class ExternalCluster:
    """A scheduler and `workers` nanny-supervised worker processes of `nthreads` threads each. Every process
    runs in its own session, so close() kills exactly the process groups this object started (a nanny's
    worker child included) and nothing else."""

    def __init__(self, root: Path, env: dict, *, workers: int, nthreads: int = 2):
        self.root, self.env, self.nthreads = root, env, nthreads
        self.root.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = self.root / "scheduler.json"
        self._procs: list[subprocess.Popen] = []
        self.address = ""
        self._client = None
        try:
            self._start_scheduler()
            for _ in range(workers):
                self.add_worker()
            self.wait_for_workers(workers)
        except BaseException:
            self.close()
            raise

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}-{len(self._procs)}.log", "wb")  # noqa: SIM115 - the child holds it
        try:
            proc = subprocess.Popen([sys.executable, "-m", *args], env=self.env, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root)
        finally:
            log.close()
        self._procs.append(proc)
        return proc

    def _start_scheduler(self) -> None:
        self._spawn("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(self.scheduler_file)])

        def address() -> str:
            import json

            try:
                return json.loads(self.scheduler_file.read_text()).get("address", "")
            except (OSError, ValueError):
                return ""

        self.address = wait_for(address, timeout=START_TIMEOUT, what="the Dask scheduler's address file")

    def add_worker(self) -> subprocess.Popen:
        """One more worker (with its nanny, which starts it again if it dies)."""
        return self._spawn("worker", ["distributed.cli.dask_worker", self.address, "--nthreads", str(self.nthreads),
                                      "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
                                      "--local-directory", str(self.root / "workers")])

    @property
    def client(self):
        """The test's own Client of the scheduler (not mpupload's)."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, set_as_default=False, timeout=START_TIMEOUT)
        return self._client

    def wait_for_workers(self, n: int) -> None:
        self.client.wait_for_workers(n, timeout=START_TIMEOUT)

    def worker_pids(self) -> dict[str, int]:
        """Dask worker address -> the pid of its worker process (the nanny's child)."""
        return self.client.run(os.getpid)

    def batch_tasks(self) -> dict[str, str]:
        """mpupload's batch tasks the scheduler holds unfinished, key -> state (finished ones are not
        outstanding: they wait only for the coordinator to release them)."""

        def look(dask_scheduler) -> dict[str, str]:  # a closure: pickled by value, runs in the scheduler
            return {str(k): ts.state for k, ts in dask_scheduler.tasks.items()
                    if str(k).startswith("mpupload-") and "-batch" in str(k)
                    and ts.state in ("waiting", "queued", "no-worker", "processing")}

        return self.client.run_on_scheduler(look)

    def running_tasks(self) -> int:
        """Tasks occupying a worker thread, over all workers, as the workers see them: a task the scheduler
        has forgotten (its client is gone) still counts here until its function returns."""

        def look(dask_worker) -> int:
            return len(dask_worker.state.all_running_tasks)

        return sum(self.client.run(look).values())

    def processing(self) -> dict[str, list[str]]:
        """Dask worker address -> keys the scheduler has it process."""
        return {w: [str(k) for k in keys] for w, keys in self.client.processing().items()}

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close(timeout=10)
            except Exception:  # noqa: S110 - the processes are killed next either way
                pass
            self._client = None
        for proc in reversed(self._procs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the nanny and its worker child
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()
