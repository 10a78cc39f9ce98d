"""Keys in S3's order: the walk yields them sorted by UTF-8 bytes (what verify's merge relies on), NFC
keys, and names that normalise to one key are reported, not merged silently."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpupload.core.keys import (
    has_undecodable,
    key_bytes,
    name_bytes,
    normalize,
    printable_name,
    sort_name,
    unescaped,
)
from mpupload.run.plan import task_for
from mpupload.source.scan import FileEntry, Skipped, scan

NFC_E, NFD_E = "\u00e9", "e\u0301"
# Characters around "/" (0x2F) in byte order, and both spellings of "é": what makes walk order hard.
# A lone combining mark (U+0301, U+0338) after "/" checks that normalisation never reaches across it.
# Bytes that are not UTF-8 (as os.fsdecode gives them: 0xFF, a lone 0xE9, a truncated sequence) and "%",
# "F", "E" to spell their escapes literally: the escaped keys must keep the order and never merge silently.
BAD = [os.fsdecode(b) for b in (b"\xff", b"\xe9", b"\xe6\x97")]
NAME = st.lists(st.sampled_from(["a", "b", "-", ".", "0", " ", "~", NFC_E, NFD_E, "\u00c5", "A\u030a", "\u65e5",
                                 "\u0301", "\u0338", "%", "F", "E", *BAD]), min_size=1, max_size=4).map("".join).filter(
    lambda n: n not in (".", ".."))


def _build(root: Path, rels: list[tuple[str, ...]]) -> set[str]:
    """Create what can be created of rels (a name cannot be both a file and a folder); the files made."""
    made: set[str] = set()
    for parts in rels:
        p = root.joinpath(*parts)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.exists():
                continue
            p.write_bytes(b"x")
            made.add("/".join(parts))
        except (FileExistsError, NotADirectoryError):
            continue
    return made


def _keys(items) -> list[str]:
    return [normalize(i.rel) for i in items if isinstance(i, FileEntry)]


def test_folder_sorts_after_names_that_share_its_prefix(tmp_path):
    _build(tmp_path, [("a", "b"), ("a-b",), ("a.txt",), ("a0",), ("a", "c")])
    rels = [i.rel for i in scan(str(tmp_path), normalization="none")]
    # Byte order of the keys: "-" 0x2D < "." 0x2E < "/" 0x2F < "0" 0x30; sorting by bare name gives a/ first.
    assert rels == ["a-b", "a.txt", "a/b", "a/c", "a0"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(NAME, min_size=1, max_size=3).map(tuple), min_size=1, max_size=25))
def test_walk_yields_keys_in_utf8_byte_order_and_every_file_once(rels):
    with tempfile.TemporaryDirectory() as d:
        made = _build(Path(d), rels)
        for mode in ("none", "nfc"):
            items = list(scan(d, normalization=mode))
            keys = [normalize(i.rel, mode) for i in items if isinstance(i, FileEntry)]
            assert [key_bytes(k) for k in keys] == sorted(key_bytes(k) for k in keys)
            assert len(set(keys)) == len(keys)  # strictly increasing: one file per key
            failed = [i for i in items if isinstance(i, Skipped) and i.failed]
            assert {i.rel for i in items} == made  # nothing lost: uploaded or reported
            assert all("also the key of" in f.reason for f in failed)
            # Every key is valid UTF-8 and gives back the bytes of the name it came from (NFC aside).
            for i in items:
                # (A valid name that spells such an escape, "%FE", is its own key; name_bytes cannot tell.)
                if isinstance(i, FileEntry) and mode == "none" and all(
                        has_undecodable(p) or unescaped(p) is None for p in i.rel.split("/")):
                    assert name_bytes(normalize(i.rel, mode)) == os.fsencode(i.rel)


@given(st.lists(NAME, min_size=1, max_size=4))
def test_nfc_of_a_path_is_the_nfc_of_its_parts(parts):
    # The walk normalises names one at a time; the key normalises the whole path: they must agree.
    assert normalize("/".join(parts)) == "/".join(normalize(p) for p in parts)
    assert unicodedata.is_normalized("NFC", normalize("/".join(parts)))


def test_sort_name_marks_folders():
    assert sort_name("a", is_dir=True) == "a/" and sort_name("a", is_dir=False) == "a"
    assert sort_name(NFD_E, is_dir=False) == NFC_E and sort_name(NFD_E, is_dir=False, mode="none") == NFD_E


def test_nfd_tree_gives_nfc_keys_and_keeps_the_name_on_disk(tmp_path):
    (tmp_path / f"caf{NFD_E}").mkdir()
    (tmp_path / f"caf{NFD_E}" / f"r{NFD_E}sum{NFD_E}.txt").write_bytes(b"x")
    [entry] = scan(str(tmp_path))
    task = task_for(entry, prefix="p", year_pattern=None)
    assert task.key == f"p/caf{NFC_E}/r{NFC_E}sum{NFC_E}.txt"
    assert task.rel == f"caf{NFD_E}/r{NFD_E}sum{NFD_E}.txt"  # source-path metadata: the real name
    assert task_for(entry, prefix="p", year_pattern=None, normalization="none").key == f"p/{task.rel}"


def test_two_names_for_one_key_are_both_failed_naming_each_other(tmp_path):
    # Folders that normalise alike are one key space: their files collide only if their names do too.
    for folder, name in ((f"caf{NFC_E}", "x"), (f"caf{NFD_E}", "x"), (f"caf{NFD_E}", "only-here")):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_bytes(folder.encode())
    items = list(scan(str(tmp_path)))
    failed = {i.rel: i.reason for i in items if isinstance(i, Skipped)}
    assert set(failed) == {f"caf{NFC_E}/x", f"caf{NFD_E}/x"}
    assert all(i.failed for i in items if isinstance(i, Skipped))
    assert ascii(f"caf{NFD_E}/x")[1:-1] in failed[f"caf{NFC_E}/x"]
    assert ascii(f"caf{NFC_E}/x")[1:-1] in failed[f"caf{NFD_E}/x"]
    assert [i.rel for i in items if isinstance(i, FileEntry)] == [f"caf{NFD_E}/only-here"]
    assert not [i for i in scan(str(tmp_path), normalization="none") if isinstance(i, Skipped)]


def test_a_file_and_a_folder_of_one_name_do_not_collide(tmp_path):
    (tmp_path / NFC_E).write_bytes(b"file")
    (tmp_path / NFD_E).mkdir()
    (tmp_path / NFD_E / "in").write_bytes(b"in")
    assert _keys(scan(str(tmp_path))) == [NFC_E, f"{NFC_E}/in"]


def test_name_bytes_that_are_not_utf8_get_an_escaped_reversible_key(tmp_path):
    fd = os.open(os.fsencode(tmp_path) + b"/bad-\xff\xfe-100%.txt", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    [item] = scan(str(tmp_path))
    assert isinstance(item, FileEntry)  # a file like any other, not skipped
    key = task_for(item, prefix="p", year_pattern=None).key
    assert key == "p/bad-%FF%FE-100%25.txt"
    assert name_bytes(key[2:]) == b"bad-\xff\xfe-100%.txt"


@pytest.mark.parametrize("name", ["100%.txt", "a%41b", "%", "%%FF", "%ff%fe", "\u65e5%E6%97%A5", "%FF%"])
def test_a_valid_name_is_its_own_key_and_its_own_name(name):
    assert normalize(name, "none") == name
    assert name_bytes(name) == name.encode()


@given(st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_escaping_reverses_for_any_bytes(raw):
    key = normalize(os.fsdecode(raw), "none")
    key.encode("utf-8")  # always a valid key
    assert name_bytes(key) == raw


def test_a_literal_escape_beside_the_bytes_it_spells_fails_both(tmp_path):
    (tmp_path / "caf%E9").write_bytes(b"literal")
    fd = os.open(os.fsencode(tmp_path) + b"/caf\xe9", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    items = list(scan(str(tmp_path)))
    assert len(items) == 2 and all(isinstance(i, Skipped) and i.failed and "also the key of" in i.reason
                                   for i in items)


def test_printable_name_shows_undecodable_bytes_as_escapes():
    assert printable_name(os.fsdecode(b"a\xffb")) == "a\\xffb"
    assert printable_name("caf\u00e9") == "caf\u00e9"
