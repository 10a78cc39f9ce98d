"""Drawing, and only drawing: every view is fed Snapshots and results by the coordinator's main thread,
the one writer to the terminal. Three views share one interface (after restic's progress printers):
a live rich bar on a terminal, plain periodic log lines otherwise, and JSON lines with --json."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Protocol

from mpupload.core.messages import UPLOADED, UploadResult
from mpupload.observe.stats import Snapshot
from mpupload.settings.config import format_size

_LIST_FAILURES = 50  # in the human summary; the failures file has them all



def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def printable(text: str) -> str:
    """A file name as one safe line: control characters (a newline in a name) shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _rate(bps: float) -> str:
    return f"{bps / 1e6:.1f} MB/s"


def progress_line(s: Snapshot) -> str:
    total = f"{s.total_files}" + ("" if s.total_known else "+")
    res = s.resources
    return (
        f"{s.done}/{total} files ({s.uploaded} up, {s.skipped} skipped, {s.failed} failed) | "
        f"{format_size(s.bytes_uploaded + s.bytes_skipped)}/{format_size(s.total_bytes)} | "
        f"{_rate(s.bytes_per_s)}, {s.files_per_min:.0f} files/min | ETA {eta_text(s.eta_seconds)} | "
        f"CPU {res.get('cpu_percent', 0):.0f}% RSS {format_size(res.get('rss', 0))} "
        f"net {_rate(res.get('net_sent_per_s', 0))}"
    )


def transport_summary(counts: dict) -> dict:
    """Requests sent lean and through botocore, lean requests declined (by reason), processes whose lean path
    was off (by reason), and the transport checksums used (the ones most processes chose)."""
    def under(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: n for k, n in sorted(counts.items()) if k.startswith(prefix)}

    checksums, multipart = under("checksum."), under("multipart_checksum.")
    return {
        "lean": counts.get("lean", 0), "botocore": counts.get("botocore", 0),
        "declined": sum(under("declined.").values()), "declined_by_reason": under("declined."),
        "lean_off": under("lean_off."),
        "checksum": max(checksums, key=checksums.__getitem__) if checksums else None,
        # "CRC64NVME FULL_OBJECT" where the server keeps a whole-object checksum (fullprobe.py), else composite
        "multipart_checksum": max(multipart, key=multipart.__getitem__) if multipart else None,
    }


def summary_dict(s: Snapshot, *, interrupted: str | bool = False, fatal: str | None = None) -> dict:
    res = s.resources
    return {
        "event": "summary",
        "uploaded": s.uploaded, "skipped": s.skipped, "failed": s.failed,
        "found": s.found_files, "not_done": s.pending,
        "bytes": s.bytes_uploaded, "bytes_skipped": s.bytes_skipped, "bytes_found": s.found_bytes,
        "bytes_sent": s.bytes_sent, "parts_reused": s.parts_reused,
        "worker_restarts": s.worker_restarts,
        "seconds": round(s.elapsed, 3),
        "files_per_min": round(s.uploaded / s.elapsed * 60, 1) if s.elapsed > 0 else 0.0,
        "mb_per_s": round(s.bytes_uploaded / s.elapsed / 1e6, 3) if s.elapsed > 0 else 0.0,
        "peak_rss": res.get("peak_rss", 0),
        "throttles": res.get("throttles", 0), "outages": res.get("outages", 0),
        "limit_waits": res.get("limit_waits", 0), "limit_wait_seconds": res.get("limit_wait_seconds", 0.0),
        "partition_pauses": res.get("partition_pauses", 0),
        "latency_ms": res.get("latency_ms"), "inflight_per_process": res.get("inflight_limit"),
        "failures_by_reason": {g: n for g, n, _ in s.failure_reasons},
        "skips_by_reason": dict(s.skip_reasons),
        "requests": transport_summary(s.transport),
        "interrupted": bool(interrupted),
        "signal": interrupted if isinstance(interrupted, str) else None,
        "fatal": fatal,
    }


class Reporter(Protocol):
    def start(self, text: str) -> None: ...
    def progress(self, snap: Snapshot) -> None: ...
    def result(self, r: UploadResult) -> None: ...
    def warn(self, text: str) -> None: ...
    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool, fatal: str | None) -> None: ...
    def close(self) -> None: ...


class _HumanSummary:
    out: IO[str]

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool, fatal: str | None) -> None:
        self.close()
        d = summary_dict(snap, interrupted=interrupted, fatal=fatal)
        w = self.out.write
        w("\n")
        if fatal:
            w(f"STOPPED: {fatal}\n")
        elif interrupted:
            by = f" by {interrupted}" if isinstance(interrupted, str) else ""
            w(f"INTERRUPTED{by}: the run was stopped; run the same command again to finish.\n")
        w(f"Uploaded {d['uploaded']} files ({format_size(d['bytes'])}), skipped {d['skipped']}, "
          f"failed {d['failed']}" + (f", not done {d['not_done']}" if d["not_done"] else "") +
          f" of {d['found']} found, in {eta_text(snap.elapsed)} "
          f"({d['files_per_min']:.0f} files/min, {d['mb_per_s']:.1f} MB/s, peak RSS {format_size(d['peak_rss'])}).\n")
        if snap.worker_restarts:
            w(f"  {snap.worker_restarts} worker process(es) died and were replaced; their files were handed on.\n")
        if snap.parts_reused:
            w(f"  {snap.parts_reused} multipart parts were already on S3 from an earlier run and not sent again.\n")
        if d["throttles"]:
            w(f"  the server throttled {d['throttles']} request(s): every worker slowed down\n")
        if d["limit_waits"]:
            w(f"  {d['limit_waits']} request(s) waited {d['limit_wait_seconds']:g} s in all for --max-bandwidth / "
              "--max-requests-per-second: slower by design, nothing failed\n")
        if d["partition_pauses"]:
            w(f"  paused {d['partition_pauses']} time(s) between partitions (--partition-pause)\n")
        if d["outages"]:
            w(f"  the endpoint stopped answering {d['outages']} time(s): every worker paused while a probe waited for it\n")
        req = d["requests"]
        if req["lean"] or req["botocore"]:
            declined = ", ".join(f"{r} {n}" for r, n in req["declined_by_reason"].items())
            w(f"  requests: {req['lean']} lean, {req['botocore']} through botocore"
              + (f"; lean declined {req['declined']} ({declined})" if req["declined"] else "")
              + (f"; transport checksum {req['checksum']}" if req["checksum"] else "") + "\n")
        for reason, n in snap.skip_reasons:
            w(f"  skipped {n}: {reason}\n")
        for reason, n, examples in snap.failure_reasons:
            w(f"  failed {n}: {reason} (e.g. {', '.join(printable(e) for e in examples)})\n")
        if failures:
            w("Failed files:\n")
            for r in failures[:_LIST_FAILURES]:
                w(f"  {printable(r.rel)}: {printable(r.reason)}\n")
            if snap.failed > _LIST_FAILURES:
                w(f"  ... and {snap.failed - _LIST_FAILURES} more (all of them: --failures-file PATH)\n")
        self.out.flush()


class PlainReporter(_HumanSummary):
    """Log lines every `interval` seconds (not a TTY: a CI log, a nohup file)."""

    def __init__(self, *, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr, interval: float = 10.0):
        self.out, self.err, self.interval = out, err, interval
        self._last = 0.0

    def start(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def progress(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.err.write(time.strftime("%H:%M:%S ") + progress_line(snap) + "\n")
            self.err.flush()

    def result(self, r: UploadResult) -> None:
        pass  # failures are listed in the summary; per-file lines would flood a long run's log

    def warn(self, text: str) -> None:
        self.err.write(f"mpupload: warning: {text}\n")
        self.err.flush()

    def close(self) -> None:
        pass


class QuietReporter(_HumanSummary):
    """--quiet: the summary alone (and warnings, on stderr: they say what to fix)."""

    def __init__(self, *, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr):
        self.out, self.err = out, err

    def start(self, text: str) -> None:
        pass

    def progress(self, snap: Snapshot) -> None:
        pass

    def result(self, r: UploadResult) -> None:
        pass

    def warn(self, text: str) -> None:
        self.err.write(f"mpupload: warning: {text}\n")
        self.err.flush()

    def close(self) -> None:
        pass


class JsonReporter:
    """JSON lines on stdout: one event per file not uploaded, periodic progress, a final summary."""

    def __init__(self, *, out: IO[str] = sys.stdout, interval: float = 5.0):
        self.out, self.interval = out, interval
        self._last = 0.0

    def _emit(self, obj: dict) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def start(self, text: str) -> None:
        self._emit({"event": "start", "message": text})

    def progress(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._emit({"event": "progress", "done": snap.done, "found": snap.found_files,
                        "total_files": snap.total_files if snap.total_known else None,
                        "uploaded": snap.uploaded, "skipped": snap.skipped, "failed": snap.failed,
                        "bytes": snap.bytes_uploaded, "bytes_per_s": round(snap.bytes_per_s),
                        "eta_seconds": snap.eta_seconds, "cpu_percent": snap.resources.get("cpu_percent"),
                        "rss": snap.resources.get("rss")})

    def result(self, r: UploadResult) -> None:
        if r.status != UPLOADED:
            self._emit({"event": r.status, "path": r.rel, "key": r.key, "reason": r.reason, "size": r.size})

    def warn(self, text: str) -> None:
        self._emit({"event": "warning", "message": text})

    def finish(self, snap: Snapshot, failures: list[UploadResult], *, interrupted: str | bool, fatal: str | None) -> None:
        self._emit(summary_dict(snap, interrupted=interrupted, fatal=fatal))

    def close(self) -> None:
        pass


def make_reporter(*, json_output: bool, interval: float, quiet: bool = False) -> Reporter:
    if json_output:
        return JsonReporter(interval=max(interval, 5.0))
    if quiet:
        return QuietReporter()
    if sys.stderr.isatty():
        from mpupload.ui.liveview import RichReporter  # rich is imported only for a terminal

        return RichReporter()
    return PlainReporter(interval=max(interval, 10.0))
