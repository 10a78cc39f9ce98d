"""Drawing `mpupload status`: the status of a journal's run as a few labelled lines, or one JSON document,
once or again every few seconds (--watch) until the run is no longer running or Ctrl-C (exit 130)."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from typing import IO

from mpupload.core.units import format_size
from mpupload.observe.stats import PartitionRow, busiest_first
from mpupload.ui.text import eta_text, printable

_PARTITIONS_SHOWN = 8


def _when(wall: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall)) if wall else "?"


def _mbps(bps: float | None) -> str:
    return "?" if bps is None else f"{bps / 1e6:.1f} MB/s"


def _pct(part: int, whole: int) -> str:
    return f" ({part / whole * 100:.0f}%)" if whole else ""


def _run_line(st: dict, now: float) -> str:
    state = st["state"]
    if state == "running":
        since = st.get("since") or st.get("started_at")
        return f"running, pid {st['pid']}, since {_when(since)} ({eta_text(now - since) if since else '?'} ago)"
    if state == "starting":
        return f"starting, pid {st['pid']}, since {_when(st.get('since'))} (no progress written yet)"
    if state == "finished":
        took = (st["finished_at"] - st["started_at"]) if st.get("finished_at") and st.get("started_at") else None
        how = st.get("outcome") or "?"
        if st.get("signal"):
            how += f" by {st['signal']}"
        line = f"finished {_when(st.get('finished_at'))} after {eta_text(took)}: {how} (exit code {st.get('exit_code')})"
        return line + (f"; {st['message']}" if st.get("message") else "")
    if state == "stopped":
        return (f"not running: the run (pid {st.get('run_pid')}) ended without finishing after its last update "
                f"{_when(st.get('updated_at'))} (killed?); run the same command again to resume")
    return "not running; no progress recorded (a run of an older mpupload?)"


def status_lines(st: dict, *, now: float | None = None) -> list[str]:
    """The human view of status_of()'s document."""
    now = time.time() if now is None else now
    out = [f"journal   {st['journal']}", f"run       {_run_line(st, now)}"]
    if st.get("destination"):
        out.append(f"          {st.get('source')} -> {st['destination']} ({st.get('endpoint')})")
    if "total_files" not in st:
        if st.get("stored_in_journal") is not None:
            out.append(f"stored    {st['stored_in_journal']} files recorded in the journal")
        return out
    more = "" if st["total_known"] else "+ (still counting)"
    out.append(f"done      {st['done_files']} of {st['total_files']}{more} files{_pct(st['done_files'], st['total_files'])}"
               f", {format_size(st['done_bytes'])} of {format_size(st['total_bytes'])}: uploaded {st['uploaded']}, "
               f"skipped {st['skipped']}, failed {st['failed']}")
    out.append(f"left      {st['left_files']} files, {format_size(st['left_bytes'])}")
    if st["state"] == "running":
        minutes = st["rate_window_seconds"] / 60
        recent = (f"{st['files_per_min_1m']:.0f} files/min, {_mbps(st['bytes_per_s_1m'])} over the last minute"
                  if st.get("files_per_min_1m") is not None else "not measured yet")
        longer = (f"; {st['files_per_min']:.0f} files/min, {_mbps(st['bytes_per_s'])} over the last {minutes:.1f} min"
                  if st.get("files_per_min") is not None else "")
        out.append(f"rate      {recent}{longer}")
        out.append(f"ETA       {eta_text(st.get('eta_seconds'))}")
        if st.get("updated_seconds_ago", 0) > 30:
            out.append(f"updated   {st['updated_seconds_ago']:.0f} s ago (the run may be stalled)")
    elif st.get("files_per_min") is not None:
        out.append(f"rate      {st['files_per_min']:.0f} files/min, {_mbps(st['bytes_per_s'])} over its last "
                   f"{st['rate_window_seconds'] / 60:.1f} min")
    extra = [f"{name} {n}" for name, n in (("retries", st.get("retries")), ("throttles", st.get("throttles")),
                                            ("outage holds", st.get("outages"))) if n]
    if extra:
        out.append(f"slowed    {', '.join(extra)}")
    rows = [PartitionRow(name=p["name"], files=p["files"], bytes=p["bytes"], done=p["done"], done_bytes=p["done_bytes"],
                         failed=p["failed"], last=0.0, known=p["known"]) for p in st.get("partitions", [])]
    if rows:
        under_way = [r for r in busiest_first(rows) if not r.complete]
        shown = under_way[:_PARTITIONS_SHOWN]
        text = ", ".join(f"{r.name or '-'} {r.done}/{r.files}" for r in shown) or "none"
        rest = len(under_way) - len(shown)
        done = len(rows) - len(under_way)
        out.append(f"partitions {len(rows)}: {done} done; not done: {text}" + (f" +{rest} more" if rest else ""))
    if st["failed"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in st.get("failures_by_reason", {}).items())
        out.append(f"failures  {st['failed']}: {reasons}")
        for f in st.get("recent_failures", [])[-3:]:
            out.append(f"          {printable(f['path'])}: {printable(f['reason'])}")
    return out


def show(get: Callable[[], dict], *, json_output: bool, out: IO[str] = sys.stdout) -> dict:
    st = get()
    if json_output:
        out.write(json.dumps(st, ensure_ascii=False) + "\n")
    else:
        out.write("\n".join(status_lines(st)) + "\n")
    out.flush()
    return st


def watch_status(get: Callable[[], dict], *, every: float, json_output: bool, out: IO[str] = sys.stdout) -> None:
    """Show the status every `every` seconds while a run holds the journal, and once more after it let go.
    On a terminal the view is redrawn in place (rich), else appended. Ctrl-C / SIGTERM: exit 128 + n."""
    from mpupload.core.stopping import Interrupted, exit_code_for, raise_on_stop_signals

    raise_on_stop_signals()
    try:
        if not json_output and out.isatty():
            _watch_live(get, every=every)
        else:
            while show(get, json_output=json_output, out=out)["running"]:
                time.sleep(every)  # the refresh period itself, not a wait for a condition
    except Interrupted as exc:
        sys.exit(exit_code_for(exc.signum or signal.SIGINT))


def _watch_live(get: Callable[[], dict], *, every: float) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    def frame() -> tuple[Text, dict]:
        st = get()
        return Text("\n".join(status_lines(st)), no_wrap=True, overflow="ellipsis"), st

    text, st = frame()
    with Live(text, console=Console(), auto_refresh=False, transient=False) as live:
        while st["running"]:
            time.sleep(every)
            text, st = frame()
            live.update(text, refresh=True)


def journal_of(*, source: str | None, dest: str | None, journal: str | None, endpoint_url: str | None,
               shard: str | None = None) -> str:
    """The journal the upload of SOURCE to DEST through ENDPOINT (with --shard) uses, or the one given.
    SettingsError when the arguments name none, or two."""
    import os

    from mpupload.s3.client import parse_s3_url
    from mpupload.settings.config import SettingsError
    from mpupload.state.journal import journal_path

    if journal is not None:
        if source or dest:
            raise SettingsError("give either SOURCE and DEST or --journal PATH, not both")
        return journal
    if not (source and dest):
        raise SettingsError("give SOURCE and s3://BUCKET[/PREFIX] (as given to upload), or --journal PATH")
    bucket, prefix = parse_s3_url(dest)
    return journal_path(source=os.path.abspath(source), endpoint_url=endpoint_url, bucket=bucket, prefix=prefix,
                        shard=shard)


def run_status(*, source: str | None, dest: str | None, journal: str | None, endpoint_url: str | None,
               json_output: bool, watch: float | None, shard: str | None = None) -> int:
    """The `status` command: its exit code (2 without a journal; SettingsError for arguments that name none)."""
    from mpupload.observe.runstatus import EXIT_NO_JOURNAL, status_of

    path = journal_of(source=source, dest=dest, journal=journal, endpoint_url=endpoint_url, shard=shard)

    def get() -> dict:
        try:
            return status_of(path)
        except FileNotFoundError:
            if source is None:
                sys.stderr.write(f"mpupload: error: no journal at {path}\n")
            else:
                through = f" through {endpoint_url}" if endpoint_url else ""
                sys.stderr.write(f"mpupload: error: no journal at {path} for {source} -> {dest}{through}: no run "
                                 "has used this source and destination (with this --endpoint-url); give --journal "
                                 "PATH for a journal elsewhere\n")
            sys.exit(EXIT_NO_JOURNAL)

    if watch is None:
        show(get, json_output=json_output)
    else:
        watch_status(get, every=watch, json_output=json_output)
    return 0
