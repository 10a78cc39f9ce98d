"""The command line. Options take their defaults and help from `Settings` (config.py), so the settings
live in one place; this module only maps flags to fields and the outcome to an exit code:
0 all uploaded or skipped, 1 some failed, 2 usage error (or another run holds the journal), 3 fatal
(credentials, bucket, endpoint), 130 interrupted."""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from .cli_options import (
    _opt,
    _Rate,
    _Size,
    build_settings,
    listing_options,
    pool_options,
    selection_options,
    source_and_destination,
)
from .config import Settings, SettingsError
from .errors import FatalError
from .settings_layers import with_config_options

if TYPE_CHECKING:
    from .preflight import ProbeResult
from .stopping import exit_code_for


def _preflight_or_exit(settings: Settings, *, write: bool) -> ProbeResult:
    """The fatal-error probe for commands other than upload (which overlaps it with worker start-up);
    returns what it learned on the way (the link's latency among it)."""
    from .preflight import preflight

    try:
        probe = preflight(settings, write=write)
        probe.finish_cleanup()  # nothing here waits on the first upload: tidy up at once
        return probe
    except FatalError as exc:
        click.echo(f"mpupload: fatal: {exc.message}", err=True)
        sys.exit(3)


def _exit_like_ctrl_c(work):
    """Run `work`; Ctrl-C, SIGTERM or SIGHUP unwind it through its own cleanup (tune deletes its scratch
    objects) and exit 128 + the signal's number. Worker processes of verify end with their parent."""
    from .stopping import Interrupted, raise_on_stop_signals

    raise_on_stop_signals()
    try:
        return work()
    except Interrupted as exc:
        click.echo(f"mpupload: interrupted ({exc})", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: a process pool's exit hooks would wait for the tasks still running.
        os._exit(exit_code_for(exc.signum))


def _fail_usage(message: str) -> None:
    click.echo(f"mpupload: error: {message}", err=True)
    sys.exit(2)


def _autotune(ctx: click.Context, settings: Settings) -> Settings:
    """Processes / threads the user left unset (not on the command line, not in --config): chosen from
    the CPU count and a bounded pre-scan of the source's size mix (autotune.py)."""
    from click.core import ParameterSource

    from .autotune import choose, sample_mix
    from .sources import iter_source

    auto = [n for n in ("processes", "threads") if ctx.get_parameter_source(n) == ParameterSource.DEFAULT]
    if "threads" in auto:
        # Small files in flight follow the link (concurrency.py); --threads still sizes the part pool.
        settings = replace(settings, adaptive=True).validated()
        auto.remove("threads")
    if settings.executor == "dask" and settings.scheduler and "processes" in auto:
        auto.remove("processes")  # the cluster's workers are the processes
    if not auto:
        return settings
    mix = sample_mix(settings.source, threshold=settings.multipart_threshold, items=iter_source(settings))
    choice = choose(cpus=os.cpu_count() or 2, mix=mix)
    picked = {n: getattr(choice, n) for n in auto}
    if settings.executor == "dask" and picked.get("processes") == 0:
        picked["processes"] = 1  # a LocalCluster has at least one worker: no threads-in-this-process shortcut
    if not settings.json_output:
        click.echo(f"mpupload: processes {choice.processes} ({choice.reason})", err=True)
    return replace(settings, **picked).validated()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="mpupload")
def main() -> None:
    """Upload very large collections of files to S3 and S3-compatible stores, fast, and prove they arrived."""


@main.command()
@source_and_destination
@pool_options
@_opt("multipart_threshold", type=_Size())
@_opt("multipart_chunksize", type=_Size())
@_opt("file_attempts", type=int)
@_opt("backoff_base", type=float)
@_opt("backoff_cap", type=float)
@_opt("outage_timeout", type=float)
@_opt("stop_grace", type=float)
@_opt("max_inflight", type=int)
@_opt("inflight_bytes", type=_Size())
@_opt("checksum")
@_opt("fast_put", "--fast-put/--no-fast-put")
@selection_options
@listing_options
@_opt("year_pattern")
@_opt("key_template")
@_opt("follow_symlinks", "--follow-symlinks/--no-follow-symlinks")
@_opt("batch_files", type=int)
@_opt("batch_bytes", type=_Size())
@_opt("skip_existing")
@_opt("journal", type=click.Path(dir_okay=False))
@_opt("dry_run", "--dry-run", is_flag=True)
@_opt("json_output", "--json", is_flag=True)
@_opt("progress_interval", type=float)
@_opt("quiet", "--quiet", "-q", is_flag=True)
@_opt("max_bandwidth", type=_Rate())
@_opt("max_requests_per_second", type=click.FloatRange(min=0, min_open=True))
@_opt("partition_pause", type=click.FloatRange(min=0))
@_opt("report", type=click.Path(file_okay=False))
@_opt("executor")
@_opt("scheduler")
@_opt("shard")
@click.option("--failures-file", type=click.Path(dir_okay=False, writable=True),
              help="Write every failed file (JSON lines: path, key, reason) here.")
@_opt("log_file", type=click.Path(dir_okay=False))
@with_config_options
@click.pass_context
def upload(ctx: click.Context, source: str, dest: str, failures_file: str | None, **opts) -> None:
    """Upload SOURCE (a folder) to s3://BUCKET/PREFIX: key = PREFIX/<path relative to SOURCE>.

    \b
    Without --processes / --threads (here or in --config), they are chosen from the CPU
    count and the sizes of the first 2,000 files: one process per core for small files,
    one or two for mostly large files, fewer for a small job.
    \b
    Memory (peak RSS of all processes) stays below about
      60 MB + processes x (75 MB + min(inflight-bytes, files in flight x
        multipart-threshold) + threads x multipart-chunksize)
    (README, Memory): small files in flight are bounded by --inflight-bytes
    (256 MiB) per process, parts by --threads x --multipart-chunksize.
    """
    _pause_collector()
    from .stopping import Interrupted, raise_on_stop_signals

    raise_on_stop_signals()  # until the coordinator takes over: SIGTERM and SIGHUP end set-up like Ctrl-C
    try:
        settings = build_settings(source, dest, **opts)
        if settings.executor == "dask" and not settings.dry_run:
            from .cluster.connect import require_dask

            require_dask()  # a usage error before anything starts
        settings = _autotune(ctx, settings)
        from .dryrun import check_keys

        check_keys(settings)  # two files to one key: a usage error before anything is sent
        if settings.dry_run:
            from .dryrun import dry_run

            sys.exit(dry_run(settings, out=sys.stdout))
        code = run_upload(settings, failures_file=failures_file)
        gc.freeze()  # the interpreter's teardown then skips scanning what is left (~0.08 s after boto3)
        sys.exit(code)
    except SettingsError as exc:
        _fail_usage(str(exc))
    except FatalError as exc:  # e.g. the journal cannot be created
        click.echo(f"mpupload: fatal: {exc.message}", err=True)
        sys.exit(3)
    except Interrupted as exc:  # before the workers started (probe, setup): nothing to clean up
        click.echo(f"mpupload: interrupted ({exc}) before the upload started", err=True)
        sys.exit(exit_code_for(exc.signum))


@main.command()
@source_and_destination
@pool_options
@selection_options
@listing_options
@_opt("follow_symlinks", "--follow-symlinks/--no-follow-symlinks")
@_opt("json_output", "--json", is_flag=True)
@_opt("shard")
@click.option("--deep", is_flag=True, help="Download every object and hash its bytes (slow, thorough).")
@_opt("key_template")
@_opt("year_pattern")
@with_config_options
def verify(source: str, dest: str, deep: bool, **opts) -> None:
    """Check that s3://BUCKET/PREFIX matches SOURCE: every file present, same size, same xxh3-128.

    Exit 0 only when everything matches; 1 lists what is missing, different or extra; 3 fatal.
    """
    from .verify import verify as run_verify

    try:
        settings = build_settings(source, dest, **opts)
    except SettingsError as exc:
        _fail_usage(str(exc))
    _exit_like_ctrl_c(lambda: (_preflight_or_exit(settings, write=False),
                               sys.exit(run_verify(settings, deep=deep, out=sys.stdout))))


@main.command()
@source_and_destination
@_opt("multipart_threshold", type=_Size())
@_opt("multipart_chunksize", type=_Size())
@_opt("checksum")
@selection_options
@click.option("--budget", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to spend sweeping (the first trial always runs).")
@click.option("--write-config", type=click.Path(dir_okay=False, writable=True),
              help="Write the recommended settings here (TOML, or JSON for a .json name) for `upload --config`.")
@with_config_options
def tune(source: str, dest: str, budget: float, write_config: str | None, **opts) -> None:
    """Find fast settings for this machine, network and server: upload a sample of SOURCE to a scratch
    prefix under s3://BUCKET/PREFIX with several processes x threads (x part sizes when the sample has
    large files) within --budget seconds, watch CPU and network, recommend settings and say what limits
    them. Every scratch object is deleted afterwards."""
    from .tune import tune as sweep

    try:
        settings = build_settings(source, dest, **opts)
    except SettingsError as exc:
        _fail_usage(str(exc))
    latency = _preflight_or_exit(settings, write=True).latency
    try:
        rec = _exit_like_ctrl_c(lambda: sweep(settings, budget=budget, echo=lambda m: click.echo(m, err=True),
                                              latency=latency))
    except RuntimeError as exc:
        click.echo(f"mpupload: tune: {exc}", err=True)
        sys.exit(1)
    chunk = f"{rec.chunksize // (1024 * 1024)}MiB"
    click.echo(f"recommended: --processes {rec.processes} --threads {rec.threads} --multipart-chunksize {chunk}")
    click.echo(f"{rec.bound}: {rec.why}")
    if write_config:
        from .configfile import dump

        dump(write_config, {"processes": rec.processes, "threads": rec.threads, "multipart_chunksize": chunk},
             comments=[f"mpupload tune, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                       f"{len(rec.trials)} trials on a sample of {settings.source}",
                       f"{rec.bound}: {rec.why}"])
        click.echo(f"wrote {write_config} (use: mpupload upload --config {write_config} ...)")


@main.group()
def config() -> None:
    """Settings: defaults, the settings file ($XDG_CONFIG_HOME/mpupload/config.toml or --config) and its
    presets, environment variables (MPUPLOAD_<OPTION>), flags."""


def _add_config_commands() -> None:
    from .configshow import show_command

    config.add_command(show_command(upload))


_add_config_commands()


def _pause_collector() -> None:
    """Start-up (boto3, botocore's models, a client) allocates hundreds of thousands of objects that live
    as long as the process; the cyclic collector scanning them again and again while they are created
    costs ~15% of start-up CPU. Paused here, resumed by _resume_collector once the run is under way."""
    gc.disable()


def _resume_collector() -> None:
    # What start-up built stays for the whole run: frozen out of the collector's sight, so later
    # collections (and the one at exit) scan only what the run itself allocates.
    gc.freeze()
    gc.enable()


def _preflight_then_resume(settings: Settings, *, write: bool = True, checksum_verdict=None) -> ProbeResult:
    """The preflight probe, after which start-up is over (the coordinator runs it once its workers are
    starting): the collector resumes whatever the probe found."""
    from .preflight import preflight

    try:
        return preflight(settings, write=write, checksum_verdict=checksum_verdict)
    finally:
        _resume_collector()


@main.command()
@click.argument("path", required=False, type=click.Path(exists=True))
@click.option("--journal", type=click.Path(dir_okay=False), help="List only the reports of the runs on this journal.")
@_opt("json_output", "--json", is_flag=True)
def report(path: str | None, journal: str | None, json_output: bool) -> None:
    """List run reports, or draw report.html again from a report.json (PATH: the file or its folder).

    \b
    Every upload writes report.json and report.html, by default in a folder per run
    beside its journal (JOURNAL-reports/), or in the folder given with --report.
    """
    import json

    from .journal import state_dir
    from .runreport import list_reports, reports_root, rerender

    if path:
        try:
            html = rerender(path)
        except (OSError, ValueError) as exc:
            _fail_usage(f"cannot re-draw the report from {path}: {exc}")
        click.echo(str(html))
        return
    roots = [reports_root(journal)] if journal else [state_dir() / "journals"]
    found = list_reports(roots)
    if json_output:
        for r in found:
            click.echo(json.dumps({"path": str(r.path), "started_at": r.started_at, "source": r.source,
                                   "destination": r.destination, "uploaded": r.uploaded, "failed": r.failed,
                                   "seconds": r.seconds, "outcome": r.outcome}))
        return
    if not found:
        click.echo(f"no reports under {', '.join(str(r) for r in roots)}", err=True)
        return
    for r in found:
        click.echo(f"{r.started_at}  {r.outcome:<11} {r.uploaded:>9} up {r.failed:>6} failed {r.seconds:>8.1f} s  "
                   f"{r.source} -> {r.destination}\n    {r.path / 'report.html'}")


@main.command()
@click.argument("source", required=False, type=click.Path(file_okay=False))
@click.argument("dest", required=False, metavar="[s3://BUCKET[/PREFIX]]")
@click.option("--journal", type=click.Path(dir_okay=False),
              help="The journal to look at (the one given to `upload --journal`), instead of SOURCE DEST.")
@_opt("endpoint_url", envvar="AWS_ENDPOINT_URL_S3")
@_opt("json_output", "--json", is_flag=True)
@click.option("--watch", type=click.FloatRange(min=0.5, max=3600), is_flag=False, flag_value=2.0, default=None,
              metavar="[SECONDS]", help="Show it again every SECONDS (2) until the run ends; Ctrl-C stops.")
def status(source: str | None, dest: str | None, journal: str | None, endpoint_url: str | None, json_output: bool,
           watch: float | None) -> None:
    """How the upload of SOURCE to s3://BUCKET/PREFIX goes (or went), from another terminal: done and left
    (files, bytes), rate, ETA, failures, and whether a run holds the journal now (pid, since when).

    \b
    Read-only: it never slows or blocks the run. Give the same SOURCE, destination and
    --endpoint-url as the upload (they name its journal), or --journal PATH.
    Exit 0 when shown; 2 when there is no such journal (no run used this source and
    destination); 130 on Ctrl-C during --watch.
    """
    from .statusview import run_status

    try:
        sys.exit(run_status(source=source, dest=dest, journal=journal, endpoint_url=endpoint_url,
                            json_output=json_output, watch=watch))
    except SettingsError as exc:
        _fail_usage(str(exc))


def run_upload(settings: Settings, *, failures_file: str | None = None) -> int:
    from .coordinator import Coordinator
    from .progressfile import ProgressReporter, ProgressWriter
    from .recorder import RecordingReporter, RunRecorder
    from .report import make_reporter, summary_dict
    from .runlock import EXIT_BUSY, JournalBusy
    from .stats import Stats

    reporter = make_reporter(json_output=settings.json_output, interval=settings.progress_interval,
                             quiet=settings.quiet)
    handle = open(failures_file, "w", encoding="utf-8") if failures_file else None  # noqa: SIM115
    try:
        try:
            coordinator = Coordinator(settings, reporter, failures_file=handle)
        except JournalBusy as exc:  # another run on this source and destination: a usage error, not a fault
            click.echo(f"mpupload: error: {exc.message}", err=True)
            return EXIT_BUSY
        recorder = RunRecorder(settings=coordinator.s)  # the coordinator's settings: journal and run id filled in
        progress = ProgressWriter(settings=coordinator.s)  # for `mpupload status` (progressfile.py)
        progress.starting()
        coordinator.reporter = RecordingReporter(ProgressReporter(reporter, progress), recorder)
        outcome = coordinator.run(preflight=_preflight_then_resume)
    finally:
        if handle:
            try:
                handle.close()
            except OSError:  # already reported as fatal when a write failed
                pass
    if outcome.early:
        summary = summary_dict(Stats().snapshot(), fatal=outcome.fatal.message)
        recorder.finish(outcome.snapshot, fatal=outcome.fatal.message)
        _report_fatal(settings, outcome.fatal.message, summary)
    elif outcome.fatal is not None and not settings.json_output:
        click.echo(f"mpupload: fatal: {outcome.fatal.message}", err=True)
    elif outcome.halted:
        click.echo(f"mpupload: stopped: {outcome.halted}", err=True)
    progress.ended(outcome.snapshot, exit_code=outcome.exit_code, interrupted=outcome.interrupted,
                   fatal=outcome.fatal.message if outcome.fatal else outcome.halted)
    _write_report(settings, recorder, exit_code=outcome.exit_code)
    return outcome.exit_code


def _write_report(settings: Settings, recorder, *, exit_code: int) -> None:
    """report.json and report.html of this run; a report that cannot be written is a warning, never the
    run's outcome (the files were uploaded, or not, either way)."""
    import json

    from .runreport import run_folder, write

    doc = recorder.document(exit_code=exit_code)
    folder = run_folder(journal=recorder.s.journal, started_at=doc["run"]["started_at"], run_id=recorder.s.run_id,
                        chosen=settings.report)
    try:
        json_path, html_path = write(doc, folder)
    except OSError as exc:
        click.echo(f"mpupload: warning: cannot write the run report in {folder}: {exc}", err=True)
        return
    if settings.json_output:
        click.echo(json.dumps({"event": "report", "json": str(json_path), "html": str(html_path)}))
    else:
        click.echo(f"Report: {html_path}")


def _report_fatal(settings: Settings, message: str, summary: dict) -> None:
    import json

    click.echo(f"mpupload: fatal: {message}", err=True)
    if settings.json_output:
        click.echo(json.dumps(summary))


if __name__ == "__main__":
    main()
