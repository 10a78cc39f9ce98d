"""The command line. Options take their defaults and help from `Settings` (config.py), so the settings
live in one place; this module only maps flags to fields and the outcome to an exit code:
0 all uploaded or skipped, 1 some failed, 2 usage error (or another run holds the journal), 3 fatal
(credentials, bucket, endpoint), 130 interrupted.

A little over ~300 lines: mostly the commands' option lists (decorators, one line each); each command's
work is in commands/."""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from mpupload.cli.options import (
    RateType,
    SizeType,
    build_settings,
    fail_usage,
    listing_options,
    object_options,
    option_for,
    pool_options,
    read_object_options,
    selection_options,
    source_and_destination,
)
from mpupload.core.errors import FatalError
from mpupload.settings.config import Settings, SettingsError
from mpupload.settings.layers import with_config_options

if TYPE_CHECKING:
    from mpupload.s3.preflight import ProbeResult
from mpupload.core.stopping import exit_code_for


def _preflight_or_exit(settings: Settings, *, write: bool) -> ProbeResult:
    """The fatal-error probe for commands other than upload (which overlaps it with worker start-up);
    returns what it learned on the way (the link's latency among it)."""
    from mpupload.s3.preflight import preflight

    try:
        probe = preflight(settings, write=write)
        probe.finish_cleanup()  # nothing here waits on the first upload: tidy up at once
        return probe
    except FatalError as exc:
        from mpupload.ui.text import say_fatal  # lazy: start-up does not pay for the views

        say_fatal(exc.message)
        sys.exit(3)


def _exit_like_ctrl_c(work):
    """Run `work`; Ctrl-C, SIGTERM or SIGHUP unwind it through its own cleanup (tune deletes its scratch
    objects) and exit 128 + the signal's number. Worker processes of verify end with their parent."""
    from mpupload.core.stopping import Interrupted, raise_on_stop_signals

    raise_on_stop_signals()
    try:
        return work()
    except Interrupted as exc:
        click.echo(f"mpupload: interrupted ({exc})", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: a process pool's exit hooks would wait for the tasks still running.
        os._exit(exit_code_for(exc.signum))


def _autotune(ctx: click.Context, settings: Settings) -> Settings:
    """Processes / threads the user left unset (not on the command line, not in --config): chosen from
    the CPU count and a bounded pre-scan of the source's size mix (autotune.py)."""
    from click.core import ParameterSource

    from mpupload.run.autotune import choose, sample_mix
    from mpupload.source.sources import iter_source

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


def _object_warnings(settings: Settings) -> None:
    """Object settings that work, but not as a user may think: said once, on stderr, before the run."""
    from mpupload.settings.objects import own_metadata_overridden

    for name in own_metadata_overridden(settings):
        click.echo(f"mpupload: warning: --metadata {name}: that name is mpupload's own; its value wins", err=True)
    if settings.sse_c_key_file and (settings.endpoint_url or "https:").startswith("http:"):
        click.echo("mpupload: warning: --sse-c-key-file over plain http sends the key unencrypted "
                   f"to {settings.endpoint_url} (AWS refuses SSE-C without TLS)", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="mpupload")
def main() -> None:
    """Upload very large collections of files to S3 and S3-compatible stores, fast, and prove they arrived."""


@main.command()
@source_and_destination
@pool_options
@option_for("multipart_threshold", type=SizeType())
@option_for("multipart_chunksize", type=SizeType())
@option_for("file_attempts", type=int)
@option_for("backoff_base", type=float)
@option_for("backoff_cap", type=float)
@option_for("outage_timeout", type=float)
@option_for("stop_grace", type=float)
@option_for("max_inflight", type=int)
@option_for("inflight_bytes", type=SizeType())
@option_for("checksum")
@option_for("fast_put", "--fast-put/--no-fast-put")
@object_options
@selection_options
@listing_options
@option_for("year_pattern")
@option_for("key_template")
@option_for("follow_symlinks", "--follow-symlinks/--no-follow-symlinks")
@option_for("batch_files", type=int)
@option_for("batch_bytes", type=SizeType())
@option_for("skip_existing")
@option_for("journal", type=click.Path(dir_okay=False))
@option_for("dry_run", "--dry-run", is_flag=True)
@option_for("no_overwrite", "--no-overwrite", is_flag=True)
@option_for("delete", "--delete", is_flag=True)
@option_for("max_delete")
@option_for("json_output", "--json", is_flag=True)
@option_for("progress_interval", type=float)
@option_for("quiet", "--quiet", "-q", is_flag=True)
@option_for("max_bandwidth", type=RateType())
@option_for("max_requests_per_second", type=click.FloatRange(min=0, min_open=True))
@option_for("limit_schedule")
@option_for("partition_pause", type=click.FloatRange(min=0))
@option_for("report", type=click.Path(file_okay=False))
@option_for("executor")
@option_for("scheduler")
@option_for("shard")
@click.option("--failures-file", type=click.Path(dir_okay=False, writable=True),
              help="Write every failed file (JSON lines: path, key, reason) here.")
@option_for("log_file", type=click.Path(dir_okay=False))
@option_for("metrics_address")
@option_for("metrics_linger", type=click.FloatRange(min=0))
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
    from mpupload.commands.upload import pause_collector, run_upload

    pause_collector()
    from mpupload.core.stopping import Interrupted, raise_on_stop_signals

    raise_on_stop_signals()  # until the coordinator takes over: SIGTERM and SIGHUP end set-up like Ctrl-C
    try:
        settings = build_settings(source, dest, **opts)
        if settings.executor == "dask" and not settings.dry_run:
            from mpupload.cluster.connect import require_dask

            require_dask()  # a usage error before anything starts
        settings = _autotune(ctx, settings)
        _object_warnings(settings)
        from mpupload.commands.dryrun import check_keys

        check_keys(settings)  # two files to one key: a usage error before anything is sent
        if settings.dry_run:
            from mpupload.commands.dryrun import dry_run

            sys.exit(dry_run(settings, out=sys.stdout))
        code = run_upload(settings, failures_file=failures_file)
        gc.freeze()  # the interpreter's teardown then skips scanning what is left (~0.08 s after boto3)
        sys.exit(code)
    except SettingsError as exc:
        fail_usage(str(exc))
    except FatalError as exc:  # e.g. the journal cannot be created
        from mpupload.ui.text import say_fatal  # lazy: start-up does not pay for the views

        say_fatal(exc.message)
        sys.exit(3)
    except Interrupted as exc:  # before the workers started (probe, setup): nothing to clean up
        click.echo(f"mpupload: interrupted ({exc}) before the upload started", err=True)
        sys.exit(exit_code_for(exc.signum))


@main.command()
@source_and_destination
@pool_options
@selection_options
@listing_options
@read_object_options
@option_for("follow_symlinks", "--follow-symlinks/--no-follow-symlinks")
@option_for("json_output", "--json", is_flag=True)
@option_for("shard")
@click.option("--mode", "mode", type=click.Choice(["metadata", "checksum", "deep"]), default=None,
              help="metadata: size and xxh3-128 metadata (default); checksum: also the checksum S3 keeps for each "
                   "object (HEAD with checksum mode) against the file's, proving the bytes without a download; "
                   "deep: download every object and hash its bytes.")
@click.option("--deep", is_flag=True, help="Download every object and hash its bytes (slow, thorough): --mode deep.")
@option_for("key_template")
@option_for("year_pattern")
@with_config_options
def verify(source: str, dest: str, mode: str | None, deep: bool, **opts) -> None:
    """Check that s3://BUCKET/PREFIX matches SOURCE: every file present, same size, same xxh3-128.

    Exit 0 only when everything matches; 1 lists what is missing, different or extra; 3 fatal.
    """
    from mpupload.commands.verify import verify as run_verify

    if deep and mode not in (None, "deep"):
        fail_usage(f"--deep and --mode {mode} contradict each other: give one")
    mode = "deep" if deep else (mode or "metadata")
    try:
        settings = build_settings(source, dest, **opts)
    except SettingsError as exc:
        fail_usage(str(exc))
    threads_given = click.get_current_context().get_parameter_source("threads") != ParameterSource.DEFAULT

    def check() -> None:
        probe = _preflight_or_exit(settings, write=False)
        s = settings if threads_given else _verify_threads(settings, probe.latency)
        sys.exit(run_verify(s, mode=mode, out=sys.stdout))

    _exit_like_ctrl_c(check)


def _verify_threads(settings: Settings, latency: float | None) -> Settings:
    """HEADs in flight follow the link as the upload's small files do (concurrency.py), twice as many: a HEAD
    carries no body, so memory does not bound it (measured over 40 ms: 24 in flight per process 9.9 s for 6,000
    objects, 48 in flight 8.9 s, against 7.6 s for their upload). A verifying process runs one chunk at a time."""
    from mpupload.pace.concurrency import initial_inflight

    wanted = 2 * initial_inflight(latency, cap=settings.max_inflight)
    return replace(settings, threads=min(settings.max_inflight, max(settings.threads, wanted)))


@main.command()
@source_and_destination
@option_for("multipart_threshold", type=SizeType())
@option_for("multipart_chunksize", type=SizeType())
@option_for("checksum")
@object_options
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
    from mpupload.commands.tune import tune as sweep

    try:
        settings = build_settings(source, dest, **opts)
    except SettingsError as exc:
        fail_usage(str(exc))
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
        from mpupload.settings.files import dump

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
    from mpupload.cli.configshow import show_command

    config.add_command(show_command(upload))


_add_config_commands()


def _add_inspection_commands() -> None:
    from mpupload.cli.inspect import report, status
    from mpupload.cli.limit import limit

    main.add_command(report)
    main.add_command(status)
    main.add_command(limit)


_add_inspection_commands()


if __name__ == "__main__":
    main()
