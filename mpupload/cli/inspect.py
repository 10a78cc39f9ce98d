"""The commands that look at runs rather than make them: `report` (run reports, listed or drawn again) and
`status` (a run from another terminal)."""

from __future__ import annotations

import sys

import click

from mpupload.cli.options import fail_usage, option_for
from mpupload.settings.config import SettingsError


@click.command()
@click.argument("path", required=False, type=click.Path(exists=True))
@click.option("--journal", type=click.Path(dir_okay=False), help="List only the reports of the runs on this journal.")
@option_for("json_output", "--json", is_flag=True)
def report(path: str | None, journal: str | None, json_output: bool) -> None:
    """List run reports, or draw report.html again from a report.json (PATH: the file or its folder).

    \b
    Every upload writes report.json and report.html, by default in a folder per run
    beside its journal (JOURNAL-reports/), or in the folder given with --report.
    """
    import json

    from mpupload.state.journal import state_dir
    from mpupload.ui.runreport import list_reports, reports_root, rerender

    if path:
        try:
            html = rerender(path)
        except (OSError, ValueError) as exc:
            fail_usage(f"cannot re-draw the report from {path}: {exc}")
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


@click.command()
@click.argument("source", required=False, type=click.Path(file_okay=False))
@click.argument("dest", required=False, metavar="[s3://BUCKET[/PREFIX]]")
@click.option("--journal", type=click.Path(dir_okay=False),
              help="The journal to look at (the one given to `upload --journal`), instead of SOURCE DEST.")
@option_for("endpoint_url", envvar="AWS_ENDPOINT_URL_S3")
@option_for("shard")
@option_for("json_output", "--json", is_flag=True)
@click.option("--watch", type=click.FloatRange(min=0.5, max=3600), is_flag=False, flag_value=2.0, default=None,
              metavar="[SECONDS]", help="Show it again every SECONDS (2) until the run ends; Ctrl-C stops.")
def status(source: str | None, dest: str | None, journal: str | None, endpoint_url: str | None, shard: str | None,
           json_output: bool, watch: float | None) -> None:
    """How the upload of SOURCE to s3://BUCKET/PREFIX goes (or went), from another terminal: done and left
    (files, bytes), rate, ETA, failures, and whether a run holds the journal now (pid, since when).

    \b
    Read-only: it never slows or blocks the run. Give the same SOURCE, destination and
    --endpoint-url (and --shard) as the upload (they name its journal), or --journal PATH.
    Exit 0 when shown; 2 when there is no such journal (no run used this source and
    destination); 130 on Ctrl-C during --watch.
    """
    from mpupload.ui.statusview import run_status

    try:
        sys.exit(run_status(source=source, dest=dest, journal=journal, endpoint_url=endpoint_url,
                            json_output=json_output, watch=watch, shard=shard))
    except SettingsError as exc:
        fail_usage(str(exc))
