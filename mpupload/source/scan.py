"""Walking the source tree. Streams entries (never lists the whole tree in memory); anything that is not
a regular file comes out as a `Skipped` entry with a reason rather than an exception. FIFOs, sockets and
devices are recognised from lstat and never opened. What should have been uploaded and cannot be read (a
folder that cannot be listed, an entry that cannot be stat'ed, one that vanished meanwhile) is `failed`:
exit 0 means every file under the source landed, unless a filter or the symlink policy left it out. Names
that are not valid UTF-8 are files like any other: their keys escape the bad bytes (keyorder.py).

Files come out in the order of their keys, which is the order S3 lists them in (keyorder.py): verify merges
the walk with a listing instead of holding either, and two names that normalise to one key (an NFD and
an NFC "café" side by side) meet as neighbours, so they are found with one directory listing in memory.
Folders whose names normalise alike are walked as one folder, as their keys share one key space."""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mpupload.core.keys import printable_name, sort_name
from mpupload.source.filters import Filtered, Filters


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # absolute filesystem path (may carry surrogate escapes)
    rel: str  # path relative to the source root, "/" separated, as named on disk (not normalised)
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class Skipped:
    rel: str
    reason: str
    # True for what should have been uploaded and cannot be (two names for one key, a listed file that
    # is not there): the run reports it failed (exit 1), where a FIFO or a link is only skipped.
    failed: bool = False


display_name = printable_name  # a name that may hold undecodable bytes, as text (byte 0xFF as backslash-x-f-f)


def _special_kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return None


class Resolver:
    """What one path stands for: the same rules for a walked tree and for a --files-from list."""

    def __init__(self, *, follow_symlinks: bool, filters: Filters):
        self.follow, self.filters = follow_symlinks, filters

    def target(self, path: str, rel: str, lst: os.stat_result) -> os.stat_result | Skipped | None:
        """The stat of the file or folder `rel` names (a link's target when following links), a Skipped
        entry, or None when the selection leaves it out. Folders are returned whatever the selection."""
        if not stat.S_ISLNK(lst.st_mode):
            return lst
        if not self.follow:
            if not self.filters.wants(rel):
                return None
            return Skipped(display_name(rel), "symbolic link (use --follow-symlinks to upload its target)")
        try:
            return os.stat(path)
        except OSError as exc:
            if not self.filters.wants(rel):
                return None
            reason = "symlink loop" if exc.errno == errno.ELOOP else f"broken symbolic link: {exc.strerror}"
            return Skipped(display_name(rel), reason)

    def file(self, path: str, rel: str, st: os.stat_result) -> FileEntry | Skipped | Filtered | None:
        """The entry for a non-folder `rel` whose (target's) stat is `st`."""
        why = self.filters.file(rel, st)
        if why:
            return Filtered(rel, why) if self.filters.marked(why) else None
        kind = _special_kind(st.st_mode)
        if kind:
            return Skipped(display_name(rel), f"not a regular file: {kind}")
        return FileEntry(path=path, rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)


def collisions(items: Iterable[FileEntry | Skipped | Filtered]) -> list[FileEntry | Skipped | Filtered]:
    """Items whose keys are all equal: two or more files among them would overwrite each other, so each
    is reported failed, naming the others; neither lands (which one should win is the user's call)."""
    items = list(items)
    files = [i for i in items if isinstance(i, FileEntry)]
    if len(files) < 2:
        return items
    out: list[FileEntry | Skipped | Filtered] = [i for i in items if not isinstance(i, FileEntry)]
    for f in files:
        # Both spellings look alike on a terminal: the escaped form shows which code points differ.
        others = ", ".join(f"{o.rel!r} (spelled {ascii(o.rel)[1:-1]})" for o in files if o is not f)
        out.append(Skipped(f.rel, f"its object key is also the key of {others}: the names differ only in "
                                  "Unicode normalisation (--key-normalization nfc); rename one of them",
                           failed=True))
    return out


def scan(root: str, *, follow_symlinks: bool = False, filters: Filters | None = None,
         normalization: str = "nfc") -> Iterator[FileEntry | Skipped | Filtered]:
    """Yield every file under `root`, depth first, in the order of their keys (S3's listing order for
    keys made with `normalization`, so years come out in order too). Folders `filters` prunes are not
    listed at all (filters.py)."""
    filters = filters or Filters()
    resolver = Resolver(follow_symlinks=follow_symlinks, filters=filters)
    root = os.path.abspath(root)
    st = os.stat(root)
    filters.root_dev = st.st_dev
    # Directories on the current path, by (device, inode): a symlink back up the tree is a loop.
    yield from _walk([(root, "")], resolver, normalization, {(st.st_dev, st.st_ino)})


def _is_dir(entry: os.DirEntry, follow: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def _walk(folders: list[tuple[str, str]], resolver: Resolver, mode: str,
          ancestors: set) -> Iterator[FileEntry | Skipped | Filtered]:
    """The files in `folders` (usually one; several when their names normalise to one key) as one listing."""
    listed: list[tuple[str, str, os.DirEntry]] = []
    for directory, rel_dir in folders:
        try:
            with os.scandir(directory) as it:
                listed.extend((sort_name(e.name, is_dir=_is_dir(e, resolver.follow), mode=mode), rel_dir, e)
                              for e in it)
        except OSError as exc:
            # Its files cannot be named, let alone uploaded: the folder itself is reported failed.
            yield Skipped(display_name(rel_dir) or ".", f"folder unreadable: {exc.strerror or exc}", failed=True)
    listed.sort(key=lambda t: t[0])
    for _, group in itertools.groupby(listed, key=lambda t: t[0]):
        files: list[FileEntry | Skipped | Filtered] = []
        subfolders: list[tuple[str, str, tuple[int, int]]] = []
        for _, rel_dir, entry in group:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                found = resolver.target(entry.path, rel, entry.stat(follow_symlinks=False))
                if isinstance(found, os.stat_result) and not stat.S_ISDIR(found.st_mode):
                    found = resolver.file(entry.path, rel, found)
            except OSError as exc:  # vanished or unreadable between listing and stat
                found = Skipped(display_name(rel), f"cannot stat: {exc.strerror or exc}", failed=True)
            if isinstance(found, os.stat_result):
                ident = (found.st_dev, found.st_ino)
                if resolver.filters.prunes(rel, found):
                    continue  # nothing below it could be uploaded: not even listed
                if ident in ancestors:
                    files.append(Skipped(display_name(rel), "symlink loop: points back to a folder above it"))
                else:
                    subfolders.append((entry.path, rel, ident))
            elif found is not None:
                files.append(found)
        yield from collisions(files)
        if subfolders:
            idents = {ident for _, _, ident in subfolders} - ancestors
            ancestors |= idents
            try:
                yield from _walk([(path, rel) for path, rel, _ in subfolders], resolver, mode, ancestors)
            finally:
                ancestors -= idents


def open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """Open for reading only if it is still a regular file; the file and its fstat (callers need both, so
    the stat is taken once). O_NONBLOCK: a FIFO swapped in since the scan would otherwise block the open
    forever (it has no effect on regular files)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "became a directory", path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "no longer a regular file (a FIFO, socket or device now)", path)
        return open(fd, "rb", buffering=0), st
    except BaseException:
        os.close(fd)
        raise
