"""Keys in S3's order: the walk yields them sorted by UTF-8 bytes (what verify's merge relies on), NFC
keys, and names that normalise to one key are reported, not merged silently."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mpupload.core.keys import key_bytes, normalize, sort_name
from mpupload.run.plan import task_for
from mpupload.source.scan import FileEntry, Skipped, scan

NFC_E, NFD_E = "\u00e9", "e\u0301"
# Characters around "/" (0x2F) in byte order, and both spellings of "é": what makes walk order hard.
# A lone combining mark (U+0301, U+0338) after "/" checks that normalisation never reaches across it.
NAME = st.lists(st.sampled_from(["a", "b", "-", ".", "0", " ", "~", NFC_E, NFD_E, "\u00c5", "A\u030a", "\u65e5",
                                 "\u0301", "\u0338"]), min_size=1, max_size=4).map("".join).filter(
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
            assert (not failed) if mode == "none" else all("also the key of" in f.reason for f in failed)


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


def test_unreadable_name_bytes_still_skipped(tmp_path):
    fd = os.open(os.fsencode(tmp_path) + b"/bad-\xff", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    [item] = scan(str(tmp_path))
    assert isinstance(item, Skipped) and not item.failed and "UTF-8" in item.reason
