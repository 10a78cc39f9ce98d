"""What the destination already holds, listed lazily and streamed.

Listing a destination of millions of objects up front would hold the first upload back for minutes. Here
nothing is listed until the planner asks about a key the journal does not know; then only the top-level
folder of that key is listed (with the next few folders ahead of it, in parallel), page by page in a
thread, and a lookup waits only until that listing has passed the key. Listings are in key order (UTF-8
bytes, which is code point order) and the scan walks folders in name order, so the listing runs just
ahead of the scan. A folder the scan has left is dropped: memory holds the folders being looked at.

A rerun whose journal knows every file lists nothing at all.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from urllib.parse import unquote_plus
from xml.sax.saxutils import unescape

from mpupload.s3.probekeys import EMPTINESS_KEYS, only_probes
from mpupload.source import extsort

_CONTENTS = re.compile(rb"<Contents>(.*?)</Contents>", re.S)
_KEY, _SIZE, _ETAG = (re.compile(rb"<%s>(.*?)</%s>" % (n, n), re.S) for n in (b"Key", b"Size", b"ETag"))
_ENTITIES = {"&quot;": '"', "&apos;": "'", "&#34;": '"', "&#39;": "'", "&#x9;": "\t", "&#xA;": "\n", "&#xD;": "\r"}
UNKNOWN = ("?", "?")  # the listing failed: the planner leaves the decision to the worker's HEAD
_AHEAD = 8  # folders listed ahead of the one being looked at


def fast_listing(client) -> None:
    """Let `client` parse ListObjectsV2 pages itself: (key, size, ETag) of each object in `FastContents`.

    botocore's generic XML parser spends ~100 µs of CPU per listed object (a million objects: 100 s, more
    than the rest of a lost-journal rerun together). Before botocore parses a 200 page, this takes the
    `<Contents>` out of the body with three regular expressions each (~5 µs) and leaves botocore the rest
    (continuation token, common prefixes, errors): its signing, retries and error handling stay in use.
    Keys arrive URL-encoded when botocore asked for `EncodingType=url` (it does by default)."""
    client.meta.events.register("before-parse.s3.ListObjectsV2", _take_contents)


def _take_contents(response_dict=None, customized_response_dict=None, **_kwargs) -> None:
    if not response_dict or response_dict.get("status_code") != 200 or customized_response_dict is None:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes) or b"<Contents>" not in body:
        return
    url = b"<EncodingType>url</EncodingType>" in body
    rows = []
    for m in _CONTENTS.finditer(body):
        chunk = m.group(1)
        key, size, etag = _KEY.search(chunk), _SIZE.search(chunk), _ETAG.search(chunk)
        if key is None or size is None:
            return  # not what we expect: botocore parses the whole page
        name = key.group(1).decode("utf-8")
        if "&" in name:
            name = unescape(name, _ENTITIES)
        if url:
            name = unquote_plus(name)
        tag = unescape(etag.group(1).decode("utf-8"), _ENTITIES).strip('"') if etag else ""
        rows.append((name, int(size.group(1)), tag))
    response_dict["body"] = _CONTENTS.sub(b"", body)
    customized_response_dict["FastContents"] = rows


class _Listing:
    """One prefix listed in a thread; `lookup` waits until the listing has passed the key."""

    def __init__(self, *, client, bucket: str, prefix: str, delimiter: bool, closed: threading.Event):
        self.entries: dict[str, tuple[int, str]] = {}
        self.folders: list[str] = []  # with a delimiter: the sub-folders found (their names, no slash)
        self._cond = threading.Condition()
        self._last = ""
        self._done = False
        self._failed = False
        self._closed = closed
        self._prefix = prefix
        kwargs = {"Bucket": bucket, "Prefix": prefix, **({"Delimiter": "/"} if delimiter else {})}
        self._thread = threading.Thread(target=self._run, args=(client, kwargs, len(prefix)), daemon=True,
                                        name=f"list:{prefix}")
        self._thread.start()

    def _run(self, client, kwargs: dict, cut: int) -> None:
        try:
            for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
                if self._closed.is_set():
                    break
                objs = page.get("FastContents")
                if objs is None:  # parsed by botocore
                    objs = [(o["Key"], o["Size"], o.get("ETag", "").strip('"')) for o in page.get("Contents", [])]
                subs = [p["Prefix"][cut:].rstrip("/") for p in page.get("CommonPrefixes", [])]
                last = max([o[0] for o in objs[-1:]] + [p["Prefix"] for p in page.get("CommonPrefixes", [])[-1:]],
                           default="")
                with self._cond:
                    for key, size, etag in objs:
                        self.entries[key] = (size, etag)
                    self.folders.extend(subs)
                    self._last = max(self._last, last)
                    self._cond.notify_all()
        except Exception:
            self._failed = True
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def lookup(self, key: str, *, stop: threading.Event | None = None) -> tuple[int, str] | None:
        with self._cond:
            while not self._done and self._last < key:
                self._cond.wait(0.2)
                if stop is not None and stop.is_set():
                    return UNKNOWN
            if key in self.entries:
                return self.entries[key]
            return UNKNOWN if self._failed else None

    def has_folder(self, name: str, *, stop: threading.Event | None = None) -> bool | None:
        """Does the listing show this sub-folder? None: it cannot tell (it failed, or the run stops)."""
        marker = f"{self._prefix}{name}/"
        with self._cond:
            while not self._done and self._last < marker:
                self._cond.wait(0.2)
                if stop is not None and stop.is_set():
                    return None
            if name in self.folders:
                return True
            return None if self._failed else False


class DestinationIndex:
    """Lookups of (size, ETag) by key, for keys under `prefix`."""

    def __init__(self, *, make_client: Callable[[], object], bucket: str, prefix: str,
                 stop: threading.Event | None = None, known_empty: bool = False):
        """`known_empty`: the preflight just found nothing under the prefix (one round trip saved)."""
        self._make_client, self._client = make_client, None
        self._known_empty = known_empty
        self.bucket, self.stop = bucket, stop
        self.base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._closed = threading.Event()
        self._root: _Listing | None = None
        self._folders: dict[str, _Listing] = {}
        self.requests_started = 0  # listings started (each one or more pages)

    def is_empty(self) -> bool:
        """One request: does anything live under the prefix?"""
        if self._known_empty:
            return True
        if self._client is None:
            self._client = self._make_client()
            fast_listing(self._client)
        listed = self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.base, MaxKeys=EMPTINESS_KEYS)
        keys = [row[0] for row in listed.get("FastContents", [])] + [o["Key"] for o in listed.get("Contents", [])]
        return only_probes(keys, self.base.rstrip("/"))

    def _listing(self, prefix: str, *, delimiter: bool) -> _Listing:
        if self._client is None:
            self._client = self._make_client()
            fast_listing(self._client)
        self.requests_started += 1
        return _Listing(client=self._client, bucket=self.bucket, prefix=prefix, delimiter=delimiter,
                        closed=self._closed)

    def lookup(self, key: str) -> tuple[int, str] | None:
        """(size, ETag) of the object at `key`, None when there is none, UNKNOWN when the listing failed."""
        if self._root is None:
            self._root = self._listing(self.base, delimiter=True)
        rest = key[len(self.base):]
        folder, sep, _ = rest.partition("/")
        if not sep:
            return self._root.lookup(key, stop=self.stop)
        listing = self._folders.get(folder)
        if listing is None:
            exists = self._root.has_folder(folder, stop=self.stop)
            if exists is False:
                return None  # no such folder at the destination: nothing to list
            listing = self._open(folder)
        return listing.lookup(key, stop=self.stop)

    def _open(self, folder: str) -> _Listing:
        # The scan walks folders in name order: those before this one are done with (a source that comes
        # back to one costs a second listing, never a wrong answer).
        for name in [n for n in self._folders if n < folder]:
            del self._folders[name]
        listing = self._folders[folder] = self._listing(f"{self.base}{folder}/", delimiter=False)
        names = self._root.folders
        ahead = [n for n in names if n > folder and n not in self._folders][:_AHEAD]
        for name in ahead:
            self._folders[name] = self._listing(f"{self.base}{name}/", delimiter=False)
        return listing

    def close(self) -> None:
        self._closed.set()


def iter_listing(client, *, bucket: str, prefix: str, read_ahead: int = 4) -> Iterator[tuple[str, int]]:
    """Yield (key, size) for every object under prefix as the server lists them, streamed: one paginated
    listing, read ahead by a thread so the server's time overlaps the caller's, at most `read_ahead`
    pages (of 1,000 keys) held. The order is the server's: S3 lists in UTF-8 binary order, but SeaweedFS,
    for one, lists folder by folder ("a/b" before "a-b"), so a caller that needs S3's order sorts."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    pages: queue.Queue = queue.Queue(maxsize=read_ahead)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
                if not put([(o["Key"], o["Size"]) for o in page.get("Contents", [])]):
                    return
            put(None)
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)

    threading.Thread(target=read, daemon=True, name="listing").start()
    try:
        while (page := pages.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            yield from page
    finally:
        stop.set()  # the caller stopped early: the reader must not wait on a full queue forever


def _listing_bytes(rec: bytes) -> bytes:
    return rec[rec.index(b" ") + 1:]  # "SIZE KEY": the key's UTF-8 bytes are S3's order


def sorted_listing(client, *, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under the prefix, in S3's key order whatever the server's order (sorted on
    disk: memory stays flat with millions of objects)."""
    listing = iter_listing(client, bucket=bucket, prefix=prefix)
    records = (b"%d %s" % (size, key.encode("utf-8", "surrogateescape")) for key, size in listing)
    for rec in extsort.read(extsort.sort_to_file(records, key=_listing_bytes)):
        size, _, key = rec.partition(b" ")
        yield key.decode("utf-8", "surrogateescape"), int(size)
