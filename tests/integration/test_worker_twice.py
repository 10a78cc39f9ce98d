"""run_worker is a plain function (house habit 4): called again in one process it must work again. It once
carried an lru_cache left over from a split, so a second identical call returned at once, uploading nothing,
and every run's queues and settings stayed cached."""

from __future__ import annotations

import queue
import threading

from mpupload.core.messages import Batch, FileTask, WorkerDone, WorkerReport, WorkerStarted
from mpupload.settings.config import Settings
from mpupload.worker.process import run_worker


def _drain(results: queue.Queue) -> list:
    out = []
    while True:
        try:
            out.append(results.get_nowait())
        except queue.Empty:
            return out


def test_run_worker_uploads_again_when_called_twice_with_the_same_arguments(s3server, s3env, s3client, bucket,
                                                                              prefix, tmp_path, monkeypatch):
    for k, v in s3env.items():
        monkeypatch.setenv(k, v)
    settings = Settings(source=str(tmp_path), endpoint_url=s3server.endpoint_url, bucket=bucket, prefix=prefix,
                        checksum="CRC32", threads=2).validated()
    tasks: queue.Queue = queue.Queue()
    results: queue.Queue = queue.Queue()
    stop = threading.Event()
    for round_ in (1, 2):
        path = tmp_path / f"round{round_}.txt"
        path.write_bytes(f"round {round_}".encode())
        st = path.stat()
        task = FileTask(path=str(path), rel=path.name, key=f"{prefix}/{path.name}", size=st.st_size,
                        mtime_ns=st.st_mtime_ns, inode=st.st_ino, partition="p")
        tasks.put(Batch(batch_id=round_, partition="p", tasks=(task,)))
        tasks.put(None)  # the sentinel: this call ends after the batch
        run_worker(0, settings, tasks, results, stop, own_process=False)
        said = _drain(results)
        assert any(isinstance(m, WorkerStarted) for m in said), f"call {round_} did not start"
        assert any(isinstance(m, WorkerDone) for m in said), f"call {round_} did not end"
        uploaded = [r for m in said if isinstance(m, WorkerReport) for r in m.results]
        assert [r.rel for r in uploaded] == [path.name] and uploaded[0].status == "uploaded", uploaded
        assert s3client.get_object(Bucket=bucket, Key=f"{prefix}/{path.name}")["Body"].read() == path.read_bytes()
