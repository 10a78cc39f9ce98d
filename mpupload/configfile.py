"""Settings files: what `mpupload tune --write-config` writes and `mpupload upload --config` reads.

TOML (or JSON when the name ends in .json) with the settings under an `[upload]` table, named as the
`Settings` fields (multipart_chunksize = "16MiB"). Values from the file become the defaults of `upload`;
flags on the command line still win.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from .config import Settings, SettingsError

# Where a run goes and what it uploads stay on the command line: a settings file tunes how, not what.
_NOT_IN_FILE = {"source", "bucket", "prefix"}
_KNOWN = {f.name for f in fields(Settings)} - _NOT_IN_FILE


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The settings in the file, checked against the known names."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10: the same parser from PyPI (a dependency there)
                import tomli as tomllib

            data = tomllib.loads(text)
    except (ValueError, ImportError) as exc:
        raise SettingsError(f"cannot read settings file {p}: {exc}") from None
    values = data.get("upload", data) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise SettingsError(f"settings file {p} needs an [upload] table of settings")
    unknown = sorted(set(values) - _KNOWN)
    if unknown:
        raise SettingsError(f"unknown setting(s) in {p}: {', '.join(unknown)}")
    return dict(values)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def dump(path: str | os.PathLike, values: dict[str, Any], *, comments: list[str] = ()) -> None:
    """Write values as an [upload] table (TOML), or JSON for a .json name."""
    unknown = sorted(set(values) - _KNOWN)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    p = Path(path)
    if p.suffix.lower() == ".json":
        p.write_text(json.dumps({"upload": values, "why": list(comments)}, indent=2) + "\n", encoding="utf-8")
        return
    lines = [f"# {c}" for c in comments] + ["[upload]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
