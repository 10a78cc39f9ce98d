"""How a relative path becomes the part of an object key after the prefix, and the order S3 lists keys in.

Normalisation: macOS writes names decomposed (NFD: "e" + U+0301), most other systems and people type
them composed (NFC: U+00E9). The same name would otherwise land under two different keys depending on
the machine that wrote the tree, so keys are NFC by default (`--key-normalization none` keeps the bytes).
NFC of a path is the NFC of each of its parts joined by "/": "/" is a starter that composes with
nothing, so normalisation never reaches across it (tests/unit/test_keyorder.py checks this property).

Order: S3 lists keys in UTF-8 binary order, which for valid Unicode is code point order, which is how
Python compares `str`. A walk that yields keys in that order can be merged with a listing (verify) and
can find two names that normalise to one key by looking only at neighbours.
"""

from __future__ import annotations

import unicodedata

NORMALIZATIONS = ("nfc", "none")


def normalize(rel: str, mode: str = "nfc") -> str:
    """The key form of a relative path (or of one name)."""
    if mode == "none" or rel.isascii() or unicodedata.is_normalized("NFC", rel):
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
    """The bytes S3 orders by (names that are not valid UTF-8 never become keys; they keep their escapes)."""
    return key.encode("utf-8", "surrogateescape")
