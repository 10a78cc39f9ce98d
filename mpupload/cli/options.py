"""The command line's options: each takes its default and help from `Settings` (config.py), so every knob
lives in one place, and an environment variable MPUPLOAD_<OPTION>; option groups shared by the commands;
flags into a validated `Settings`. Settings files and presets as defaults: settings_layers.py."""

from __future__ import annotations

import os
import sys
from dataclasses import fields
from typing import NoReturn

import click

from mpupload.core.units import parse_duration, parse_rate, parse_size
from mpupload.settings.config import Settings, SettingsError

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


def SizeType() -> _Parsed:  # noqa: N802 - used like the click types it stands beside
    return _Parsed("SIZE", parse_size)


def RateType() -> _Parsed:  # noqa: N802
    return _Parsed("RATE", parse_rate)


def DurationType() -> _Parsed:  # noqa: N802
    return _Parsed("DURATION", parse_duration)


def envvar_for(decls: tuple[str, ...], name: str) -> str:
    """MPUPLOAD_ and the option's long name: --multipart-chunksize -> MPUPLOAD_MULTIPART_CHUNKSIZE."""
    long = next((d.split("/")[0] for d in decls if d.startswith("--")), "--" + name.replace("_", "-"))
    return "MPUPLOAD_" + long[2:].replace("-", "_").upper()


# botocore already reads AWS_PROFILE; an MPUPLOAD_PROFILE beside it would be read as --preset's by many.
_NO_ENVVAR = {"profile"}


def option_for(name: str, *decls: str, **kw):
    """A click option for Settings field `name`, with its default, help and environment variable."""
    f = _FIELDS[name]
    kw.setdefault("default", getattr(_DEFAULTS, name))
    kw.setdefault("show_default", True)
    if name not in _NO_ENVVAR:
        kw.setdefault("envvar", envvar_for(decls, name))
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
    option_for("endpoint_url", envvar=["MPUPLOAD_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]),
    option_for("region"),
    option_for("profile"),
    option_for("addressing_style"),
    option_for("read_timeout", type=float),
    option_for("connect_timeout", type=float),
    option_for("max_pool_connections", type=int),
    option_for("retries", type=int),
    option_for("retry_mode"),
    option_for("verify_tls", "--verify-tls/--no-verify-tls"),
    option_for("ca_bundle", type=click.Path(exists=True, dir_okay=False)),
)
# Every command takes a source folder and a destination (or a --preset that names it), and reaches it the
# same way.
source_and_destination = _stack(
    click.argument("source", type=click.Path(file_okay=False)),
    click.argument("dest", metavar="[s3://BUCKET[/PREFIX]]", required=False),
    connection_options,
)
selection_options = _stack(
    option_for("include", multiple=True, show_default=False),
    option_for("exclude", multiple=True, show_default=False),
    option_for("exclude_from", multiple=True, show_default=False, type=click.Path(dir_okay=False, allow_dash=False)),
    option_for("min_size", type=SizeType(), show_default=False),
    option_for("max_size", type=SizeType(), show_default=False),
    option_for("min_age", type=DurationType(), show_default=False),
    option_for("max_age", type=DurationType(), show_default=False),
    option_for("one_file_system", "--one-file-system/--cross-file-systems"),
)
# Which files, under which keys: the walk of SOURCE or a list of them (sources.py).
listing_options = _stack(
    option_for("files_from", type=click.Path(exists=True, dir_okay=False, allow_dash=True), show_default=False),
    option_for("null", "--null", "-0", is_flag=True),
    option_for("key_normalization"),
)
# What every object carries (settings/objects.py): upload and tune write with them all; verify reads with
# the ones a HEAD or GET needs.
read_object_options = _stack(
    option_for("sse_c_key_file", type=click.Path(dir_okay=False), show_default=False),
    option_for("expected_bucket_owner", show_default=False),
    option_for("request_payer", show_default=False),
)
object_options = _stack(
    option_for("sse", show_default=False),
    option_for("sse_kms_key_id", show_default=False),
    option_for("sse_bucket_key", "--sse-bucket-key/--no-sse-bucket-key"),
    read_object_options,
    option_for("storage_class", show_default=False),
    option_for("small_storage_class", show_default=False),
    option_for("small_object_size", type=SizeType(), show_default=False),
    option_for("acl", show_default=False),
    option_for("tags", show_default=False),
    option_for("metadata", show_default=False),
    option_for("content_type", show_default=False),
    option_for("cache_control", show_default=False),
    option_for("content_encoding", show_default=False),
    option_for("content_disposition", show_default=False),
)
pool_options = _stack(
    option_for("processes", "--processes", "-p", type=int),
    option_for("threads", "--threads", "-t", type=int),
)


def build_settings(source: str | None, dest: str | None, *, check_source: bool = True, require_dest: bool = True,
                   **opts) -> Settings:
    from mpupload.s3.client import parse_s3_url

    if check_source and not os.path.isdir(source or ""):
        raise SettingsError(f"source {source!r} is not a folder")
    if not dest and require_dest:
        raise SettingsError("no destination: give s3://BUCKET[/PREFIX], or --preset NAME for a preset with a dest")
    bucket, prefix = parse_s3_url(dest) if dest else ("", "")
    known = {k: v for k, v in opts.items() if k in _FIELDS}
    for k in ("include", "exclude", "exclude_from"):
        if k in known:
            known[k] = tuple(known[k])
    if known.get("sse_c_key_file"):
        # Each worker process reads it (a Dask worker too, at the same path): not relative to where it runs.
        known["sse_c_key_file"] = os.path.abspath(known["sse_c_key_file"])
    if "exclude_from" in known:  # read by every process that walks, wherever it runs from
        known["exclude_from"] = tuple(os.path.abspath(p) for p in known["exclude_from"])
    from mpupload.source.filters import read_patterns

    for path in known.get("exclude_from", ()):
        read_patterns(path)  # a list that cannot be read is a usage error before anything starts
    if "checksum" in known:
        value = known["checksum"]
        known["checksum"] = value.lower() if value.lower() in ("none", "auto") else value.upper()
    return Settings(source=os.path.abspath(source) if source else "", bucket=bucket, prefix=prefix, **known).validated()


def fail_usage(message: str) -> NoReturn:
    """A usage error: one line, exit 2."""
    click.echo(f"mpupload: error: {message}", err=True)
    sys.exit(2)
