"""Where settings come from: flag > environment > preset > settings file > default, read back through
`mpupload config show --json` (the command a user asks), with bad files as one-line usage errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mpupload.cli.main import main

SECRET = "wJalrXUtnFEMI-never-printed"


@pytest.fixture
def env(tmp_path):
    """A clean environment: a settings folder of its own, credentials in the environment (never printed)."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID",
            "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_PROFILE": None,
            "MPUPLOAD_PRESET": None, "MPUPLOAD_CONFIG": None, "MPUPLOAD_PROCESSES": None, "MPUPLOAD_THREADS": None,
            "AWS_ENDPOINT_URL_S3": None, "AWS_ENDPOINT_URL": None}


def _write_default(tmp_path, text: str):
    path = tmp_path / "xdg" / "mpupload" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _show(args, env):
    r = CliRunner().invoke(main, ["config", "show", "--json", *args], env=env)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _setting(doc, name):
    return doc["settings"][name]["value"], doc["settings"][name]["origin"]


def test_every_layer_in_its_place(tmp_path, env):
    path = _write_default(tmp_path, 'retries = 4\nread_timeout = 90\nfile_attempts = 9\nmultipart_chunksize = "16MB"\n'
                                    '[presets.archive]\ndest = "s3://archive/scans"\nendpoint_url = "http://h:1"\n'
                                    'retries = 5\nread_timeout = 91\n')
    env = {**env, "MPUPLOAD_READ_TIMEOUT": "92", "MPUPLOAD_FILE_ATTEMPTS": "2"}
    doc = _show(["--preset", "archive", "--file-attempts", "3"], env)
    assert doc["settings_file"] == str(path) and doc["preset"] == "archive"
    assert _setting(doc, "dest") == ("s3://archive/scans", f"preset archive ({path})")
    assert _setting(doc, "retries") == (5, f"preset archive ({path})")  # preset over file
    assert _setting(doc, "read_timeout") == (92.0, "environment MPUPLOAD_READ_TIMEOUT")  # env over preset
    assert _setting(doc, "file_attempts") == (3, "flag --file-attempts")  # flag over env and file
    assert _setting(doc, "multipart_chunksize") == (16 * 1024**2, f"config file {path}")  # 16MB as the AWS CLI reads it
    assert _setting(doc, "backoff_cap") == (30.0, "default")


def test_preset_from_the_environment_and_an_explicit_file(tmp_path, env):
    _write_default(tmp_path, "retries = 4\n")
    other = tmp_path / "other.toml"
    other.write_text("[presets.b]\nretries = 6\ndest = 's3://b'\n")
    doc = _show(["--config", str(other)], {**env, "MPUPLOAD_PRESET": "b"})
    assert doc["settings_file"] == str(other) and doc["settings_file_given"]
    assert _setting(doc, "retries") == (6, f"preset b ({other})")  # the default file is not read at all


def test_credentials_show_where_they_are_never_what(env):
    r = CliRunner().invoke(main, ["config", "show", "s3://b/p"], env=env)
    r2 = CliRunner().invoke(main, ["config", "show", "--json"], env=env)
    for out in (r.output, r2.output):
        assert SECRET not in out and "AKIAEXAMPLEKEYID" not in out
    assert "environment (AWS_ACCESS_KEY_ID" in r2.output


def test_processes_chosen_for_the_source(tmp_path, env):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("x")
    doc = _show([str(tmp_path / "src"), "s3://b/p"], env)
    value, came_from = _setting(doc, "processes")
    assert value == 0 and came_from.startswith("chosen for this source")  # one tiny file: no worker process
    assert _setting(doc, "journal")[0].endswith(".sqlite")


@pytest.mark.parametrize("text, args, message", [
    ("threadz = 3\n", [], "unknown setting(s) in {path}: threadz"),
    ('multipart_chunksize = "lots"\n', [], "config file {path}: multipart_chunksize = 'lots': not a size"),
    ("[presets.a]\nretries = 1\n", ["--preset", "nope"], "no preset 'nope' in {path} (presets there: a"),
    ("processes = [\n", [], "cannot read settings file {path}"),
])
def test_bad_settings_are_usage_errors_naming_file_and_key(tmp_path, env, text, args, message):
    path = _write_default(tmp_path, text)
    r = CliRunner().invoke(main, ["upload", str(tmp_path), "s3://b/p", "--dry-run", *args], env=env)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.output  # one line, no usage dump, no traceback
    assert lines[0].startswith("mpupload: error: " + message.format(path=path))


def test_no_default_file_and_no_preset_file(tmp_path, env):
    r = CliRunner().invoke(main, ["config", "show", "--preset", "x"], env=env)
    assert r.exit_code == 2 and "--preset x: no settings file" in r.output
