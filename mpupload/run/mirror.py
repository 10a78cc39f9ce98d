"""--delete, the mirror pass of a cutover: after an upload in which every file under SOURCE landed, the
objects under the destination that no file under SOURCE maps to are deleted, so the bucket equals the source.

What it will not do (each a reason said to the operator, and nothing deleted):
- run after an upload with any failure, or a walk of SOURCE that failed anywhere (an unreadable folder would
  otherwise look like deleted files);
- delete more than --max-delete (a count, or a share of the objects listed under the prefix; default 10%);
- touch keys outside the run's own key space: objects that --include / --exclude leave out, another
  machine's --shard, the probes' own objects. With a --key-template, filters and --shard, no object can be
  said to be outside by its key alone, so --delete refuses that combination. --files-from names what to upload,
  not what the destination must hold: refused too (a usage error, settings/config.py).

The source's keys and the listing are both sorted on disk (extsort.py) and walked side by side, as verify does:
memory stays flat with millions of objects; the keys to delete wait in a temporary file until the limit is
checked. On a versioned bucket a delete adds a delete marker (the earlier versions stay): said once.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mpupload.core.keys import DEFAULT_TEMPLATE, normalize
from mpupload.core.shard import Shard
from mpupload.run.plan import object_key, task_for
from mpupload.s3.listing import sorted_listing
from mpupload.s3.probekeys import is_probe
from mpupload.settings.config import Settings
from mpupload.source import extsort
from mpupload.source.filters import Filtered, Filters
from mpupload.source.scan import Skipped
from mpupload.source.sources import iter_source

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
KEEP_KEYS = 10_000  # deleted keys kept for the report (every one goes to --log-file and the journal)


@dataclass
class MirrorPass:
    """What the pass found and did. `refused`: why nothing was deleted, when it refused."""

    listed: int = 0  # objects under the prefix
    extra: int = 0  # of those, in the run's key space with no file under SOURCE
    limit: int = 0  # --max-delete as a count of this pass
    refused: str | None = None
    deleted: int = 0  # objects deleted (on a dry run: that would be)
    keys: list[str] = field(default_factory=list)  # the first KEEP_KEYS of them
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    versioned: bool = False


def delete_limit(max_delete: str, listed: int) -> int:
    """--max-delete as a count: "500" is 500 objects, "10%" a tenth of those listed (rounded down)."""
    text = max_delete.strip()
    if text.endswith("%"):
        return int(listed * float(text[:-1]) / 100)
    return int(text)


# Skips that mean the walk could not see something (rather than a policy: a link, a FIFO): as bad as a failure.
_BLIND = ("folder unreadable", "directory unreadable", "cannot stat", "symlink loop", "loop")


def _source_keys(s: Settings, protected: set[str], filters: Filters) -> Iterator[str]:
    """Every key a file under SOURCE maps to, in S3's key order. Entries the walk skipped by policy (special
    files, links) keep their keys, and everything under them (`protected`): what is on disk is never
    deleted. A walk that failed, or could not see, anywhere raises."""
    rx = re.compile(s.year_pattern) if s.year_pattern else None

    def keys() -> Iterator[bytes]:
        for item in iter_source(s, filters=filters):
            if isinstance(item, Filtered):  # left out by a size, age or file-system filter: its object stays
                key = object_key(s.prefix, normalize(item.rel, s.key_normalization))
                protected.add(key)
            elif isinstance(item, Skipped):
                if item.failed or item.reason.startswith(_BLIND):
                    raise _ScanFailed(f"{item.rel}: {item.reason}")
                key = object_key(s.prefix, normalize(item.rel, s.key_normalization))
                protected.add(key)
            else:
                key = task_for(item, prefix=s.prefix, year_pattern=rx, key_template=s.key_template,
                               normalization=s.key_normalization).key
            yield key.encode("utf-8", "surrogateescape")

    for rec in extsort.read(extsort.sort_to_file(keys(), key=lambda rec: rec)):
        yield rec.decode("utf-8", "surrogateescape")


class _ScanFailed(Exception):
    pass


def _in_key_space(s: Settings, filters: Filters) -> Callable[[str, int], bool]:
    """Is this listed key (of this size) one the run answers for, so one it may delete? Not when the filters
    leave it out (globs, size bounds, a folder --one-file-system did not enter: source/filters.py) or another
    machine's --shard holds it."""
    base = f"{s.prefix}/" if s.prefix else ""
    shard = Shard.parse(s.shard) if s.shard else None

    def mine(key: str, size: int) -> bool:
        if is_probe(key) or not key.startswith(base):
            return False
        rel = key[len(base):]
        return not filters.leaves_out_object(rel, size) and (shard is None or shard.holds(rel, s.key_normalization))

    return mine


def _extras(s: Settings, client, out) -> tuple[int, int]:
    """Write the keys to delete to `out` (one JSON string a line); (listed, extra)."""
    filters = Filters.from_settings(s, mark=True)
    mine = _in_key_space(s, filters)
    listed = extra = 0
    protected: set[str] = set()  # keys of entries skipped by policy or filtered: they and what is under them stay
    source = _source_keys(s, protected, filters)
    local = next(source, None)
    for key, size in sorted_listing(client, bucket=s.bucket, prefix=s.prefix):
        listed += 1
        # Compared as UTF-8 bytes, the order both sides were sorted in (names that are not UTF-8 included).
        while local is not None and _b(local) < _b(key):
            local = next(source, None)
        if local == key or not mine(key, size) or _under(key, protected):
            continue
        extra += 1
        out.write(json.dumps(key) + "\n")
    for _ in source:  # the rest of the walk: a failure there must stop the pass too
        pass
    return listed, extra


def _under(key: str, protected: set[str]) -> bool:
    if not protected:
        return False
    parts = key.split("/")
    return any("/".join(parts[:i]) in protected for i in range(1, len(parts)))


def _b(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def _versioned(client, bucket: str) -> bool:
    try:
        return client.get_bucket_versioning(Bucket=bucket).get("Status") in ("Enabled", "Suspended")
    except Exception:  # noqa: BLE001 - a server without versioning support: plain deletes
        return False


def mirror(s: Settings, client, *, dry_run: bool = False, on_deleted: Callable[[str], None] | None = None
           ) -> MirrorPass:
    """Find the objects to delete and (unless `dry_run`) delete them in batches. Never raises for a listing
    or a scan that failed: the pass refuses, with the reason."""
    if s.key_template != DEFAULT_TEMPLATE and (Filters.from_settings(s).active or s.shard):
        return MirrorPass(refused="with --key-template, filters and --shard cannot say from a key whether an "
                                  "object is outside the run's key space")
    result = MirrorPass()
    fd, path = tempfile.mkstemp(prefix="mpupload-delete-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            try:
                result.listed, result.extra = _extras(s, client, out)
            except _ScanFailed as exc:
                result.refused = f"the walk of the source failed ({exc}): an unreadable folder would look deleted"
                return result
            except Exception as exc:  # noqa: BLE001 - the listing broke off: it is not complete
                result.refused = f"the destination could not be listed completely ({exc})"
                return result
        result.limit = delete_limit(s.max_delete, result.listed)
        if result.extra > result.limit:
            result.refused = (f"{result.extra} objects would be deleted, more than --max-delete {s.max_delete} "
                              f"({result.limit} of {result.listed} listed); raise --max-delete to allow it")
            return result
        result.versioned = not dry_run and result.extra > 0 and _versioned(client, s.bucket)
        with open(path, encoding="utf-8") as keys:
            batch: list[str] = []
            for line in keys:
                batch.append(json.loads(line))
                if len(batch) == DELETE_BATCH:
                    _delete(client, s, batch, result, dry_run=dry_run, on_deleted=on_deleted)
                    batch = []
            if batch:
                _delete(client, s, batch, result, dry_run=dry_run, on_deleted=on_deleted)
        return result
    finally:
        os.unlink(path)


def _delete(client, s: Settings, keys: list[str], result: MirrorPass, *, dry_run: bool,
            on_deleted: Callable[[str], None] | None) -> None:
    if dry_run:
        for key in keys:
            _count(result, key)
        return
    try:
        answer = client.delete_objects(Bucket=s.bucket, Delete={"Objects": [{"Key": k} for k in keys],
                                                                "Quiet": True})
    except Exception as exc:  # noqa: BLE001 - the whole batch failed: each key says why
        result.failed.extend((k, f"delete failed: {exc}") for k in keys)
        return
    errors = {e["Key"]: f"delete failed: {e.get('Code', '')} {e.get('Message', '')}".strip()
              for e in answer.get("Errors", [])}
    result.failed.extend(errors.items())
    for key in keys:
        if key not in errors:
            _count(result, key)
            if on_deleted is not None:
                on_deleted(key)


def _count(result: MirrorPass, key: str) -> None:
    result.deleted += 1
    if len(result.keys) < KEEP_KEYS:
        result.keys.append(key)


def mirror_after_run(s: Settings, *, clean: bool, journal, log, warn: Callable[[str], None]) -> dict:
    """The pass at the end of an upload (the coordinator's): only when every file under SOURCE settled as
    uploaded or skipped (`clean`). Each deletion goes to the log and out of the journal. Returns the counts
    the summary and the report carry."""
    if not clean:
        why = "the upload did not finish cleanly (a failure, a stop or an unfinished walk)"
        warn(f"--delete: nothing deleted: {why}")
        return {"deleted": 0, "delete_failed": 0, "refused": why}
    from mpupload.s3.client import make_client

    gone: list[str] = []

    def deleted(key: str) -> None:
        if log is not None:
            log.deleted(key)
        gone.append(key)
        if len(gone) >= DELETE_BATCH:
            journal.forget_stored(gone)
            gone.clear()

    result = mirror(s, make_client(s), on_deleted=deleted)
    journal.forget_stored(gone)
    if result.refused:
        warn(f"--delete: nothing deleted: {result.refused}")
    if result.versioned:
        warn("--delete: the bucket is versioned: each delete added a delete marker; the earlier versions stay "
             "until a lifecycle rule or a person removes them")
    return {"deleted": result.deleted, "delete_failed": len(result.failed), "refused": result.refused,
            "listed": result.listed, "max_delete": result.limit, "keys": result.keys[:100],
            "failures": [list(f) for f in result.failed[:100]]}
