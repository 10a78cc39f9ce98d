"""Where each setting comes from. Precedence, highest first:

    flag  >  environment (MPUPLOAD_<OPTION>)  >  preset (--preset NAME)  >  settings file top level  >  default

The settings file is `--config PATH` (or MPUPLOAD_CONFIG), else the default file when it exists
(`$XDG_CONFIG_HOME/mpupload/config.toml`). Its top level and the chosen preset become the command's click
`default_map`, so click itself applies the order above; `origin` names the layer a value came from, for
`mpupload config show`.

Why `--preset`, not `--profile`: `--profile` already is the AWS credentials profile (botocore's), and a
preset may well name one (`profile = "archive-writer"`).
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.core import ParameterSource

from mpupload.settings.config import SettingsError
from mpupload.settings.files import ConfigFile, default_path, read

_META = "mpupload.layers"
_PENDING = ("config", "preset")


class Layers:
    """The settings file and preset a command runs with, and which layer gave each default."""

    def __init__(self, *, file: ConfigFile | None, preset: str | None, explicit: bool):
        self.file, self.preset_name, self.explicit = file, preset, explicit
        self.origins: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        if file is not None:
            self._add(file.top, f"config file {file.path}")
            if preset:
                self._add(file.preset(preset), f"preset {preset} ({file.path})")
        elif preset:
            raise SettingsError(f"--preset {preset}: no settings file ({default_path()} does not exist; "
                                "give one with --config PATH)")

    def _add(self, values: dict[str, Any], origin: str) -> None:
        for k, v in values.items():
            self.values[k] = v
            self.origins[k] = origin


def _record(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Eager callback of --config and --preset: once both are known (click processes eager options first, in
    an order that depends on the command line), read the file and make it the command's defaults."""
    pending = ctx.meta.setdefault(_META + ".pending", {})
    pending[param.name] = value
    if set(pending) < set(_PENDING):
        return
    try:
        layers = _layers(pending["config"], pending["preset"])
        ctx.default_map = {**(ctx.default_map or {}), **_typed(ctx, layers)}
    except SettingsError as exc:
        click.echo(f"mpupload: error: {exc}", err=True)
        ctx.exit(2)
    ctx.meta[_META] = layers


def _layers(config: str | None, preset: str | None) -> Layers:
    if config:
        return Layers(file=read(config), preset=preset, explicit=True)
    path = default_path()
    return Layers(file=read(path) if path.is_file() else None, preset=preset, explicit=False)


def _typed(ctx: click.Context, layers: Layers) -> dict[str, Any]:
    """The file's values through each option's own type, so a bad value names the file and the key (click
    would name only the option). Names this command has no option for are left out (a file serves them all)."""
    params = {p.name: p for p in ctx.command.params}
    out: dict[str, Any] = {}
    for key, value in layers.values.items():
        param = params.get(key)
        if param is None:
            continue
        if param.multiple and isinstance(value, str):
            value = [value]  # include = "*.jp2" means one glob, not its characters
        try:
            param.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise SettingsError(f"{layers.origins[key]}: {key} = {value!r}: {exc.message}") from None
        out[key] = value
    return out


def layers_of(ctx: click.Context) -> Layers | None:
    return ctx.meta.get(_META)


def origin(ctx: click.Context, name: str) -> str:
    """Where the value of parameter `name` came from: flag, environment (which variable), preset, settings
    file or default."""
    source = ctx.get_parameter_source(name)
    param = next((p for p in ctx.command.params if p.name == name), None)
    if source == ParameterSource.COMMANDLINE:
        flag = next((d for d in (param.opts if param is not None else []) if d.startswith("--")), None)
        return f"flag {flag}" if flag else "command line"
    if source == ParameterSource.ENVIRONMENT and param is not None:
        names = param.envvar if isinstance(param.envvar, (list, tuple)) else [param.envvar]
        used = next((n for n in names if n and os.environ.get(n)), names[0])
        return f"environment {used}"
    if source == ParameterSource.DEFAULT_MAP:
        layers = layers_of(ctx)
        return layers.origins.get(name, "settings file") if layers else "settings file"
    return "default"


config_options = [
    click.option("--config", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
                 envvar="MPUPLOAD_CONFIG", callback=_record,
                 help="Settings file (TOML or JSON; e.g. from `mpupload tune --write-config`) instead of the default "
                 "$XDG_CONFIG_HOME/mpupload/config.toml: its values become the defaults; environment variables "
                 "(MPUPLOAD_<OPTION>) and flags win. --config /dev/null reads none."),
    click.option("--preset", metavar="NAME", is_eager=True, expose_value=False, envvar="MPUPLOAD_PRESET",
                 callback=_record,
                 help="Use the settings file's [presets.NAME] table (a destination: dest, endpoint_url, ...) over "
                 "its top level. Not --profile: that is the AWS credentials profile."),
]


def with_config_options(fn):
    """--config and --preset on a command."""
    for decorate in reversed(config_options):
        fn = decorate(fn)
    return fn
