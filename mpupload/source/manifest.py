"""`--files-from`: the files of a run read from a list (an inventory that came with a migration) instead of
a walk, with the same `FileEntry` / `Skipped` output as `scan`.

The list is sorted by key on disk first (extsort.py: runs sorted in memory, then merged), for the
same reasons the walk yields keys in order: verify merges it with the destination listing, and two lines
that name one key (a duplicate, or NFD and NFC spellings of one name) meet as neighbours. Memory stays
that of one run whatever the length of the list. The sorted copy is made once per process and list (the
upload's census and its feeder both read it) and removed at exit.
"""

from __future__ import annotations

import itertools
import os
import stat
import sys
import threading
from collections.abc import Iterator
from functools import partial

from mpupload.core.keys import normalize
from mpupload.source import extsort
from mpupload.source.filters import Filtered, Filters
from mpupload.source.scan import FileEntry, Resolver, Skipped, collisions, display_name

_BLOCK = 1 << 20
_BAD = b"\x01"  # marks a line that names nothing inside the source (kept to be reported, in order)

_lock = threading.Lock()
_sorted: dict[tuple, str] = {}


def read_lines(path: str, *, null: bool) -> Iterator[bytes]:
    """The raw entries of a list: newline- (a trailing CR dropped too) or NUL-separated; '-' is stdin."""
    sep = b"\0" if null else b"\n"
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        tail = b""
        while block := stream.read(_BLOCK):
            *lines, tail = (tail + block).split(sep)
            yield from _kept(lines, null)
        yield from _kept([tail], null)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _kept(lines: list[bytes], null: bool) -> Iterator[bytes]:
    for line in lines:
        if not null and line.endswith(b"\r"):
            line = line[:-1]
        if line:
            yield line


def clean(line: bytes, root: str) -> str | None:
    """The "/"-separated path inside `root` a line names ("./a//b" -> "a/b"; an absolute path inside root
    is made relative), "" for the root itself, or None for a path that leaves the source folder."""
    text = os.fsdecode(line)
    if text.startswith("/"):
        inside = os.path.normpath(text)
        if inside != root and not inside.startswith(root.rstrip("/") + "/"):
            return None
        text = inside[len(root):]
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def _records(path: str, *, null: bool, root: str, mode: str) -> Iterator[bytes]:
    """One record per line: the path inside the source, or the line marked as naming nothing there."""
    for line in read_lines(path, null=null):
        rel = clean(line, root)
        if rel is None:
            yield _BAD + line
        elif rel:
            yield os.fsencode(rel)


def _order(rec: bytes, mode: str) -> str:
    return "" if rec.startswith(_BAD) else normalize(os.fsdecode(rec), mode)


def _sort(path: str, *, null: bool, root: str, mode: str) -> str:
    """One file of records sorted by key: bad lines first, then paths in S3's key order."""
    return extsort.sort_to_file(_records(path, null=null, root=root, mode=mode), key=partial(_order, mode=mode))


def sorted_list(path: str, *, null: bool, root: str, mode: str) -> str:
    """The sorted copy of a list, made once per process (concurrent callers wait for the first)."""
    ident: tuple = (path, null, root, mode)
    if path != "-":
        st = os.stat(path)
        ident += (st.st_size, st.st_mtime_ns, st.st_ino)
    with _lock:
        if ident not in _sorted:
            _sorted[ident] = _sort(path, null=null, root=root, mode=mode)
        return _sorted[ident]


def entries(root: str, files_from: str, *, null: bool = False, follow_symlinks: bool = False,
            filters: Filters | None = None, normalization: str = "nfc") -> Iterator[FileEntry | Skipped | Filtered]:
    """Every file the list names, in key order, like `scan` yields a tree's. A line repeated is one file;
    two lines for one key are both failed; a missing file fails; a folder is skipped (list its files)."""
    root = os.path.abspath(root)
    filters = filters or Filters()
    filters.root_dev = os.stat(root).st_dev  # --one-file-system: a listed file on another device is left out
    resolver = Resolver(follow_symlinks=follow_symlinks, filters=filters)
    records = extsort.read(sorted_list(files_from, null=null, root=root, mode=normalization))
    for _, same_key in itertools.groupby(records, key=lambda r: r if r.startswith(_BAD) else _order(r, normalization)):
        found = []
        for rec in dict.fromkeys(same_key):  # a path listed twice is one file
            if rec.startswith(_BAD):
                text = os.fsdecode(rec[len(_BAD):])
                yield Skipped(display_name(text), "listed in --files-from but outside the source folder", failed=True)
                continue
            item = _entry(root, os.fsdecode(rec), resolver)
            if item is not None:
                found.append(item)
        yield from collisions(found)


def _entry(root: str, rel: str, resolver: Resolver) -> FileEntry | Skipped | Filtered | None:
    path = os.path.join(root, rel)
    try:
        found = resolver.target(path, rel, os.lstat(path))
        if found is None or isinstance(found, Skipped):
            return found
        if stat.S_ISDIR(found.st_mode):
            return Skipped(display_name(rel), "a folder: --files-from takes files (list the files in it)")
        return resolver.file(path, rel, found)
    except FileNotFoundError:
        return Skipped(display_name(rel), "listed in --files-from but not found", failed=True) \
            if resolver.filters.wants(rel) else None
    except OSError as exc:
        return Skipped(display_name(rel), f"cannot stat: {exc.strerror or exc}", failed=True)
