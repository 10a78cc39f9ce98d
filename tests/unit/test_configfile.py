"""Settings files: what tune writes, upload reads back unchanged; unknown names are refused."""

from __future__ import annotations

import pytest

from mpupload.settings.config import SettingsError
from mpupload.settings.files import default_path, dump, load, read


@pytest.mark.parametrize("name", ["tuned.toml", "tuned.json"])
def test_round_trip(tmp_path, name):
    values = {"processes": 2, "threads": 16, "multipart_chunksize": "16MiB", "fast_put": False}
    dump(tmp_path / name, values, comments=["client-CPU-bound: \"quoted\" why"])
    assert load(tmp_path / name) == values


def test_top_level_keys_without_a_table(tmp_path):
    (tmp_path / "c.toml").write_text("threads = 4\n")
    assert load(tmp_path / "c.toml") == {"threads": 4}


@pytest.mark.parametrize("text, message", [
    ("[upload]\nthreadz = 4\n", "threadz"),
    ("[upload]\nsource = '/x'\n", "source"),  # what to upload stays on the command line
    ("[upload\n", "cannot read"),
])
def test_bad_files_are_usage_errors(tmp_path, text, message):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(SettingsError, match=message):
        load(tmp_path / "c.toml")


def test_presets_and_the_upload_table(tmp_path):
    (tmp_path / "c.toml").write_text('processes = 4\n[upload]\nthreads = 2\n'
                                     '[presets.archive]\ndest = "s3://b/p"\nprocesses = 1\n')
    cfg = read(tmp_path / "c.toml")
    assert cfg.top == {"processes": 4, "threads": 2}
    assert cfg.preset("archive") == {"dest": "s3://b/p", "processes": 1}
    with pytest.raises(SettingsError, match=r"no preset 'nope' in .*c\.toml \(presets there: archive"):
        cfg.preset("nope")


@pytest.mark.parametrize("text, message", [
    ('dest = "s3://b/p"\n', r"dest belongs in a \[presets.NAME\]"),
    ("[presets.a]\nthreadz = 1\n", r"\[presets.a\]: threadz"),
    ("presets = 3\n", "presets must be tables"),
    ("[presets]\na = 3\n", r"\[presets.a\]: expected a table"),
    ("run_id = 'x'\n", "run_id"),  # internal fields are not settings
])
def test_bad_presets_name_the_file_and_key(tmp_path, text, message):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(SettingsError, match=message):
        read(tmp_path / "c.toml")


def test_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_path() == tmp_path / "mpupload" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".config" / "mpupload" / "config.toml"
