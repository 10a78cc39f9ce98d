"""`--shard K/N`: N machines with no cluster between them split one migration by a stable hash of each
file's relative path, and together cover every file exactly once.

The hash is xxh64 of the path's key form (NFC unless --key-normalization none: two spellings of one name
land in one shard, where the collision between them is found) in UTF-8, never Python's `hash()`, which
is salted per process: every machine, every run and every Python version puts a path in the same shard.
A path goes to shard `xxh64 % N + 1`, so the N shards are disjoint and their union is the source.

Each shard keeps its own journal (its default name carries the shard), and `verify --shard K/N` checks
that share of the destination while `verify` without --shard checks all of it from one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import xxhash

from mpupload.core.errors import SettingsError
from mpupload.core.keys import key_bytes, normalize


class ShardError(SettingsError):
    pass


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'2/4' -> Shard(2, 4)."""
        k, slash, n = text.strip().partition("/")
        try:
            index, count = int(k), int(n)
        except ValueError:
            index = count = 0
        if not slash or count < 1 or not 1 <= index <= count:
            raise ShardError(f"--shard must be K/N with 1 <= K <= N, e.g. 2/4 (got {text!r})")
        return cls(index, count)

    def holds(self, rel: str, normalization: str = "nfc") -> bool:
        """Is this relative path (as on disk, or as in a key after the prefix) in this shard?"""
        return shard_of(rel, self.count, normalization) == self.index

    @property
    def label(self) -> str:
        """For file names: '2of4'."""
        return f"{self.index}of{self.count}"


def shard_of(rel: str, count: int, normalization: str = "nfc") -> int:
    """The shard (1..count) a relative path belongs to."""
    return xxhash.xxh64_intdigest(key_bytes(normalize(rel, normalization))) % count + 1
