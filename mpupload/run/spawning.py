"""How worker processes start: forked from a coordinator that has already imported boto3 and loaded the S3
service model, where that is safe; spawned otherwise.

A spawned worker starts a fresh interpreter and imports boto3, botocore and the rest again (~0.35 CPU-s
here), then parses the S3 service model (~0.1 CPU-s): for a 2,000-file run on 2 cores that was a third of
all the client CPU (py-spy, GIL samples). A forked worker inherits all of it, copy-on-write.

Forking is only safe while the coordinator has a single thread: a lock held by another thread at the
fork would stay locked forever in the child. So the first workers are forked before the coordinator
starts any thread (prober, feeder, census, the live view); a worker started later (the replacement of
one that died) is spawned. Linux only: macOS's system libraries are not fork-safe.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading

from mpupload.settings.config import Settings


def can_fork() -> bool:
    return sys.platform.startswith("linux") and threading.active_count() == 1


def warm_up(settings: Settings) -> None:
    """Import boto3 and load the S3 model into this process's session cache (remote.make_client), so that
    workers forked now inherit both, and the preflight's own client costs little afterwards."""
    from mpupload.s3.client import make_client

    make_client(settings)


def worker_context():
    """The multiprocessing context to start one worker with now: fork while that is safe, else spawn.
    Queues, events and shared values are always made with the spawn context: they work in both."""
    return mp.get_context("fork" if can_fork() else "spawn")
