"""`--dry-run`: scan and plan exactly as a real run would, upload nothing, and say what would happen."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from typing import IO

from mpupload.core.units import format_size
from mpupload.run.plan import Batcher, key_problem, task_for
from mpupload.settings.config import Settings
from mpupload.settings.objects import describe_lines, describe_object_settings
from mpupload.source.filters import Filters
from mpupload.source.scan import Skipped
from mpupload.source.sources import iter_source

_SAMPLE_KEYS = 3  # per partition, so a key template can be checked before a run


def planned_keys(s: Settings):
    """(key, relative path) of every file the run would upload, as the planner makes them (metadata only)."""
    rx = re.compile(s.year_pattern) if s.year_pattern else None
    for item in iter_source(s):
        if not isinstance(item, Skipped):
            yield task_for(item, prefix=s.prefix, year_pattern=rx, key_template=s.key_template,
                           normalization=s.key_normalization).key, item.rel


def check_keys(s: Settings) -> None:
    """SettingsError (a usage error) when the key template maps two files to one key. Only templates that
    are not unique by construction cost the extra walk of the source."""
    from mpupload.core.keys import collision_message, find_collisions, unique_by_construction
    from mpupload.settings.config import SettingsError

    if unique_by_construction(s.key_template):
        return
    # The whole source, not this --shard's share: two paths of different shards could meet at one key.
    collisions = find_collisions(planned_keys(replace(s, shard=None)))
    if collisions:
        raise SettingsError(collision_message(s.key_template, collisions))


def dry_run(s: Settings, *, out: IO[str]) -> int:
    rx = re.compile(s.year_pattern) if s.year_pattern else None
    files: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    batches: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    problems: list[tuple[str, str]] = []
    batcher = Batcher(max_files=s.batch_files, max_bytes=s.batch_bytes)
    filters = Filters.from_settings(s)  # counts what each filter left out
    for item in iter_source(s, filters=filters):
        if isinstance(item, Skipped):
            problems.append((item.rel, ("fail: " if item.failed else "skip: ") + item.reason))
            continue
        task = task_for(item, prefix=s.prefix, year_pattern=rx, key_template=s.key_template,
                        normalization=s.key_normalization)
        bad = key_problem(task.key)
        if bad:
            problems.append((item.rel, "fail: " + bad))
            continue
        files[task.partition] += 1
        if len(keys := samples.setdefault(task.partition, [])) < _SAMPLE_KEYS:
            keys.append(task.key)
        sizes[task.partition] += task.size
        for b in batcher.add(task):
            batches[b.partition] += 1
    for b in batcher.flush():
        batches[b.partition] += 1
    total_files, total_bytes = sum(files.values()), sum(sizes.values())
    gone = _would_delete(s) if s.delete else None
    if s.json_output:
        for rel, why in problems:
            kind, _, reason = why.partition(": ")
            out.write(json.dumps({"event": "skipped" if kind == "skip" else "failed", "path": rel,
                                  "reason": reason}, ensure_ascii=False) + "\n")
        out.write(json.dumps({"event": "plan", "files": total_files, "bytes": total_bytes,
                              "partitions": {p: {"files": files[p], "bytes": sizes[p], "batches": batches[p],
                                                 "sample_keys": samples.get(p, [])}
                                             for p in sorted(files)},
                              "not_uploadable": len(problems),
                              "object_settings": describe_object_settings(s),
                              # {filter: {"files": left out, "folders": not walked at all}}
                              "filtered": filters.report()}, ensure_ascii=False) + "\n")
        if gone is not None:
            out.write(json.dumps({"event": "would_delete", "count": gone.deleted, "keys": gone.keys,
                                  "listed": gone.listed, "max_delete": gone.limit, "refused": gone.refused},
                                 ensure_ascii=False) + "\n")
        return 0
    dest = f"s3://{s.bucket}/{s.prefix}".rstrip("/")
    out.write(f"Dry run: {total_files} files, {format_size(total_bytes)} in {len(files)} partitions "
              f"-> {dest} ({s.effective_processes} processes x {s.threads} threads); nothing uploaded.\n")
    out.write(f"{'partition':>10} {'files':>8} {'bytes':>12} {'batches':>8}  sample keys\n")
    for p in sorted(files):
        out.write(f"{p:>10} {files[p]:>8} {format_size(sizes[p]):>12} {batches[p]:>8}  "
                  f"{', '.join(samples.get(p, []))}\n")
    for rel, why in problems:
        out.write(f"  {rel}: {why}\n")
    out.write("Every object: " + "; ".join(describe_lines(s)) + ".\n")
    if removed := filters.report():
        out.write("Left out by filters: " + "; ".join(_removed_text(name, n) for name, n in removed.items()) + ".\n")
    if gone is not None and gone.refused:
        out.write(f"--delete would delete nothing: {gone.refused}\n")
    elif gone is not None:
        out.write(f"--delete would delete {gone.deleted} of {gone.listed} object(s) under {dest} "
                  f"(--max-delete {s.max_delete}: at most {gone.limit}):\n")
        for key in gone.keys:
            out.write(f"  delete {key}\n")
        if gone.deleted > len(gone.keys):
            out.write(f"  ... and {gone.deleted - len(gone.keys)} more\n")
    return 0


def _would_delete(s: Settings):
    """The mirror pass as a real run would make it, deleting nothing (it lists the destination: read-only)."""
    from mpupload.run.mirror import mirror
    from mpupload.s3.client import make_client

    return mirror(s, make_client(s), dry_run=True)


def _removed_text(name: str, n: dict[str, int]) -> str:
    parts = [f"{n['files']} file{'s' * (n['files'] != 1)}"] if n["files"] or not n["folders"] else []
    if n["folders"]:
        parts.append(f"{n['folders']} folder{'s' * (n['folders'] != 1)} not walked")
    return f"{name} {', '.join(parts)}"
