"""The run's XXHASH128 verdict crosses processes: found once by the preflight, waited for by each worker
(xxprobe.SharedVerdict)."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest

from mpupload.s3.probekeys import checksum_probe_key as probe_key
from mpupload.s3.probekeys import only_probes as only_probe_among
from mpupload.s3.xxprobe import SharedVerdict, decide_for_run


def _worker_reads(verdict: SharedVerdict, stop, out) -> None:
    out.put(verdict.wait(stop, timeout=30))


@pytest.mark.parametrize("validates, why", [(True, ""), (False, "it accepts XXHASH128 checksums without checking")])
def test_a_spawned_worker_waits_for_the_verdict_the_coordinator_sets_later(validates, why):
    ctx = mp.get_context("spawn")
    verdict, stop, out = SharedVerdict(ctx=ctx), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_worker_reads, args=(verdict, stop, out))
    child.start()
    try:
        verdict.set(validates, why)
        assert out.get(timeout=60) == (validates, why)
    finally:
        child.join(timeout=30)


def test_asked_to_probe_themselves_or_stopping_workers_get_no_verdict():
    verdict, stop = SharedVerdict(), threading.Event()
    verdict.ask_workers()
    assert verdict.wait(stop, timeout=5) is None
    unset = SharedVerdict()
    stop.set()
    assert unset.wait(stop, timeout=5) is None  # returns at the stop, not after the timeout


def test_a_probe_whose_puts_all_fail_settles_on_the_fallback_and_says_why():
    """A server that refuses even the right checksum: no XXHASH128 (the workers use the fallback CRC), with
    the reason; the probe object's delete failing too is no error."""
    from botocore.exceptions import ClientError

    class Refusing:
        def put_object(self, **_kw):
            raise ClientError({"Error": {"Code": "InvalidRequest", "Message": "no"}}, "PutObject")

        def delete_object(self, **_kw):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteObject")

    verdict = SharedVerdict()
    decide_for_run(Refusing(), bucket="b", prefix="p", verdict=verdict)
    validates, why = verdict.wait(threading.Event(), timeout=1)
    assert not validates and "refused a correct XXHASH128 checksum too (InvalidRequest)" in why


def test_only_the_probe_object_listed_means_empty():
    assert only_probe_among([], "archive")
    assert only_probe_among([probe_key("archive")], "archive")
    assert not only_probe_among([probe_key("archive"), "archive/1920/a.jp2"], "archive")
    assert not only_probe_among(["archive/1920/a.jp2"], "archive")
    assert only_probe_among([probe_key("")], "")
