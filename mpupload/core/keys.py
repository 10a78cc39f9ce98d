"""Object keys: how a relative path becomes a key, the order S3 lists keys in, and --key-template.

Normalisation and order: how a relative path becomes the part of an object key after the prefix, and the
order S3 lists keys in.

Normalisation: macOS writes names decomposed (NFD: "e" + U+0301), most other systems and people type
them composed (NFC: U+00E9). The same name would otherwise land under two different keys depending on
the machine that wrote the tree, so keys are NFC by default (`--key-normalization none` keeps the bytes).
NFC of a path is the NFC of each of its parts joined by "/": "/" is a starter that composes with
nothing, so normalisation never reaches across it (tests/unit/test_keys_order.py checks this property).

Names that are not valid UTF-8 (a Latin-1 "caf\xe9" on a UTF-8 system) cannot be keys as they are. Each byte
that is not part of valid UTF-8 becomes a %XX escape (upper-case hex) and, in such a name only, each "%"
becomes "%25": "caf\xe9.txt" -> "caf%E9.txt". Reversible (`name_bytes`): a name whose every "%" starts an
upper-case %XX escape, and whose escapes decode to bytes that are not UTF-8, was escaped here, and those
bytes are the name; any other name is itself. Valid
names keep their keys (a valid name that happens to read "caf%E9.txt" is its own key; beside a real
"caf\xe9.txt" the two share a key and are both reported failed, as names that normalise alike are).

Order: S3 lists keys in UTF-8 binary order, which for valid Unicode is code point order, which is how
Python compares `str`. A walk that yields keys in that order can be merged with a listing (verify) and
can find two names that normalise to one key by looking only at neighbours.

Templates (--key-template): where each file lands, e.g. `{year}/{name}` to sort a flat folder into years.

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
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from mpupload.core.errors import SettingsError

_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def has_undecodable(text: str) -> bool:
    """True when `text` carries surrogate escapes: bytes of a name that are not valid UTF-8 (os.fsdecode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escape_undecodable(text: str) -> str:
    """`text` (a name or a "/"-separated path) with, in each name that has undecodable bytes, each of them as
    %XX and each "%" as %25 (valid names: themselves)."""
    if text.isascii() or not has_undecodable(text):
        return text
    if "/" in text:
        return "/".join(escape_undecodable(part) for part in text.split("/"))
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for byte (code - 0xDC00)
            out.append(f"%{code - 0xDC00:02X}")
        elif ch == "%":
            out.append("%25")
        else:
            out.append(ch)
    return "".join(out)


def unescaped(name: str) -> bytes | None:
    """The bytes an escaped name stands for, or None when `name` is no escaped name: one has every "%" in
    an upper-case %XX escape, and its escapes decode to bytes that are not UTF-8."""
    if "%" not in name or name.count("%") != len(_ESCAPE.findall(name)):
        return None
    raw = unquote_to_bytes(name)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def name_bytes(name: str) -> bytes:
    """The bytes of the local name (or relative path) a key part came from: the inverse of
    escape_undecodable, applied one "/"-separated part at a time."""
    return b"/".join(part.encode("utf-8") if (raw := unescaped(part)) is None else raw for part in name.split("/"))


def printable_name(text: str) -> str:
    """A name that may hold undecodable bytes as text any stream can write (byte 0xFF as backslash-x-f-f)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
        if not text.isascii() and has_undecodable(text) else text


def normalize(rel: str, mode: str = "nfc") -> str:
    """The key form of a relative path (or of one name): undecodable bytes escaped, then NFC unless "none"."""
    if rel.isascii():
        return rel
    rel = escape_undecodable(rel)
    if mode == "none" or unicodedata.is_normalized("NFC", rel):
        return rel
    return unicodedata.normalize("NFC", rel)


def sort_name(name: str, *, is_dir: bool, mode: str = "nfc") -> str:
    """What one directory entry sorts by so that a depth-first walk yields keys in S3's order.

    A folder sorts as "name/": every key inside it starts with that, and "/" (0x2F) sorts after "-" and
    "." (so "a-b" and "a.txt" come before "a/..."), which sorting by the bare name would get wrong.
    """
    key = normalize(name, mode)
    return key + "/" if is_dir else key


def key_bytes(key: str) -> bytes:
    """The bytes S3 orders by (undecodable bytes never reach a key: normalize escapes them)."""
    return key.encode("utf-8", "surrogateescape")


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
