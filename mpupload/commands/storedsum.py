"""`verify --mode checksum`: the checksum S3 keeps for an object, compared with the local file's.

HeadObject with ChecksumMode=ENABLED tells the checksum S3 computed (or checked) when the object was written.
The same value computed from the local file proves the bytes match without downloading them:
- a FULL_OBJECT checksum (mpupload's multipart uploads where the server keeps one, and any single PUT) is the
  algorithm over the whole file;
- a COMPOSITE one ("VALUE-N", per-part checksums) needs the part sizes: from GetObjectAttributes (ObjectParts),
  else mpupload's own part size for the object's size when it gives N parts; when neither fits, or the object
  carries no checksum at all, the object is checked by its xxh3-128 metadata only, and verify says so.
The file's xxh3-128 is computed in the same read.
"""

from __future__ import annotations

from typing import NamedTuple

from mpupload.core.objectsum import COMPOSITE, composite_checksum, file_checksum, stored_checksum
from mpupload.settings.config import part_size_for

SAME, DIFFERS, UNAVAILABLE = "same", "differs", "unavailable"
_MAX_PART_PAGES = 10  # 10,000 parts at most, S3's limit


class StoredCheck(NamedTuple):
    status: str  # SAME, DIFFERS or UNAVAILABLE (nothing comparable: metadata only)
    detail: str
    xxh3: str | None  # the file's xxh3-128 when it was read here


def compare_stored(client, *, bucket: str, key: str, path: str, head: dict, size: int,
                   chunksize: int) -> StoredCheck:
    """Compare the checksum in `head` (a HeadObject answer with ChecksumMode=ENABLED) with the file's."""
    stored = stored_checksum(head)
    if stored is None:
        return StoredCheck(UNAVAILABLE, "the object carries no checksum", None)
    algorithm, value, kind = stored
    if kind != COMPOSITE:
        local, xxh3 = file_checksum(path, algorithm, also_xxh3=True)
        return _compared(algorithm, kind, value, local, xxh3)
    count = int(value.rsplit("-", 1)[1])
    sizes = _part_sizes(client, bucket=bucket, key=key, count=count) or _own_part_sizes(size, chunksize, count)
    if sizes is None:
        return StoredCheck(UNAVAILABLE, f"a composite {algorithm} of {count} parts whose sizes the server does not "
                                        "report", None)
    local, xxh3 = composite_checksum(path, algorithm, sizes, also_xxh3=True)
    return _compared(algorithm, kind, value, local, xxh3)


def _compared(algorithm: str, kind: str, stored: str, local: str, xxh3: str | None) -> StoredCheck:
    if stored == local:
        return StoredCheck(SAME, "", xxh3)
    return StoredCheck(DIFFERS, f"the {kind} {algorithm} checksum S3 keeps ({stored}) differs from the file's "
                                f"({local})", xxh3)


def _part_sizes(client, *, bucket: str, key: str, count: int) -> list[int] | None:
    sizes: dict[int, int] = {}
    marker = 0
    try:
        for _ in range(_MAX_PART_PAGES):
            attrs = client.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts"],
                                                 MaxParts=1000, PartNumberMarker=marker)
            parts = attrs.get("ObjectParts", {})
            sizes.update({p["PartNumber"]: p["Size"] for p in parts.get("Parts", [])})
            if not parts.get("IsTruncated"):
                break
            marker = parts.get("NextPartNumberMarker", 0)
    except Exception:  # noqa: BLE001 - not every server answers GetObjectAttributes: the next way is tried
        return None
    if sorted(sizes) != list(range(1, count + 1)):
        return None
    return [sizes[n] for n in range(1, count + 1)]


def _own_part_sizes(size: int, chunksize: int, count: int) -> list[int] | None:
    """The parts mpupload would cut this object into, if that makes `count` parts."""
    part = part_size_for(size, chunksize)
    if max(1, -(-size // part)) != count:
        return None
    return [min(part, size - i * part) for i in range(count)]
