"""Walking the source tree. Streams entries (never lists the whole tree in memory); anything that is not
a regular file, or cannot be named as an S3 key, comes out as a `Skipped` entry with a reason rather than
an exception. FIFOs, sockets and devices are recognised from lstat and never opened."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # absolute filesystem path (may carry surrogate escapes)
    rel: str  # path relative to the source root, "/" separated
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class Skipped:
    rel: str
    reason: str


def _display(rel: str) -> str:
    """A printable form of a name that may hold undecodable bytes (byte 0xFF shows as backslash-x-f-f)."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace") if _has_surrogates(rel) else rel


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _special_kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return None


class Matcher:
    """--include / --exclude globs on the relative path. A pattern without "/" also matches the file name."""

    def __init__(self, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()):
        self.include, self.exclude = include, exclude

    @staticmethod
    def _hit(rel: str, patterns: tuple[str, ...]) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(rel, p) or ("/" not in p and fnmatch.fnmatchcase(name, p)) for p in patterns)

    def wants(self, rel: str) -> bool:
        if self.include and not self._hit(rel, self.include):
            return False
        return not (self.exclude and self._hit(rel, self.exclude))


def scan(root: str, *, follow_symlinks: bool = False, matcher: Matcher | None = None) -> Iterator[FileEntry | Skipped]:
    """Yield every file under `root` in sorted, depth-first order (so years come out in order)."""
    matcher = matcher or Matcher()
    root = os.path.abspath(root)
    st = os.stat(root)
    # Directories on the current path, by (device, inode): a symlink back up the tree is a loop.
    yield from _walk(root, "", follow_symlinks, matcher, {(st.st_dev, st.st_ino)})


def _walk(directory: str, rel_dir: str, follow: bool, matcher: Matcher, ancestors: set) -> Iterator[FileEntry | Skipped]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(rel_dir or ".", f"directory unreadable: {exc.strerror or exc}")
        return
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        try:
            yield from _visit(entry, rel, follow, matcher, ancestors)
        except OSError as exc:  # vanished or unreadable between listing and stat
            yield Skipped(_display(rel), f"cannot stat: {exc.strerror or exc}")


def _visit(entry: os.DirEntry, rel: str, follow: bool, matcher: Matcher, ancestors: set) -> Iterator[FileEntry | Skipped]:
    lst = entry.stat(follow_symlinks=False)
    st = lst
    if stat.S_ISLNK(lst.st_mode):
        if not follow:
            if not matcher.wants(rel):
                return
            yield Skipped(_display(rel), "symbolic link (use --follow-symlinks to upload its target)")
            return
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            if matcher.wants(rel):
                reason = "symlink loop" if exc.errno == errno.ELOOP else f"broken symbolic link: {exc.strerror}"
                yield Skipped(_display(rel), reason)
            return
    if stat.S_ISDIR(st.st_mode):
        ident = (st.st_dev, st.st_ino)
        if ident in ancestors:
            yield Skipped(_display(rel), "symlink loop: points back to a folder above it")
            return
        ancestors.add(ident)
        try:
            yield from _walk(entry.path, rel, follow, matcher, ancestors)
        finally:
            ancestors.discard(ident)
        return
    if not matcher.wants(rel):
        return
    kind = _special_kind(st.st_mode)
    if kind:
        yield Skipped(_display(rel), f"not a regular file: {kind}")
    elif _has_surrogates(rel):
        yield Skipped(_display(rel), "name is not valid UTF-8 and cannot be an S3 key")
    else:
        yield FileEntry(path=entry.path, rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)


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
