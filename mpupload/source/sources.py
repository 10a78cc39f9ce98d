"""Where the files of a run come from: a walk of the source folder, or the list `--files-from` names.
Every reader of the source (the planner's feeder and census, the dry run, verify, the autotune sample)
goes through `iter_source`, so all of them see the same files under the same keys, in key order."""

from __future__ import annotations

from collections.abc import Iterator

from mpupload.settings.config import Settings
from mpupload.source.filters import Filtered, Filters
from mpupload.source.scan import FileEntry, Skipped, scan


def iter_source(s: Settings, *, filters: Filters | None = None) -> Iterator[FileEntry | Skipped | Filtered]:
    """The run's files in S3's key order (keys.py), with `Skipped` entries for what cannot be uploaded
    (`failed=True` for what should have been and is not: report those as failed). May be called more
    than once per process; a list read from stdin is read and sorted only once. `filters`: the selection
    (filters.py) to count with, or to have left-out files marked (`Filtered` entries, verify); by default
    the settings' own, unmarked."""
    filters = filters or Filters.from_settings(s)
    if s.files_from:
        from mpupload.source.manifest import entries

        items = entries(s.source, s.files_from, null=s.null, follow_symlinks=s.follow_symlinks, filters=filters,
                        normalization=s.key_normalization)
    else:
        items = scan(s.source, follow_symlinks=s.follow_symlinks, filters=filters, normalization=s.key_normalization)
    if not s.shard:
        return items
    from mpupload.core.shard import Shard

    shard = Shard.parse(s.shard)  # --shard K/N: only this machine's share (shard.py)
    return (item for item in items if shard.holds(item.rel, s.key_normalization))
