"""`mpupload config show`: every setting an upload with the same options would run with, and where each came
from (default, settings file, preset, environment variable, flag, or chosen at start). Credentials are never
shown, only where botocore finds them."""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace
from typing import Any

import click
from click.core import ParameterSource

from mpupload.core.units import format_size
from mpupload.settings.config import Settings, SettingsError
from mpupload.settings.layers import layers_of, origin

_FIELDS = {f.name: f for f in fields(Settings)}


def show_command(upload: click.Command) -> click.Command:
    """`show` with every parameter of `upload` (whatever options it grows), SOURCE and DEST optional."""
    params = [click.Argument(["source"], required=False, type=click.Path(file_okay=False))
              if p.name == "source" else p for p in upload.params]
    return click.Command(
        "show", params=params, callback=_show,
        help="Print every setting `mpupload upload` would use with these options, and where each comes from: "
             "default, settings file (which one), preset, environment variable (MPUPLOAD_<OPTION>) or flag. "
             "Precedence: flag > environment > preset > settings file > default. With SOURCE, the processes "
             "chosen for it and its journal are shown too. Credentials are never printed, only their source.")


def _show(source: str | None, dest: str | None, json_output: bool = False, **opts) -> None:
    from mpupload.cli.options import build_settings

    ctx = click.get_current_context()
    try:
        s = build_settings(source, dest, check_source=bool(source), require_dest=False, json_output=json_output,
                           **opts)
    except SettingsError as exc:
        click.echo(f"mpupload: error: {exc}", err=True)
        ctx.exit(2)
    if ctx.get_parameter_source("threads") == ParameterSource.DEFAULT:
        s = replace(s, adaptive=True).validated()  # as the upload does: the pool grows with the files in flight
    rows = _rows(ctx, s, source=source, dest=dest, extra=opts)
    layers = layers_of(ctx)
    file = layers.file if layers else None
    head = {"settings_file": str(file.path) if file else None,
            "settings_file_given": bool(layers and layers.explicit),
            "preset": layers.preset_name if layers else None}
    if json_output:
        click.echo(json.dumps({**head, "settings": {n: {"value": v, "origin": o} for n, v, o in rows}},
                              default=str, ensure_ascii=False))
        return
    from mpupload.settings.files import default_path

    where = str(file.path) if file else f"none ({default_path()} does not exist)"
    click.echo(f"settings file: {where}" + (f"; preset: {head['preset']}" if head["preset"] else ""))
    width = max(len(n) for n, _, _ in rows)
    for name, value, came_from in rows:
        click.echo(f"{name:<{width}}  {_text(name, value)}  [{came_from}]")


def _rows(ctx: click.Context, s: Settings, *, source: str | None, dest: str | None,
          extra: dict[str, Any]) -> list[tuple[str, Any, str]]:
    rows: list[tuple[str, Any, str]] = [
        ("source", s.source or None, "command line" if source else "not given"),
        ("dest", f"s3://{s.bucket}/{s.prefix}".rstrip("/") if s.bucket else None,
         origin(ctx, "dest") if dest else "not given"),
    ]
    chosen = _chosen(ctx, s)
    for p in ctx.command.params:
        if p.name in ("source", "dest") or p.name is None or not p.expose_value:
            continue
        if p.name in _FIELDS:
            value, came_from = getattr(s, p.name), origin(ctx, p.name)
        else:
            value, came_from = extra.get(p.name), origin(ctx, p.name)
        if p.name in chosen:
            value, came_from = chosen[p.name]
        rows.append((p.name, value, came_from))
    rows += _derived(s)
    return rows


def _chosen(ctx: click.Context, s: Settings) -> dict[str, tuple[Any, str]]:
    """What the upload decides at start for options left to their default: processes from the source's
    size mix (autotune.py), small files in flight from the link, the connection pool from the threads."""
    out: dict[str, tuple[Any, str]] = {}
    auto = lambda name: ctx.get_parameter_source(name) == ParameterSource.DEFAULT  # noqa: E731
    if auto("threads"):
        out["threads"] = (s.threads, "default; sizes the part pool: small files in flight follow the link "
                                     f"(8 to --max-inflight {s.max_inflight})")
    if auto("processes"):
        if s.source:
            from mpupload.run.autotune import choose, sample_mix
            from mpupload.source.sources import iter_source

            mix = sample_mix(s.source, threshold=s.multipart_threshold, items=iter_source(s))
            choice = choose(cpus=os.cpu_count() or 2, mix=mix)
            out["processes"] = (choice.processes, f"chosen for this source: {choice.reason}")
        else:
            out["processes"] = (None, "default: chosen at start from the CPU count and the source's file sizes")
    given = ctx.params.get("max_pool_connections")
    if given is not None and s.max_pool_connections != given:
        out["max_pool_connections"] = (s.max_pool_connections, f"{origin(ctx, 'max_pool_connections')}, raised to "
                                                                "the requests in flight + 2")
    if s.journal is None and s.source and s.bucket:
        from mpupload.state.journal import journal_for

        out["journal"] = (journal_for(s), "default: one per source and destination (and --shard) under "
                                          "$XDG_STATE_HOME/mpupload")
    return out


def _derived(s: Settings) -> list[tuple[str, Any, str]]:
    """What botocore resolves where mpupload leaves it open: endpoint, region, and where the credentials are
    (their kind and the profile, never a key)."""
    import botocore.session
    from botocore.exceptions import BotoCoreError

    rows: list[tuple[str, Any, str]] = []
    try:
        session = botocore.session.Session(profile=s.profile)
        if s.endpoint_url is None and os.environ.get("AWS_ENDPOINT_URL"):
            rows.append(("endpoint (botocore)", os.environ["AWS_ENDPOINT_URL"], "environment AWS_ENDPOINT_URL"))
        if s.region is None:
            rows.append(("region (botocore)", session.get_config_variable("region"),
                         "botocore: AWS_REGION / AWS_DEFAULT_REGION or the AWS profile's config"))
        rows.append(("credentials", _credentials_origin(session, s.profile), "botocore's credential chain"))
    except BotoCoreError as exc:  # e.g. a --profile the AWS config does not have
        rows.append(("credentials", None, f"cannot be resolved: {exc}"))
    return rows


_METHODS = {
    "env": "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    "shared-credentials-file": "AWS profile {profile} in the shared credentials file",
    "config-file": "AWS profile {profile} in the AWS config file",
    "assume-role": "role assumed by AWS profile {profile}",
    "sso": "AWS SSO through profile {profile}",
    "custom-process": "credential_process of AWS profile {profile}",
    "iam-role": "instance role (EC2 metadata)",
    "container-role": "container role (ECS / EKS)",
    "assume-role-with-web-identity": "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)",
}


def _credentials_origin(session, profile: str | None) -> str:
    creds = session.get_credentials()
    if creds is None:
        return "none found"
    name = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    return _METHODS.get(creds.method, f"{creds.method} (profile {{profile}})").format(profile=name)


def _text(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, int) and name in ("multipart_threshold", "multipart_chunksize", "inflight_bytes",
                                           "batch_bytes", "min_size", "max_size"):
        return f"{value} ({format_size(value)})"
    if isinstance(value, float) and name in ("min_age", "max_age"):
        return f"{value:g} s ({value / 86400:g} days)" if value >= 86400 else f"{value:g} s"
    if isinstance(value, int) and name == "max_bandwidth":
        return f"{value} bytes/s ({format_size(value)}/s)"
    return str(value)
