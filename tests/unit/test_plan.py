import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpupload.core.messages import FileTask
from mpupload.run.plan import Batcher, key_problem, object_key, year_of

JAN_1999 = 915_148_800 * 10**9  # 1999-01-01T00:00:00Z in ns


@pytest.mark.parametrize("rel, expected", [
    ("1920/page.jp2", "1920"),
    ("papers/1943/05/p.jp2", "1943"),
    ("1799/p.jp2", "1999"),          # not plausible: falls back to mtime
    ("2101/p.jp2", "1999"),
    ("12345/p.jp2", "1999"),
    ("1950.jp2", "1999"),            # the file name is not a folder
    ("x/1930/1940/p.jp2", "1930"),   # the first year-like folder wins
])
def test_year_from_first_plausible_folder(rel, expected):
    assert year_of(rel, JAN_1999) == expected


def batches(tasks, *, max_files: int, max_bytes: int):
    """Every task through one Batcher, as the planner feeds it, then the last partial batches."""
    b = Batcher(max_files=max_files, max_bytes=max_bytes)
    for t in tasks:
        yield from b.add(t)
    yield from b.flush()


def test_year_pattern_then_mtime():
    rx = re.compile(r"_(\d{4})-\d\d-\d\d")
    assert year_of("scans/atl_1934-02-03_p1.jp2", JAN_1999, rx) == "1934"
    assert year_of("scans/atl_0034-02-03_p1.jp2", JAN_1999, rx) == "1999"
    assert year_of("scans/none.jp2", JAN_1999, rx) == "1999"


@pytest.mark.parametrize("prefix, rel, key", [
    ("atlanta-constitution", "1920/page.jp2", "atlanta-constitution/1920/page.jp2"),
    ("atl/", "1920/p", "atl/1920/p"),
    ("/atl//", "a b/ü.jp2", "atl/a b/ü.jp2"),
    ("", "1920/p", "1920/p"),
])
def test_object_key(prefix, rel, key):
    assert object_key(prefix, rel) == key


def test_key_limit_counts_utf8_bytes():
    assert key_problem("a" * 1024) is None
    assert "1025 bytes" in key_problem("a" * 1025)
    assert key_problem("é" * 512) is None and key_problem("é" * 513) is not None


@given(st.lists(st.text(alphabet="abc/é ", min_size=1, max_size=30), max_size=20), st.text(alphabet="xy/", max_size=10))
def test_keys_never_start_with_or_double_slash_from_prefix(rels, prefix):
    for rel in rels:
        key = object_key(prefix, rel)
        assert key.endswith(rel)
        assert not key.startswith("/") or rel.startswith("/")


def _task(i: int, part: str, size: int) -> FileTask:
    return FileTask(path=f"/x/{i}", rel=f"{part}/{i}", key=f"k/{i}", size=size, mtime_ns=0, inode=i, partition=part)


@given(st.lists(st.tuples(st.sampled_from(["1920", "1943", "1969"]), st.integers(0, 10_000)), max_size=200),
       st.integers(1, 20), st.integers(1, 50_000))
def test_batches_keep_every_task_once_one_partition_each_and_respect_caps(items, max_files, max_bytes):
    tasks = [_task(i, p, s) for i, (p, s) in enumerate(items)]
    out = list(batches(tasks, max_files=max_files, max_bytes=max_bytes))
    seen = [t for b in out for t in b.tasks]
    assert sorted(t.inode for t in seen) == list(range(len(tasks)))
    assert len({b.batch_id for b in out}) == len(out)
    for b in out:
        assert {t.partition for t in b.tasks} == {b.partition}
        assert len(b.tasks) <= max_files
        # Only the last file added may push a batch over the byte cap.
        assert sum(t.size for t in b.tasks[:-1]) < max_bytes


def test_big_partition_is_split_so_idle_workers_can_take_part_of_it():
    tasks = [_task(i, "1943", 1000) for i in range(100)] + [_task(1000, "1920", 10)]
    batcher = Batcher(max_files=10, max_bytes=10**9)
    full = [b for t in tasks for b in batcher.add(t)]
    assert len(full) == 10 and all(b.partition == "1943" for b in full)
