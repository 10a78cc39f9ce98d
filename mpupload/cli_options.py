"""The command line's options: each takes its default and help from `Settings` (config.py), so every knob
lives in one place; option groups shared by the commands; a settings file as defaults; flags into a
validated `Settings`."""

from __future__ import annotations

import os
from dataclasses import fields

import click

from .config import Settings, SettingsError, parse_rate, parse_size

_DEFAULTS = Settings()
_FIELDS = {f.name: f for f in fields(Settings)}


class _Parsed(click.ParamType):
    """A click type from one of config.py's parsers: its SettingsError becomes click's usage error."""

    def __init__(self, name: str, parse):
        self.name, self._parse = name, parse

    def convert(self, value, param, ctx):
        try:
            return self._parse(value)
        except SettingsError as exc:
            self.fail(str(exc), param, ctx)


def _Size() -> _Parsed:  # noqa: N802 - used like the click types it stands beside
    return _Parsed("SIZE", parse_size)


def _Rate() -> _Parsed:  # noqa: N802
    return _Parsed("RATE", parse_rate)


def _opt(name: str, *decls: str, **kw):
    """A click option for Settings field `name`, with its default and help."""
    f = _FIELDS[name]
    kw.setdefault("default", getattr(_DEFAULTS, name))
    kw.setdefault("show_default", True)
    help_text = f.metadata.get("help", "")
    if f.metadata.get("source"):
        help_text += f" [default chosen by: {f.metadata['source']}]"
    if "choices" in f.metadata:
        kw.setdefault("type", click.Choice(f.metadata["choices"], case_sensitive=False))
    return click.option(*(decls or ("--" + name.replace("_", "-"),)), name, help=help_text, **kw)


def _stack(*decorators):
    """Several click decorators as one, applied in the order written."""
    def apply(fn):
        for decorate in reversed(decorators):
            fn = decorate(fn)
        return fn
    return apply


connection_options = _stack(
    _opt("endpoint_url", envvar="AWS_ENDPOINT_URL_S3"),
    _opt("region"),
    _opt("profile"),
    _opt("addressing_style"),
    _opt("read_timeout", type=float),
    _opt("connect_timeout", type=float),
    _opt("max_pool_connections", type=int),
    _opt("retries", type=int),
    _opt("retry_mode"),
    _opt("verify_tls", "--verify-tls/--no-verify-tls"),
    _opt("ca_bundle", type=click.Path(exists=True, dir_okay=False)),
)
# Every command takes a source folder and a destination, and reaches it the same way.
source_and_destination = _stack(
    click.argument("source", type=click.Path(file_okay=False)),
    click.argument("dest", metavar="s3://BUCKET[/PREFIX]"),
    connection_options,
)
selection_options = _stack(
    _opt("include", multiple=True, show_default=False),
    _opt("exclude", multiple=True, show_default=False),
)
# Which files, under which keys: the walk of SOURCE or a list of them (sources.py).
listing_options = _stack(
    _opt("files_from", type=click.Path(exists=True, dir_okay=False, allow_dash=True), show_default=False),
    _opt("null", "--null", "-0", is_flag=True),
    _opt("key_normalization"),
)
pool_options = _stack(
    _opt("processes", "--processes", "-p", type=int),
    _opt("threads", "--threads", "-t", type=int),
)


def _load_config_file(ctx: click.Context, param, value: str | None) -> None:
    """Eager: the file's values become this command's defaults before any other option is read."""
    if not value:
        return
    from .configfile import load

    try:
        values = load(value)
    except (SettingsError, OSError) as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    ctx.default_map = {**(ctx.default_map or {}), **values}


def build_settings(source: str, dest: str, **opts) -> Settings:
    from .remote import parse_s3_url

    if not os.path.isdir(source):
        raise SettingsError(f"source {source!r} is not a folder")
    bucket, prefix = parse_s3_url(dest)
    known = {k: v for k, v in opts.items() if k in _FIELDS}
    for k in ("include", "exclude"):
        if k in known:
            known[k] = tuple(known[k])
    if "checksum" in known:
        value = known["checksum"]
        known["checksum"] = value.lower() if value.lower() in ("none", "auto") else value.upper()
    return Settings(source=os.path.abspath(source), bucket=bucket, prefix=prefix, **known).validated()
