"""Reaching a Dask cluster: a scheduler the user names (--scheduler, deployed by dask-ssh, dask-kubernetes,
dask-jobqueue, ...), or a LocalCluster on this machine sized like the local pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mpupload.core.errors import FatalError
from mpupload.settings.config import Settings, SettingsError

# Batch tasks one Dask worker process runs at once. Two, not one: a task returns when its last file is
# done, and while one batch finishes its last few files the other keeps the process's files in flight full
# (with one, every batch's tail would leave the link idle). Both share the process's threads (WorkerKit).
TASKS_PER_WORKER = 2
CONNECT_TIMEOUT = 15.0  # seconds to reach a named scheduler


def require_dask() -> None:
    """A usage error (exit 2) when Dask is not installed, said before anything starts."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise SettingsError("--executor dask needs Dask distributed: pip install 'mpupload[dask]'") from None


@dataclass
class Connection:
    client: object
    cluster: object | None  # the LocalCluster this run started, else None
    where: str  # for the start line

    def close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    pass


def connect(s: Settings, *, workers: int) -> Connection:
    """FatalError (exit 3) when the named scheduler cannot be reached."""
    from distributed import Client, LocalCluster

    # Dask's own log lines (a worker lost, a task rescheduled) would cut through the live view; the run says
    # what matters itself.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if s.scheduler:
        try:
            client = Client(s.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise FatalError("cluster", f"cannot reach the Dask scheduler at {s.scheduler}: {exc}") from None
        return Connection(client=client, cluster=None, where=f"the Dask cluster at {s.scheduler}")
    # Processes, each with its own client, transport and threads, like the local pool; on loopback, with the
    # dashboard on a free port (dashboard_address=None still takes 8787 here: two runs would clash); no
    # memory limit: mpupload bounds its own memory (--inflight-bytes, parts).
    cluster = LocalCluster(n_workers=workers, threads_per_worker=TASKS_PER_WORKER, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", memory_limit=0, silence_logs=logging.ERROR)
    client = Client(cluster, set_as_default=False)
    return Connection(client=client, cluster=cluster, where=f"a local Dask cluster of {workers} worker process(es)")
