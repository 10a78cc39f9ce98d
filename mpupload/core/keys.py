"""--key-template: where each file lands, e.g. `{year}/{name}` to sort a flat folder into years.

Fields: {prefix} (the destination's prefix), {year} (the file's partition), {relpath} (its path relative to
the source), {name} (its file name), {parent} (the relative path of its folder, "" at the top). Empty
fields leave no doubled or leading slash. The default, `{prefix}/{relpath}`, is the layout of the source;
a template without {prefix} is read under the destination's prefix (`{year}/{name}` = `{prefix}/{year}/{name}`).

A template with {relpath} gives every file its own key by construction. One without it (`{year}/{name}`)
may give two files one key, and the second upload would overwrite the first: before anything is uploaded,
`find_collisions` walks the source's metadata once and checks every key in a temporary SQLite table (on
disk: memory stays flat with millions of files), and the run stops with a usage error listing examples.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import string
import tempfile
from collections.abc import Iterable

from mpupload.core.errors import SettingsError

DEFAULT_TEMPLATE = "{prefix}/{relpath}"
FIELDS = ("prefix", "year", "relpath", "name", "parent")
_SLASHES = re.compile(r"/{2,}")


@functools.lru_cache(maxsize=8)
def parse(template: str) -> tuple[str, ...]:
    """The fields the template uses; SettingsError for an unknown field, a format spec or no file field."""
    used = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SettingsError(f"--key-template {template!r}: {exc}") from None
    for _text, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            raise SettingsError(f"--key-template {template!r}: unknown field {{{name}}}; "
                                f"use {', '.join('{' + f + '}' for f in FIELDS)}")
        if spec or conv:
            raise SettingsError(f"--key-template {template!r}: no format specs or conversions ({{{name}}})")
        used.append(name)
    if "relpath" not in used and "name" not in used:
        raise SettingsError(f"--key-template {template!r} names no file: every file would get the same key; "
                            "use {relpath} or {name}")
    return tuple(used)


def unique_by_construction(template: str) -> bool:
    """{relpath} alone tells files apart; anything else may not."""
    return "relpath" in parse(template)


def render(template: str, *, prefix: str, year: str, rel: str) -> str:
    parent, _, name = rel.rpartition("/")
    if "prefix" not in parse(template):
        # `{year}/{name}` to s3://B/P means P/1920/x: a template is read under the destination's prefix
        # unless it places {prefix} itself (and a destination without a prefix is the bucket's root).
        template = "{prefix}/" + template
    key = template.format(prefix=prefix.strip("/"), year=year, relpath=rel, name=name, parent=parent)
    return _SLASHES.sub("/", key).lstrip("/")


def find_collisions(pairs: Iterable[tuple[str, str]], *, most: int = 5) -> list[tuple[str, str, str]]:
    """(key, first file, second file) for up to `most` keys that two files map to. `pairs` is (key, rel) in
    any order; the keys seen go to a temporary SQLite file, not memory."""
    found: list[tuple[str, str, str]] = []
    fd, path = tempfile.mkstemp(prefix="mpupload-keys-", suffix=".sqlite")
    os.close(fd)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE k (key TEXT PRIMARY KEY, rel TEXT NOT NULL)")
        for key, rel in pairs:
            if db.execute("INSERT OR IGNORE INTO k VALUES (?, ?)", (key, rel)).rowcount == 0:
                (first,) = db.execute("SELECT rel FROM k WHERE key = ?", (key,)).fetchone()
                found.append((key, first, rel))
                if len(found) >= most:
                    break
    finally:
        db.close()
        os.unlink(path)
    return found


def collision_message(template: str, collisions: list[tuple[str, str, str]]) -> str:
    lines = [f"--key-template {template!r} maps more than one file to the same key (the later upload would "
             "replace the earlier); add {parent} or use {relpath}, e.g. '{year}/{relpath}'. For example:"]
    lines += [f"  {key}  <-  {a}  and  {b}" for key, a, b in collisions]
    return "\n".join(lines)
