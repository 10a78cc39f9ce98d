"""How a relative path becomes the part of an object key after the prefix, and the order S3 lists keys in.

Normalisation: macOS writes names decomposed (NFD: "e" + U+0301), most other systems and people type
them composed (NFC: U+00E9). The same name would otherwise land under two different keys depending on
the machine that wrote the tree, so keys are NFC by default (`--key-normalization none` keeps the bytes).
NFC of a path is the NFC of each of its parts joined by "/": "/" is a starter that composes with
nothing, so normalisation never reaches across it (tests/unit/test_keyorder.py checks this property).

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
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

NORMALIZATIONS = ("nfc", "none")
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
