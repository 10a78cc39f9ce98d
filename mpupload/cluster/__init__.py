"""`--executor dask`: the same migration on a Dask cluster (optional extra: pip install 'mpupload[dask]').

The coordinator plans and journals as on one machine; only the supervisor differs. `DaskSupervisor`
(supervisor.py) submits each batch as a Dask task; on each Dask worker process the task runs the local
worker's own code (worker.WorkerKit, built once per process and run: batch_task.py) and streams its
messages back through a Dask queue into the same ledger, journal, live view and report. Multipart
upload ids are journaled by the coordinator (journal_relay.py); the shared pace, the in-flight limit and
the stop travel as scheduler events (relay.py); a start-up check proves every worker sees the same files
(samefiles.py). Dask is imported only here, and only for --executor dask.
"""

from mpupload.run.executors import register


def _dask_executor(*, settings, processes: int, on_started=None, on_gone=None):
    from mpupload.cluster.supervisor import DaskSupervisor  # dask itself is imported here, when a run needs it

    return DaskSupervisor(settings=settings, processes=processes, on_started=on_started, on_gone=on_gone)


register("dask", _dask_executor)
