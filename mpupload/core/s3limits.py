"""S3's limits on what one object may carry, checked before the first request (pure functions).

AWS refuses what SeaweedFS and moto accept, so no local test server would catch these:
- a key is at most 1,024 bytes of UTF-8;
- user metadata (x-amz-meta-*) is at most 2 KB: the UTF-8 bytes of every name (without the x-amz-meta-
  prefix) plus every value (400 MetadataTooLarge, MaxSizeAllowed 2048);
- an object has at most 10 tags, a tag key at most 128 and a value at most 256 characters (Unicode).

mpupload's own metadata (xxh3-128, source-mtime, source-path) always fits: `fit_metadata` stores
`source-path` percent-encoded as always where it fits, else as RFC 2047 encoded words (base64 of its UTF-8:
4/3 of the bytes where percent-encoding takes 3x for non-ASCII; S3 itself speaks RFC 2047 for metadata),
else leaves it out (the key names the file) and says which in its result, for the run's log.

A user's `--metadata` and `--tags` are usage errors (exit 2) when they break a limit: `check_user_metadata`
and `check_tags` raise `LimitError` with the reason; the settings turn that into a SettingsError.
"""

from __future__ import annotations

import base64
import email.header
import re
from collections.abc import Mapping
from urllib.parse import quote_from_bytes, unquote_to_bytes

MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
MAX_TAGS = 10
MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS = 128, 256

# mpupload's own names (also in hashing.py, which imports nothing of this module).
META_DIGEST, META_MTIME, META_PATH = "xxh3-128", "source-mtime", "source-path"
OWN_KEYS = (META_DIGEST, META_MTIME, META_PATH)
# The longest values the digest and mtime can take: 32 hex digits; seconds (up to 12 digits, year 33658)
# "." nanoseconds. Reserved whole, so whether a file's metadata fits never depends on its digest or mtime.
_DIGEST_VALUE_BYTES = 32
_MTIME_VALUE_BYTES = 12 + 1 + 9
OWN_FIXED_BYTES = len(META_DIGEST) + _DIGEST_VALUE_BYTES + len(META_MTIME) + _MTIME_VALUE_BYTES

# How source-path was stored (the `source_path` of an UploadResult; "" = percent-encoded, as always).
PATH_PERCENT, PATH_RFC2047, PATH_OMITTED = "", "rfc2047", "omitted"

# HTTP token characters (RFC 9110): what a header name, hence a metadata name, may hold.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_RFC2047_WORD_BYTES = 45  # UTF-8 bytes per encoded word: 60 base64 characters + 12 = 72, under RFC 2047's 75


class LimitError(ValueError):
    """Something the user asked for breaks one of S3's limits (a usage error)."""


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an S3 key, or None. Undecodable bytes (surrogate escapes) never reach a key
    (keyorder.py escapes them), but they are counted as the bytes they stand for rather than raising."""
    n = len(key.encode("utf-8", "surrogateescape"))
    if n > MAX_KEY_BYTES:
        return f"object key is {n} bytes; S3 allows at most {MAX_KEY_BYTES}"
    return None


def metadata_bytes(meta: Mapping[str, str]) -> int:
    """User-metadata size as S3 counts it: UTF-8 bytes of every name and value."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in meta.items())


def check_user_metadata(meta: Mapping[str, str]) -> None:
    """LimitError when `--metadata` cannot be sent: a name that is no HTTP token, a value a header cannot
    carry, or more bytes than fit beside mpupload's own digest and mtime (source-path yields, see
    fit_metadata). Names mpupload uses itself are allowed and lose to mpupload's values."""
    for name, value in meta.items():
        if not name or not _TOKEN.match(name):
            raise LimitError(f"--metadata name {name!r}: use letters, digits and - _ . (an HTTP header name)")
        if any(c in value for c in "\r\n\0"):
            raise LimitError(f"--metadata {name}: the value holds a line break or NUL, which a header cannot carry")
    theirs = {k: v for k, v in meta.items() if k.lower() not in OWN_KEYS}
    n = metadata_bytes(theirs)
    room = MAX_METADATA_BYTES - OWN_FIXED_BYTES
    if n > room:
        raise LimitError(f"--metadata is {n} bytes (UTF-8 of names and values); S3 allows {MAX_METADATA_BYTES} "
                         f"per object and mpupload's own xxh3-128 and source-mtime take {OWN_FIXED_BYTES}, "
                         f"which leaves {room}")


def check_tags(tags: Mapping[str, str]) -> None:
    """LimitError when `--tags` breaks S3's tag limits: at most 10, keys 1-128 and values 0-256 characters."""
    if len(tags) > MAX_TAGS:
        raise LimitError(f"--tags gives {len(tags)} tags; S3 allows at most {MAX_TAGS} per object")
    for k, v in tags.items():
        if not 1 <= len(k) <= MAX_TAG_KEY_CHARS:
            raise LimitError(f"--tags key {k[:40]!r}{'...' if len(k) > 40 else ''} is {len(k)} characters; "
                             f"S3 allows 1 to {MAX_TAG_KEY_CHARS}")
        if len(v) > MAX_TAG_VALUE_CHARS:
            raise LimitError(f"--tags {k}: the value is {len(v)} characters; S3 allows at most {MAX_TAG_VALUE_CHARS}")


def _utf8_words(raw: bytes) -> list[bytes]:
    """`raw` (valid UTF-8) cut at character boundaries into pieces of at most _RFC2047_WORD_BYTES."""
    words, start = [], 0
    while start < len(raw):
        end = min(start + _RFC2047_WORD_BYTES, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a character
            end -= 1
        words.append(raw[start:end])
        start = end
    return words


def rfc2047(raw: bytes) -> str:
    """Encoded words (RFC 2047, B encoding) of valid UTF-8 bytes: ASCII, a header can carry it."""
    return " ".join(f"=?UTF-8?B?{base64.b64encode(w).decode('ascii')}?=" for w in _utf8_words(raw))


def decode_source_path(value: str) -> bytes:
    """The original path bytes from a stored `source-path` (either form)."""
    if value.startswith("=?"):
        return b"".join(part if isinstance(part, bytes) else part.encode("ascii")
                        for part, _charset in email.header.decode_header(value))
    return unquote_to_bytes(value)


def source_path_value(raw: bytes, *, room: int) -> tuple[str, str]:
    """(form, value) of source-path for the path bytes `raw` in at most `room` bytes of value: percent-encoded
    where it fits, else RFC 2047 (for valid UTF-8), else omitted (value "")."""
    percent = quote_from_bytes(raw, safe="/")
    if len(percent) <= room:
        return PATH_PERCENT, percent
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return PATH_OMITTED, ""  # not text: only percent-escapes carry its bytes, and they do not fit
    words = rfc2047(raw)
    if len(words) <= room:
        return PATH_RFC2047, words
    return PATH_OMITTED, ""


def fit_metadata(own: Mapping[str, str], path: bytes, user: Mapping[str, str] | None = None) -> tuple[dict[str, str], str]:
    """The object's user metadata: `user` (the --metadata pairs), then mpupload's `own` (digest and mtime,
    which win over user names alike), then source-path for the path bytes in the room left; and the form
    source-path took (PATH_PERCENT, PATH_RFC2047 or PATH_OMITTED). Always within MAX_METADATA_BYTES once
    check_user_metadata has passed `user`."""
    meta = {k: v for k, v in (user or {}).items() if k.lower() not in OWN_KEYS}
    meta.update(own)
    room = MAX_METADATA_BYTES - metadata_bytes(meta) - len(META_PATH)
    form, value = source_path_value(path, room=room)
    if form != PATH_OMITTED:
        meta[META_PATH] = value
    return meta, form


def as_mapping(value, *, pair_sep: str) -> dict[str, str]:
    """--metadata / --tags in whichever form a setting holds them: a mapping, (name, value) pairs, or text
    ("k=v,k2=v2" for metadata, "k=v&k2=v2" for tags, as the AWS CLI writes them); None or "" = none."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        if pair_sep == "&":
            from urllib.parse import parse_qsl

            return dict(parse_qsl(value, keep_blank_values=True))
        pairs = [p.partition("=") for p in value.split(pair_sep) if p]
        return {k.strip(): v for k, _, v in pairs}
    return {str(k): str(v) for k, v in value}


def check_object_limits(*, metadata=None, tags=None) -> None:
    """Settings validation's one call (exit 2 before any request): LimitError for --metadata or --tags that
    S3 would refuse. Either may be absent (None) where the setting does not exist."""
    check_user_metadata(as_mapping(metadata, pair_sep=","))
    check_tags(as_mapping(tags, pair_sep="&"))

