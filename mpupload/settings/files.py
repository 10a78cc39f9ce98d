"""Settings files: the default one (`$XDG_CONFIG_HOME/mpupload/config.toml`), one given with `--config`, and
what `mpupload tune --write-config` writes.

TOML (or JSON when the name ends in .json), named as the `Settings` fields (multipart_chunksize = "16MB"):

    processes = 4                       # top level: for every run
    [presets.archive]                   # chosen with --preset archive (or MPUPLOAD_PRESET=archive)
    dest = "s3://archive-bucket/scans"
    endpoint_url = "https://s3.example.net"

An `[upload]` table (what tune writes) counts as top level. Values become the commands' defaults; a preset's
win over the top level, environment variables over both, flags over everything. An unknown name, table or
preset is a usage error naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mpupload.settings.config import Settings, SettingsError

# Where a run reads from stays on the command line; where it goes may come from a preset (`dest`).
KNOWN = {f.name for f in fields(Settings) if f.metadata.get("help")}
_PRESET_ONLY = {"dest"}


def default_path() -> Path:
    """$XDG_CONFIG_HOME/mpupload/config.toml, ~/.config/mpupload/config.toml without it."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mpupload" / "config.toml"


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    top: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def preset(self, name: str) -> dict[str, Any]:
        if name not in self.presets:
            known = ", ".join(sorted(self.presets)) or "none defined"
            raise SettingsError(f"no preset {name!r} in {self.path} (presets there: {known}; "
                                f"a preset is a [presets.{name}] table)")
        return self.presets[name]


def _parse(p: Path) -> Any:
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        try:
            import tomllib
        except ImportError:  # Python 3.10: the same parser from PyPI (a dependency there)
            import tomli as tomllib
        return tomllib.loads(text)
    except ValueError as exc:
        raise SettingsError(f"cannot read settings file {p}: {exc}") from None


def _checked(values: Any, *, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise SettingsError(f"{where}: expected a table of settings")
    unknown = sorted(set(values) - allowed)
    if unknown:
        hint = " (dest belongs in a [presets.NAME] table)" if unknown == ["dest"] else ""
        raise SettingsError(f"unknown setting(s) in {where}: {', '.join(unknown)}{hint}")
    return dict(values)


def read(path: str | os.PathLike) -> ConfigFile:
    """The file's top-level settings and presets, every name checked."""
    p = Path(path)
    data = _parse(p)
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {p} is not a table of settings")
    top = {k: v for k, v in data.items() if k not in ("upload", "presets", "why")}
    top = {**_checked(top, where=str(p), allowed=KNOWN),
           **_checked(data.get("upload", {}), where=f"{p} [upload]", allowed=KNOWN)}
    presets = data.get("presets", {})
    if not isinstance(presets, dict):
        raise SettingsError(f"{p}: presets must be tables, e.g. [presets.archive]")
    return ConfigFile(path=p, top=top, presets={
        name: _checked(values, where=f"{p} [presets.{name}]", allowed=KNOWN | _PRESET_ONLY)
        for name, values in presets.items()})


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The file's top-level settings (what tune writes and reads back)."""
    return read(path).top


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def dump(path: str | os.PathLike, values: dict[str, Any], *, comments: list[str] = ()) -> None:
    """Write values as an [upload] table (TOML), or JSON for a .json name."""
    unknown = sorted(set(values) - KNOWN)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    p = Path(path)
    if p.suffix.lower() == ".json":
        p.write_text(json.dumps({"upload": values, "why": list(comments)}, indent=2) + "\n", encoding="utf-8")
        return
    lines = [f"# {c}" for c in comments] + ["[upload]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
