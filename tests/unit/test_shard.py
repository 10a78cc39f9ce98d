"""--shard K/N: a stable, disjoint, covering split by xxh64 of the relative path's key form."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from mpupload.core.shard import Shard, ShardError, shard_of
from mpupload.settings.config import Settings, SettingsError
from mpupload.state.journal import default_journal_path

ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[2])
PATHS = [f"{1900 + i % 80}/reel-{i:05d}/page-{i % 37:03d}.jp2" for i in range(4000)]


@pytest.mark.parametrize("text,expected", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 4/4 ", (4, 4)), ("17/100", (17, 100))])
def test_parse(text, expected):
    s = Shard.parse(text)
    assert (s.index, s.count) == expected
    assert s.label == f"{expected[0]}of{expected[1]}"


@pytest.mark.parametrize("text", ["0/4", "5/4", "4", "a/b", "1/0", "-1/4", "2/4/8", ""])
def test_parse_refuses(text):
    with pytest.raises(ShardError, match="K/N"):
        Shard.parse(text)


@pytest.mark.parametrize("text", ["0/4", "3/2", "x"])
def test_settings_refuse_a_bad_shard_as_a_usage_error(text):
    with pytest.raises(SettingsError, match="--shard"):
        Settings(source="/x", bucket="b", shard=text).validated()


@given(st.text(min_size=1, max_size=60), st.integers(min_value=1, max_value=64))
def test_every_path_is_in_exactly_one_shard(rel, n):
    holders = [k for k in range(1, n + 1) if Shard(k, n).holds(rel)]
    assert len(holders) == 1


def test_the_hash_is_xxh64_of_the_utf8_key_form():
    rel = "1921/caf\u00e9/page.jp2"
    assert shard_of(rel, 7) == xxhash.xxh64_intdigest(rel.encode("utf-8")) % 7 + 1


def test_two_spellings_of_one_name_are_in_one_shard():
    nfc = "1921/caf\u00e9/\u00e9t\u00e9.jp2"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert all(shard_of(nfd, n) == shard_of(nfc, n) for n in range(2, 50))


def test_the_split_is_even_enough():
    counts = [sum(1 for p in PATHS if Shard(k, 4).holds(p)) for k in range(1, 5)]
    assert sum(counts) == len(PATHS)
    assert all(abs(c - len(PATHS) / 4) < len(PATHS) / 4 * 0.15 for c in counts), counts


def test_the_split_is_the_same_in_every_process():
    """Python's hash() of a str changes with PYTHONHASHSEED; the shard of a path must not."""
    code = ("import sys; from mpupload.core.shard import shard_of; "
            "print(''.join(str(shard_of(p, 9)) for p in sys.stdin.read().split()))")
    outs = set()
    for seed in ("1", "2", "random"):
        done = subprocess.run([sys.executable, "-c", code], input="\n".join(PATHS[:300]), capture_output=True,
                              text=True, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}, check=True, cwd=ROOT)
        outs.add(done.stdout.strip())
    assert outs == {"".join(str(shard_of(p, 9)) for p in PATHS[:300])}


def test_each_shard_has_its_own_default_journal():
    common = {"source": "/data/atl", "endpoint_url": None, "bucket": "b", "prefix": "atl"}
    names = {default_journal_path(**common, shard=label) for label in (None, "1of4", "2of4", "3of4", "4of4")}
    assert len(names) == 5
