"""`mpupload limit`: change the bandwidth and request-rate limits of a running run from another terminal (it is
found by its journal, as `status` finds it). The run applies the change within a second, on every worker
(run/limitcontrol.py)."""

from __future__ import annotations

import click

from mpupload.cli.options import RateType, fail_usage, option_for
from mpupload.settings.config import SettingsError


def _rate_or_off(value: str | None):
    if value is None or value.lower() == "off":
        return value
    return RateType().convert(value, None, None)


@click.command()
@click.argument("source", required=False, type=click.Path(file_okay=False))
@click.argument("dest", required=False, metavar="[s3://BUCKET[/PREFIX]]")
@click.option("--journal", type=click.Path(dir_okay=False), help="The run's journal, instead of SOURCE DEST.")
@option_for("endpoint_url", envvar="AWS_ENDPOINT_URL_S3")
@option_for("shard")
@click.option("--max-bandwidth", "bandwidth", metavar="RATE|off", default=None,
              help="Most bytes per second for the whole run, e.g. 20MB/s (1024-based), or off.")
@click.option("--max-requests-per-second", "rps", metavar="N|off", default=None,
              help="Most PUT / part requests per second for the whole run, or off.")
@click.option("--reset", is_flag=True, help="Back to the run's own flags (or its --limit-schedule).")
def limit(source: str | None, dest: str | None, journal: str | None, endpoint_url: str | None, shard: str | None,
          bandwidth: str | None, rps: str | None, reset: bool) -> None:
    """Change the limits of the upload of SOURCE to s3://BUCKET/PREFIX while it runs.

    \b
    Give the same SOURCE, destination, --endpoint-url (and --shard) as the upload,
    or --journal PATH. What is not given is no limit (unless --reset). Exit 0 when
    the running run has the new limits to apply; 2 when no run holds the journal.
    """
    from mpupload.observe.runstatus import lock_holder
    from mpupload.run.limitcontrol import write_control
    from mpupload.ui.statusview import journal_of

    if not reset and bandwidth is None and rps is None:
        fail_usage("give --max-bandwidth, --max-requests-per-second (a value or off), or --reset")
    if reset and (bandwidth is not None or rps is not None):
        fail_usage("--reset goes alone")
    try:
        path = journal_of(source=source, dest=dest, journal=journal, endpoint_url=endpoint_url, shard=shard)
        bytes_per_s = _rate_or_off(bandwidth)
        per_s = None if rps is None or rps.lower() == "off" else float(rps)
    except (SettingsError, click.BadParameter, ValueError) as exc:
        fail_usage(str(exc))
    if per_s is not None and per_s <= 0:
        fail_usage("--max-requests-per-second must be positive (or off)")
    if lock_holder(path) is None:
        fail_usage(f"no run holds the journal {path} now: the limits apply to a running upload "
                   "(start one with --max-bandwidth / --limit-schedule)")
    write_control(path, reset=reset, max_bandwidth=None if bytes_per_s in (None, "off") else bytes_per_s,
                  max_rps=per_s)
    click.echo("limits reset to the run's own settings" if reset else
               f"limits sent to the run on {path}: bandwidth {bandwidth or 'off'}, requests/s {rps or 'off'}")
