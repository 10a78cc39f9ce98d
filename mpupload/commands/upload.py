"""Running an upload for the CLI: the coordinator wrapped in what the operator sees and keeps (the progress
file for `mpupload status`, the run report, the failures file), and the start-up collector pause."""

from __future__ import annotations

import gc

import click

from mpupload.s3.preflight import ProbeResult
from mpupload.settings.config import Settings


def pause_collector() -> None:
    """Start-up (boto3, botocore's models, a client) allocates hundreds of thousands of objects that live
    as long as the process; the cyclic collector scanning them again and again while they are created
    costs ~15% of start-up CPU. Paused here, resumed by resume_collector once the run is under way."""
    gc.disable()


def resume_collector() -> None:
    # What start-up built stays for the whole run: frozen out of the collector's sight, so later
    # collections (and the one at exit) scan only what the run itself allocates.
    gc.freeze()
    gc.enable()


def preflight_then_resume(settings: Settings, *, write: bool = True, checksum_verdict=None,
                          full_verdict=None) -> ProbeResult:
    """The preflight probe, after which start-up is over (the coordinator runs it once its workers are
    starting): the collector resumes whatever the probe found."""
    from mpupload.s3.preflight import preflight

    try:
        return preflight(settings, write=write, checksum_verdict=checksum_verdict, full_verdict=full_verdict)
    finally:
        resume_collector()


def run_upload(settings: Settings, *, failures_file: str | None = None) -> int:
    from mpupload.observe.progressfile import ProgressSink, ProgressWriter
    from mpupload.observe.recorder import RecordingSink, RunRecorder
    from mpupload.observe.sinks import FanOut
    from mpupload.observe.stats import Stats
    from mpupload.observe.summary import summary_dict
    from mpupload.run.coordinator import Coordinator
    from mpupload.state.runlock import EXIT_BUSY, JournalBusy
    from mpupload.ui.printers import make_reporter
    from mpupload.ui.text import say_fatal

    if settings.executor == "dask":
        import mpupload.cluster  # noqa: F401  (registers the Dask executor: run/executors.py)

    reporter = make_reporter(json_output=settings.json_output, interval=settings.progress_interval,
                             quiet=settings.quiet)
    metrics = _metrics_sink(settings)  # a port in use is a usage error before anything else
    try:
        handle = open(failures_file, "w", encoding="utf-8") if failures_file else None  # noqa: SIM115
    except OSError as exc:  # a missing folder, no permission: fatal before anything is sent, not a traceback
        click.echo(f"mpupload: fatal: cannot write the failures file {failures_file}: {exc}", err=True)
        return 3
    try:
        try:
            coordinator = Coordinator(settings, reporter, failures_file=handle)
        except JournalBusy as exc:  # another run on this source and destination: a usage error, not a fault
            click.echo(f"mpupload: error: {exc.message}", err=True)
            if metrics is not None:
                metrics.close()
            return EXIT_BUSY
        recorder = RunRecorder(settings=coordinator.s)  # the coordinator's settings: journal and run id filled in
        progress = ProgressWriter(settings=coordinator.s)  # for `mpupload status` (progressfile.py)
        progress.starting()
        # One fan-out: the recorder and the progress file hear each event before the view draws it.
        sinks = [RecordingSink(recorder), ProgressSink(progress, warn=reporter.warn), reporter]
        coordinator.sink = FanOut(*sinks, *([metrics] if metrics is not None else []))
        coordinator.on_end = lambda outcome: progress.ended(  # before the lock goes (coordinator.on_end)
            outcome.snapshot, exit_code=outcome.exit_code, interrupted=outcome.interrupted,
            fatal=outcome.fatal.message if outcome.fatal else outcome.halted)
        outcome = coordinator.run(preflight=preflight_then_resume)
    finally:
        if handle:
            try:
                handle.close()
            except OSError:  # already reported as fatal when a write failed
                pass
    if outcome.early:
        summary = summary_dict(Stats().snapshot(), fatal=outcome.fatal.message)
        recorder.finish(outcome.snapshot, fatal=outcome.fatal.message)
        say_fatal(outcome.fatal.message, json_summary=summary if settings.json_output else None)
    elif outcome.fatal is not None and not settings.json_output:
        say_fatal(outcome.fatal.message)
    elif outcome.halted:
        click.echo(f"mpupload: stopped: {outcome.halted}", err=True)
    _write_report(settings, recorder, exit_code=outcome.exit_code)
    if metrics is not None:
        metrics.close()  # last: --metrics-linger waits here, with everything else already written
    return outcome.exit_code


def _metrics_sink(settings: Settings):
    """The Prometheus endpoint of --metrics-address, listening before the run starts (observe/metrics.py;
    prometheus_client is imported only then), or None."""
    if not settings.metrics_address:
        return None
    from mpupload.core.units import parse_address
    from mpupload.observe.metrics import MetricsSink

    host, port = parse_address(settings.metrics_address)
    sink = MetricsSink(host, port, linger=settings.metrics_linger)
    if not settings.quiet:
        click.echo(f"mpupload: metrics at {sink.url}", err=True)
    return sink


def _write_report(settings: Settings, recorder, *, exit_code: int) -> None:
    """report.json and report.html of this run; a report that cannot be written is a warning, never the
    run's outcome (the files were uploaded, or not, either way)."""
    import json

    from mpupload.ui.runreport import run_folder, write

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
