"""The object settings (encryption, storage class, ACL, tags, metadata, content headers, bucket owner, requester
pays): their parsers, the checks that make a bad value a usage error before any request, and the description
of what is in force that `--dry-run` and the run report show. s3/objectparams.py turns them into the
parameters every write carries.

The SSE-C key itself never passes through here except to be checked: `Settings` holds the file's path, each
process reads the key when it builds its requests, and nothing describes more than that a key is set.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import quote, unquote

from mpupload.core.errors import SettingsError
from mpupload.core.units import format_size

# The object settings' vocabularies (the Settings fields take their choices from here).
SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
                   "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE")
CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
               "bucket-owner-read", "bucket-owner-full-control")
REQUEST_PAYERS = ("requester",)
SMALL_OBJECT_SIZE = 128 * 1024  # STANDARD_IA, ONEZONE_IA, GLACIER_IR bill at least 128 KiB per object

# The functions below take the frozen Settings (settings/config.py, which imports this module: typed `Any`
# here so the import goes one way).
Settings = Any

SSE_C_KEY_BYTES = 32  # AES-256
# mpupload's own user metadata (core/hashing.py META_*): these names are mpupload's, and its values win.
OWN_METADATA = ("xxh3-128", "source-mtime", "source-path")
# An HTTP token (RFC 9110): what a metadata name may hold, since it becomes the header x-amz-meta-NAME.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
# S3's rule for tag keys and values: Unicode letters, digits and spaces, and _ . : / = + - @ (anything else:
# 400 InvalidTag on every object, found only at the first PUT).
_TAG_TEXT = re.compile(r"^[\w .:/=+\-@]*$")


def _printable(value: str) -> bool:
    """Printable ASCII (spaces allowed): what a header value can carry unchanged through every client and
    proxy (S3 would need RFC 2047 for anything else and returns it encoded)."""
    return all(" " <= ch <= "~" for ch in value)


def parse_tags(text: str) -> tuple[tuple[str, str], ...]:
    """'project=atlas&owner=ops' -> (('project', 'atlas'), ('owner', 'ops')). Values may be plain or
    percent-encoded ('a%20b' and 'a b' are one value); a key twice, an empty key or a pair without '=' is an
    error."""
    pairs: list[tuple[str, str]] = []
    if not text.strip():
        return ()
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        name, value = unquote(name.strip()), unquote(value.strip())
        if not eq or not name:
            raise SettingsError(f"--tags: {part!r} is not KEY=VALUE (write 'key=value&key2=value2')")
        if any(name == seen for seen, _ in pairs):
            raise SettingsError(f"--tags: the tag {name!r} is given twice")
        for text_ in (name, value):
            if not _TAG_TEXT.match(text_):
                raise SettingsError(f"--tags: {text_!r}: S3 allows only letters, digits, spaces and _ . : / = + - @ "
                                    "in tags")
        pairs.append((name, value))
    return tuple(pairs)


def encode_tags(pairs: tuple[tuple[str, str], ...]) -> str:
    """The x-amz-tagging value: a URL query with every reserved character percent-encoded."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def parse_metadata(text: str) -> tuple[tuple[str, str], ...]:
    """'a=1,b=2' or '{"a": "1", "b": "2"}' -> (('a', '1'), ('b', '2')). Names are lower-cased (S3 returns
    them so), must be HTTP tokens and unique; values printable ASCII."""
    text = text.strip()
    if not text:
        return ()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"--metadata is not a JSON object: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise SettingsError("--metadata as JSON must be an object of strings, e.g. {\"project\": \"atlas\"}")
        raw = list(data.items())
    else:
        raw = []
        for part in text.split(","):
            name, eq, value = part.partition("=")
            if not eq:
                raise SettingsError(f"--metadata: {part!r} is not KEY=VALUE (write 'key=value,key2=value2', or a "
                                    "JSON object for values that hold commas)")
            raw.append((name.strip(), value.strip()))
    pairs: list[tuple[str, str]] = []
    for name, value in raw:
        name = name.lower()
        if not _TOKEN.match(name):
            raise SettingsError(f"--metadata: {name!r} is not a valid name (letters, digits and -._~!#$&'*+^`| only)")
        if not _printable(value):
            raise SettingsError(f"--metadata: the value of {name!r} must be printable ASCII")
        if any(name == seen for seen, _ in pairs):
            raise SettingsError(f"--metadata: {name!r} is given twice")
        pairs.append((name, value))
    return tuple(pairs)


def read_sse_c_key(path: str) -> bytes:
    """The 32-byte SSE-C key in `path`: 32 raw bytes, or 64 hex digits, or base64 (whitespace ignored).
    Errors name the file, never its content."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(4096)
    except OSError as exc:
        raise SettingsError(f"--sse-c-key-file: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) == SSE_C_KEY_BYTES:
        return data
    text = b"".join(data.split())
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text.decode("ascii"))
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) == SSE_C_KEY_BYTES:
        return key
    raise SettingsError(f"--sse-c-key-file: {path} does not hold a 256-bit key (32 raw bytes, 64 hex digits or "
                        "base64 of 32 bytes, as `openssl rand 32 > FILE` or `openssl rand -base64 32 > FILE` write)")


def check_object_settings(s: Settings) -> None:
    """SettingsError (exit 2, before any request) for object settings that cannot work together."""
    kms = s.sse in ("aws:kms", "aws:kms:dsse")
    if s.sse_kms_key_id and not kms:
        raise SettingsError("--sse-kms-key-id needs --sse aws:kms or --sse aws:kms:dsse")
    if s.sse_bucket_key and s.sse != "aws:kms":
        raise SettingsError("--sse-bucket-key needs --sse aws:kms (S3 Bucket Keys do not apply to SSE-S3 or "
                            "dual-layer SSE-KMS)")
    if s.sse_c_key_file:
        if s.sse:
            raise SettingsError("--sse-c-key-file (SSE-C) and --sse are two kinds of encryption: give one")
        read_sse_c_key(s.sse_c_key_file)  # checked now, read again by each process: never kept in Settings
    if s.small_object_size is not None and not s.small_storage_class:
        raise SettingsError("--small-object-size needs --small-storage-class")
    if s.small_object_size is not None and s.small_object_size < 1:
        raise SettingsError("--small-object-size must be at least 1 byte")
    parse_tags(s.tags)
    parse_metadata(s.metadata)
    for name in ("content_type", "cache_control", "content_encoding", "content_disposition", "sse_kms_key_id"):
        value = getattr(s, name)
        if value is not None and (not value.strip() or not _printable(value)):
            raise SettingsError(f"--{name.replace('_', '-')} must be printable ASCII, not empty")
    if s.expected_bucket_owner is not None and not _ACCOUNT.match(s.expected_bucket_owner):
        raise SettingsError("--expected-bucket-owner must be a 12-digit AWS account id")


def own_metadata_overridden(s: Settings) -> list[str]:
    """--metadata names that are mpupload's own: its values win (said once at the start of a run)."""
    return [name for name, _ in parse_metadata(s.metadata) if name in OWN_METADATA]


def describe_object_settings(s: Settings) -> dict[str, Any]:
    """The object settings in force, as plain values (for --dry-run and report.json). An SSE-C key is
    described as set, with the file it comes from; its bytes never appear."""
    out: dict[str, Any] = {}
    if s.sse:
        out["sse"] = s.sse
    if s.sse_kms_key_id:
        out["sse_kms_key_id"] = s.sse_kms_key_id
    if s.sse_bucket_key:
        out["sse_bucket_key"] = True
    if s.sse_c_key_file:
        out["sse_c"] = {"algorithm": "AES256", "key": "set", "key_file": s.sse_c_key_file}
    if s.storage_class:
        out["storage_class"] = s.storage_class
    if s.small_storage_class:
        size = s.small_object_size if s.small_object_size is not None else SMALL_OBJECT_SIZE
        out["small_storage_class"] = {"class": s.small_storage_class, "below_bytes": size,
                                      "below": format_size(size)}
    if s.acl:
        out["acl"] = s.acl
    if s.tags:
        out["tags"] = dict(parse_tags(s.tags))
    if s.metadata:
        out["metadata"] = dict(parse_metadata(s.metadata))
    out["content_type"] = s.content_type or "by suffix (mpupload's table)"
    for name in ("cache_control", "content_encoding", "content_disposition", "expected_bucket_owner",
                 "request_payer"):
        if getattr(s, name):
            out[name] = getattr(s, name)
    return out


_LABELS = {"sse": "SSE", "sse_kms_key_id": "KMS key", "sse_bucket_key": "S3 Bucket Key", "sse_c": "SSE-C",
           "acl": "ACL"}


def describe_lines(s: Settings) -> list[str]:
    """describe_object_settings as short human lines."""
    lines = []
    for name, value in describe_object_settings(s).items():
        if name == "sse_c":
            value = f"AES256 with the key in {value['key_file']}"
        elif name == "small_storage_class":
            value = f"{value['class']} for objects below {value['below']}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"{_LABELS.get(name, name.replace('_', ' '))}: {value}")
    return lines
