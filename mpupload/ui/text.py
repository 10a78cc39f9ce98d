"""What every terminal view shares: times, rates, safe file names, the progress line and the summary a person
reads at the end (plain lines, --quiet and the live view print the same one)."""

from __future__ import annotations

import json
import sys
from typing import IO

from mpupload.core.messages import UploadResult
from mpupload.core.units import format_size
from mpupload.observe.sinks import Sink
from mpupload.observe.stats import Snapshot
from mpupload.observe.summary import summary_dict

LIST_FAILURES = 50  # in the human summary; the failures file has them all


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


def rate(bps: float) -> str:
    return f"{bps / 1e6:.1f} MB/s"


def progress_line(s: Snapshot) -> str:
    total = f"{s.total_files}" + ("" if s.total_known else "+")
    res = s.resources
    return (
        f"{s.done}/{total} files ({s.uploaded} up, {s.skipped} skipped, {s.failed} failed) | "
        f"{format_size(s.bytes_uploaded + s.bytes_skipped)}/{format_size(s.total_bytes)} | "
        f"{rate(s.bytes_per_s)}, {s.files_per_min:.0f} files/min | ETA {eta_text(s.eta_seconds)} | "
        f"CPU {res.get('cpu_percent', 0):.0f}% RSS {format_size(res.get('rss', 0))} "
        f"net {rate(res.get('net_sent_per_s', 0))}"
    )


class HumanSummary(Sink):
    """The summary a person reads when the run ends (a Sink's finish)."""


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
        mirror = snap.mirror
        if mirror.get("refused"):
            w(f"  --delete: nothing deleted: {mirror['refused']}\n")
        elif mirror:
            w(f"  --delete: deleted {mirror['deleted']} object(s) with no file under the source"
              + (f"; {mirror['delete_failed']} could not be deleted" if mirror["delete_failed"] else "") + "\n")
        for reason, n in snap.skip_reasons:
            w(f"  skipped {n}: {reason}\n")
        for reason, n, examples in snap.failure_reasons:
            w(f"  failed {n}: {reason} (e.g. {', '.join(printable(e) for e in examples)})\n")
        if failures:
            w("Failed files:\n")
            for r in failures[:LIST_FAILURES]:
                w(f"  {printable(r.rel)}: {printable(r.reason)}\n")
            if snap.failed > LIST_FAILURES:
                w(f"  ... and {snap.failed - LIST_FAILURES} more (all of them: --failures-file PATH)\n")
        self.out.flush()


def say_fatal(message: str, *, json_summary: dict | None = None) -> None:
    """The one way a fatal condition reaches the operator: one line on stderr, and with --json the summary
    that says so on stdout (a script reading the JSON lines sees why there are no others)."""
    sys.stderr.write(f"mpupload: fatal: {message}\n")
    sys.stderr.flush()
    if json_summary is not None:
        sys.stdout.write(json.dumps(json_summary, ensure_ascii=False) + "\n")
        sys.stdout.flush()
