"""The pure parts of `mpupload tune`: the candidate order and the verdict on a set of trials."""

from __future__ import annotations

import pytest

from mpupload.commands.tune import Trial, candidates, recommend
from mpupload.run.autotune import SizeMix

MIB = 1024 * 1024


def trial(p, t, c=8 * MIB, *, seconds=10.0, files=1000, cpu=0.5, client=5.0, failed=0):
    return Trial(processes=p, threads=t, chunksize=c, seconds=seconds, files=files, nbytes=files * 256 * 1024,
                 failed=failed, client_cpu_s=client, machine_cpu=cpu)


def test_near_ties_go_to_less_memory_and_failures_are_out():
    trials = [trial(2, 16, seconds=10.0), trial(1, 8, seconds=10.3), trial(4, 8, seconds=5.0, failed=3)]
    rec = recommend(trials, cpus=2, loopback=True)
    assert (rec.processes, rec.threads) == (1, 8)


def test_settings_are_judged_by_their_mean():
    trials = [trial(2, 8, seconds=5.0), trial(2, 8, seconds=20.0), trial(1, 8, seconds=7.0)]
    assert recommend(trials, cpus=2, loopback=True).processes == 1


@pytest.mark.parametrize("machine, client, loopback, bound", [
    (0.95, 17.0, True, "client-CPU-bound"),
    (0.95, 3.0, True, "machine-CPU-bound"),
    (0.40, 3.0, True, "server-bound"),
    (0.40, 3.0, False, "network- or server-bound"),
])
def test_what_bounds_it(machine, client, loopback, bound):
    assert recommend([trial(2, 8, cpu=machine, client=client)], cpus=2, loopback=loopback).bound == bound


def test_nothing_uploaded_is_an_error():
    with pytest.raises(RuntimeError):
        recommend([trial(1, 8, failed=1)], cpus=2, loopback=True)


def test_candidates_start_with_autotune_and_sweep_part_sizes_only_with_large_files():
    small = list(candidates(cpus=2, mix=SizeMix(small_files=2000, small_bytes=500 * MIB), base_chunk=8 * MIB))
    assert small[0] == (2, 8, 8 * MIB) and {c for _, _, c in small} == {8 * MIB}
    assert len(small) == len(set(small))
    mixed = list(candidates(cpus=2, mix=SizeMix(small_files=10, small_bytes=MIB, large_files=2, large_bytes=100 * MIB),
                            base_chunk=8 * MIB))
    assert {c for _, _, c in mixed} == {8 * MIB, 16 * MIB, 64 * MIB}


def test_a_long_link_is_named_as_the_bound_and_the_sweep_reaches_far_enough():
    # 2 x 8 in flight at 100 ms can finish at most 160 files/s; 150 files/s is the link, not the CPU.
    rec = recommend([trial(2, 8, seconds=1000 / 150, cpu=0.3)], cpus=2, loopback=False, latency=0.100)
    assert rec.bound == "link-latency-bound" and "Little" in rec.why
    # The same rate with 2 x 64 in flight is far from that ceiling: something else bounds it.
    assert recommend([trial(2, 64, seconds=1000 / 150, cpu=0.3)], cpus=2, loopback=False,
                     latency=0.100).bound != "link-latency-bound"
    far = list(candidates(cpus=2, mix=SizeMix(small_files=2000, small_bytes=500 * MIB), base_chunk=8 * MIB,
                          latency=0.100))
    near = list(candidates(cpus=2, mix=SizeMix(small_files=2000, small_bytes=500 * MIB), base_chunk=8 * MIB,
                           latency=0.001))
    assert far[0][1] >= 30 and max(t for _, t, _ in far) >= 60
    assert near[0][1] == 8
