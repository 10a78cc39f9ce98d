"""--key-template: fields, validation, collisions found with bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpupload.core.keys import find_collisions, parse, render, unique_by_construction
from mpupload.run.plan import object_key
from mpupload.settings.config import Settings, SettingsError


@pytest.mark.parametrize("template,key", [
    ("{prefix}/{relpath}", "p/a/b/c.txt"),
    ("{year}/{name}", "p/1920/c.txt"),  # under the destination's prefix
    ("{prefix}/{year}/{relpath}", "p/1920/a/b/c.txt"),
    ("{year}/{prefix}/{parent}/{name}", "1920/p/a/b/c.txt"),  # {prefix} placed by the template itself
    ("{prefix}/{parent}/{year}-{name}", "p/a/b/1920-c.txt"),
])
def test_fields(template, key):
    assert render(template, prefix="p/", year="1920", rel="a/b/c.txt") == key


def test_empty_fields_leave_no_doubled_or_leading_slash():
    assert render("{prefix}/{parent}/{name}", prefix="", year="1920", rel="top.txt") == "top.txt"


@given(st.text(alphabet="ab/._-é", min_size=1).filter(lambda s: not s.startswith("/") and "//" not in s
                                                     and not s.endswith("/")),
       st.sampled_from(["", "p", "p/q"]))
def test_default_template_is_the_source_layout(rel, prefix):
    assert render("{prefix}/{relpath}", prefix=prefix, year="2000", rel=rel) == object_key(prefix, rel)


@pytest.mark.parametrize("template,why", [
    ("{year}/{nmae}", "unknown field"), ("{year}", "names no file"), ("{name:>10}", "format"), ("{year", "expected")])
def test_bad_templates_are_usage_errors(template, why):
    with pytest.raises(SettingsError, match=why):
        Settings(key_template=template).validated()


def test_unique_by_construction():
    assert unique_by_construction("{year}/{relpath}") and not unique_by_construction("{year}/{name}")
    assert parse("{year}/{name}") == ("year", "name")


def test_collisions_name_both_files_and_stop_at_most():
    pairs = [(f"k{i % 10}", f"f{i}") for i in range(100)]
    found = find_collisions(pairs, most=3)
    assert found == [("k0", "f0", "f10"), ("k1", "f1", "f11"), ("k2", "f2", "f12")]
    assert find_collisions([("a", "1"), ("b", "2")]) == []
