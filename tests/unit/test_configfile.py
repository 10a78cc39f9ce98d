"""Settings files: what tune writes, upload reads back unchanged; unknown names are refused."""

from __future__ import annotations

import pytest

from mpupload.config import SettingsError
from mpupload.configfile import dump, load


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
