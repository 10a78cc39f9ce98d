"""Where the batches run: executors behind one interface (as s3transfer's process-pool and CRT managers are
alternatives behind one transfer interface). The local pool of worker processes (supervisor.py) is always
here; `mpupload.cluster` registers "dask" when it is imported, so the engine never imports the cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mpupload.core.errors import FatalError
from mpupload.core.messages import Batch
from mpupload.run.supervisor import Supervisor
from mpupload.settings.config import Settings
from mpupload.worker.process import run_worker


class Executor(Protocol):
    """What the coordinator drives: batches out, messages back, deaths noticed and handed on."""

    ctx: Any  # the multiprocessing context shared values are made in
    stop: Any  # an Event: set, every worker stops taking work
    results: Any  # the queue messages come back on (the planner posts to it too)
    blocked: Any  # an Event: set the first time the work queue was full (the scan is ahead)
    closed: bool  # no more batches will come (sentinels sent)
    restarts: int
    where: str  # for the start line: what runs the batches

    def start(self, *, lazily: bool = False, **worker_kwargs) -> None: ...
    def hand_out(self, batch: Batch) -> bool: ...
    @property
    def idle(self) -> bool: ...
    @property
    def all_done(self) -> bool: ...
    def next_message(self, timeout: float) -> Any: ...
    def note(self, msg) -> bool: ...
    def settled(self, results) -> None: ...
    def watch(self, dispatch: Callable[[object], None]) -> None: ...
    def drain(self, dispatch: Callable[[object], None], *, wait: float = 0.05) -> None: ...
    def shutdown(self, *, kill: bool) -> None: ...
    def release_queues(self) -> None: ...
    def close(self) -> None: ...


# name -> factory(settings=, processes=, on_started=, on_gone=) -> Executor
Factory = Callable[..., Executor]
_FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _FACTORIES[name] = factory


def _local_pool(*, settings: Settings, processes: int, on_started: Callable[[int, int], None] | None = None,
                on_gone: Callable[[int], None] | None = None) -> Executor:
    pool = Supervisor(worker=run_worker, settings=settings, processes=processes, inline=settings.processes == 0,
                      on_started=on_started, on_gone=on_gone)
    pool.where = "no worker process (threads of this one)" if settings.processes == 0 else \
        f"{processes} process(es)"
    return pool


register("local", _local_pool)


def make_executor(settings: Settings, *, processes: int, on_started=None, on_gone=None) -> Executor:
    factory = _FACTORIES.get(settings.executor)
    if factory is None:  # "dask" without `import mpupload.cluster` first: a wiring bug, said plainly
        raise FatalError("executor", f"--executor {settings.executor}: not available in this process "
                                     f"(known: {', '.join(sorted(_FACTORIES))})")
    return factory(settings=settings, processes=processes, on_started=on_started, on_gone=on_gone)
