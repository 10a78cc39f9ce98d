"""--files-from: lines become paths inside the source, the list is sorted on disk into key order (however
many runs it takes), duplicates are one file, and what cannot be uploaded is reported with a reason."""

from __future__ import annotations

import random

import pytest

from mpupload.core.keys import key_bytes, normalize
from mpupload.settings.config import Settings
from mpupload.source import extsort, manifest
from mpupload.source.filters import Filters
from mpupload.source.scan import FileEntry, Skipped
from mpupload.source.sources import iter_source

NFC_E, NFD_E = "\u00e9", "e\u0301"


@pytest.mark.parametrize("line, rel", [
    (b"a/b.txt", "a/b.txt"),
    (b"./a//b.txt", "a/b.txt"),
    (b"/src/a/b.txt", "a/b.txt"),
    (b"/src", ""),
    (b".", ""),
    (b"/elsewhere/a", None),
    (b"/srcx/a", None),
    (b"../a", None),
    (b"a/../../b", None),
    (b"bad-\xff", "bad-\udcff"),
])
def test_clean(line, rel):
    assert manifest.clean(line, "/src") == rel


def test_lines_newline_crlf_and_nul(tmp_path):
    (tmp_path / "n.txt").write_bytes(b"a\r\nb\n\nc")
    assert list(manifest.read_lines(str(tmp_path / "n.txt"), null=False)) == [b"a", b"b", b"c"]
    (tmp_path / "z.txt").write_bytes(b"new\nline\0\0b\r\0")
    assert list(manifest.read_lines(str(tmp_path / "z.txt"), null=True)) == [b"new\nline", b"b\r"]


def _tree(root, rels):
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())


@pytest.mark.parametrize("run_lines, fan_in", [(50_000, 128), (3, 2)], ids=["one-run", "many-runs-three-levels"])
def test_entries_in_key_order_duplicates_once(tmp_path, monkeypatch, run_lines, fan_in):
    monkeypatch.setattr(extsort, "RUN_RECORDS", run_lines)
    monkeypatch.setattr(extsort, "FAN_IN", fan_in)
    src = tmp_path / "src"
    rels = [f"{y}/{n}" for y in ("1920", "1920-x", "a b", NFD_E, "z") for n in ("p.jp2", "p-1.jp2", "q")]
    _tree(src, rels)
    lines = rels * 2  # every line twice: one file each
    random.Random(3).shuffle(lines)
    (tmp_path / "list").write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = list(manifest.entries(str(src), str(tmp_path / "list")))
    assert all(isinstance(i, FileEntry) for i in items)
    keys = [normalize(i.rel) for i in items]
    assert keys == sorted(set(keys), key=key_bytes) and len(keys) == len(rels)
    assert {i.rel for i in items} == set(rels)  # the name on disk, NFD kept


def test_what_cannot_be_uploaded_is_reported(tmp_path):
    src = tmp_path / "src"
    _tree(src, [f"caf{NFC_E}", f"caf{NFD_E}", "dir/in", "ok"])
    (src / "link").symlink_to("ok")
    (tmp_path / "list").write_text("\n".join([f"caf{NFC_E}", f"caf{NFD_E}", "dir", "missing", "../out", "ok",
                                              "link", "."]), encoding="utf-8")
    items = list(manifest.entries(str(src), str(tmp_path / "list")))
    got = {i.rel: (i.failed, i.reason) for i in items if isinstance(i, Skipped)}
    assert [i.rel for i in items if isinstance(i, FileEntry)] == ["ok"]
    assert got["missing"] == (True, "listed in --files-from but not found")
    assert got["../out"][0] and "outside the source folder" in got["../out"][1]
    assert got["dir"][0] is False and "a folder" in got["dir"][1]
    assert got["link"][0] is False and "symbolic link" in got["link"][1]
    assert got[f"caf{NFC_E}"][0] and ascii(f"caf{NFD_E}")[1:-1] in got[f"caf{NFC_E}"][1]
    assert got[f"caf{NFD_E}"][0] and ascii(f"caf{NFC_E}")[1:-1] in got[f"caf{NFD_E}"][1]


def test_selection_applies_to_the_list(tmp_path):
    src = tmp_path / "src"
    _tree(src, ["a.jp2", "b.txt"])
    (tmp_path / "list").write_text("a.jp2\nb.txt\ngone.txt\n")
    items = list(manifest.entries(str(src), str(tmp_path / "list"), filters=Filters(include=("*.jp2",))))
    assert [i.rel for i in items] == ["a.jp2"]  # gone.txt is not selected either: not reported


def test_iter_source_reads_a_list_twice_from_one_sort(tmp_path, monkeypatch):
    src = tmp_path / "src"
    _tree(src, ["b", "a"])
    (tmp_path / "list").write_text("b\na\n")
    s = Settings(source=str(src), files_from=str(tmp_path / "list"))
    sorts = []
    real = manifest._sort
    monkeypatch.setattr(manifest, "_sort", lambda *a, **k: sorts.append(1) or real(*a, **k))
    assert [i.rel for i in iter_source(s)] == [i.rel for i in iter_source(s)] == ["a", "b"]
    assert len(sorts) == 1  # the census and the planner share it (stdin could not be read twice)
