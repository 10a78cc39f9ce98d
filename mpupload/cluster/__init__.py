"""`--executor dask`: the same migration on a Dask cluster (optional extra: pip install 'mpupload[dask]').

The coordinator plans and journals as on one machine; only the supervisor differs. `DaskSupervisor`
(supervisor.py) submits each batch as a Dask task; on each Dask worker process the task runs the local
worker's own code (worker.WorkerKit, built once per process and run: batch_task.py) and streams its
messages back through a Dask queue into the same ledger, journal, live view and report. Multipart
upload ids are journaled by the coordinator (journal_relay.py); the shared pace, the in-flight limit and
the stop travel as scheduler events (relay.py); a start-up check proves every worker sees the same files
(samefiles.py). Dask is imported only here, and only for --executor dask.
"""
