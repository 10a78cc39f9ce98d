"""The selection's rules (source/filters.py): pruning is exact (a pruned folder holds nothing the globs
would keep), patterns keep fnmatch's meaning, durations and bounds read as documented."""

from __future__ import annotations

import fnmatch
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpupload.core.errors import SettingsError
from mpupload.core.units import parse_duration
from mpupload.source.filters import EXCLUDE, Filters, read_patterns
from mpupload.source.scan import FileEntry, scan

_PART = st.text(alphabet="ab.*?/s", min_size=1, max_size=6)
_NAME = st.text(alphabet="ab.s", min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(pattern=_PART, folder=st.lists(_NAME, min_size=1, max_size=3), below=st.lists(_NAME, min_size=1, max_size=3))
def test_a_pruned_folder_holds_only_paths_the_pattern_excludes(pattern, folder, below):
    f = Filters(exclude=(pattern,))
    rel_dir = "/".join(folder)
    if f.prunes(rel_dir, os.stat(".")):
        path = rel_dir + "/" + "/".join(below)
        assert fnmatch.fnmatchcase(path, pattern) or ("/" not in pattern and fnmatch.fnmatchcase(below[-1], pattern))
        assert not Filters(exclude=(pattern,)).wants(path)


@pytest.mark.parametrize(("pattern", "folder", "pruned"), [
    (".snapshot/*", ".snapshot", True),
    (".snapshot/*", "a/.snapshot", False),
    ("*/.snapshot/*", "a/b/.snapshot", True),
    ("*/.snapshot/*", ".snapshot", False),
    (".snap*", ".snapshot", True),  # every path below starts with .snap
    ("*", "anything", True),
    (".snapshot/*.jpg", ".snapshot", False),  # its files one by one: the folder may hold other names
    (".snapshot", ".snapshot", False),  # a pattern without * names files, never a folder's contents
])
def test_prune_rule(pattern, folder, pruned):
    assert bool(Filters(exclude=(pattern,)).prunes(folder, os.stat("."))) is pruned


def test_globs_keep_fnmatch_meaning_and_names_match_patterns_without_slash():
    f = Filters(include=("*.jp2", "notes/*"), exclude=("1921/*",))
    assert f.wants("1920/a.jp2") and f.wants("notes/x.txt")
    assert not f.wants("1920/a.txt") and not f.wants("1921/a.jp2")
    assert f.removed == {"--include": 1, EXCLUDE: 1}


def test_exclude_from_reads_patterns_skipping_comments_and_blanks(tmp_path):
    (tmp_path / "ex").write_text("# snapshots\n\n  .snapshot/*  \n*.tmp\n#*.jp2\n")
    assert read_patterns(str(tmp_path / "ex")) == (".snapshot/*", "*.tmp")
    with pytest.raises(SettingsError, match="cannot read"):
        read_patterns(str(tmp_path / "missing"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400), ("1.5h", 5400),
    ("10s", 10), (" 7D ", 604800), (45, 45),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7x", "d", "-5m", "1h 30", "h1", "3 days"])
def test_bad_durations(text):
    with pytest.raises(SettingsError, match="not a duration"):
        parse_duration(text)


def test_size_and_age_bounds_are_inclusive_and_counted_once_by_the_first_filter(tmp_path):
    now = 1_000_000_000.0
    for name, size, age in (("small", 9, 0), ("low", 10, 100), ("high", 20, 100), ("big", 21, 100),
                            ("fresh", 15, 59), ("old", 15, 3601), ("tiny-old", 1, 9999)):
        p = tmp_path / name
        p.write_bytes(b"x" * size)
        os.utime(p, (now - age, now - age))
    f = Filters(min_size=10, max_size=20, min_age=60, max_age=3600, now=now)
    kept = sorted(i.rel for i in scan(str(tmp_path), filters=f) if isinstance(i, FileEntry))
    assert kept == ["high", "low"]
    assert f.report() == {"--min-size": {"files": 2, "folders": 0}, "--max-size": {"files": 1, "folders": 0},
                          "--min-age": {"files": 1, "folders": 0}, "--max-age": {"files": 1, "folders": 0}}
