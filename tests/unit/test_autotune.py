"""The pure choice of processes and threads from the CPU count and the size mix."""

from __future__ import annotations

import pytest

from mpupload.run.autotune import Choice, SizeMix, choose, sample_mix

MIB = 1024 * 1024


def small(n: int, *, complete: bool = False) -> SizeMix:
    return SizeMix(small_files=n, small_bytes=n * 256 * 1024, complete=complete)


@pytest.mark.parametrize("cpus, want", [(1, 2), (2, 2), (4, 4), (8, 8), (64, 16)])
def test_many_small_files_one_process_per_core(cpus, want):
    c = choose(cpus=cpus, mix=small(2000))
    assert (c.processes, c.threads) == (want, 8)
    assert "small" in c.reason


def test_mostly_large_bytes_use_few_processes():
    mix = SizeMix(small_files=10, small_bytes=10 * MIB, large_files=4, large_bytes=1024 * MIB, complete=True)
    assert choose(cpus=2, mix=mix).processes == 1
    assert choose(cpus=8, mix=mix).processes == 2
    assert "large" in choose(cpus=8, mix=mix).reason


def test_a_single_large_file_needs_one_process():
    mix = SizeMix(large_files=1, large_bytes=5000 * MIB, complete=True)
    assert choose(cpus=16, mix=mix).processes == 1


def test_a_small_complete_job_does_not_start_idle_processes():
    assert choose(cpus=8, mix=small(400, complete=True)).processes == 1
    assert choose(cpus=8, mix=small(600, complete=True)).processes == 2
    # The sample stopped early: more files follow, so the count says nothing about the job's size.
    assert choose(cpus=8, mix=small(100, complete=False)).processes == 8


def test_many_small_files_outweigh_a_few_large_bytes():
    # Lots of small files are the CPU cost even when two huge files hold most bytes.
    mix = SizeMix(small_files=2000, small_bytes=300 * MIB, large_files=2, large_bytes=4000 * MIB)
    assert choose(cpus=4, mix=mix).processes == 4


def test_empty_sample():
    # Complete and empty: nothing to spread over processes.
    assert choose(cpus=4, mix=SizeMix()).processes == 0
    # Stopped early without a file seen (the time bound): the job's size is unknown.
    assert choose(cpus=4, mix=SizeMix(complete=False)) == Choice(1, 8, choose(cpus=4, mix=SizeMix(complete=False)).reason)


@pytest.mark.parametrize("mix", [
    SizeMix(small_files=1, small_bytes=100_000),
    SizeMix(small_files=250, small_bytes=250 * 256 * 1024),
    SizeMix(small_files=3, small_bytes=1 * MIB, large_files=1, large_bytes=40 * MIB),
])
def test_a_job_smaller_than_a_worker_start_runs_in_the_coordinator(mix):
    c = choose(cpus=8, mix=mix)
    assert (c.processes, c.threads) == (0, 8)
    assert "small job" in c.reason


@pytest.mark.parametrize("mix", [
    SizeMix(small_files=251, small_bytes=251 * 1024),  # too many files
    SizeMix(large_files=1, large_bytes=65 * MIB),  # too many bytes
    SizeMix(small_files=10, small_bytes=10 * 1024, complete=False),  # more files follow
])
def test_a_job_past_the_inline_bounds_gets_worker_processes(mix):
    assert choose(cpus=8, mix=mix).processes >= 1


def test_sample_mix_counts_and_stops_at_the_limit(tmp_path):
    for i in range(5):
        (tmp_path / f"s{i}").write_bytes(b"x" * 10)
    (tmp_path / "big").write_bytes(b"y" * 100)
    mix = sample_mix(str(tmp_path), threshold=50)
    assert (mix.small_files, mix.small_bytes, mix.large_files, mix.large_bytes, mix.complete) == (5, 50, 1, 100, True)
    assert sample_mix(str(tmp_path), threshold=50, limit=3).complete is False
