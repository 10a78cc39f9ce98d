"""S3's limits, before any request: keys, user metadata (mpupload's own always fits), tags, --metadata."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpupload.core.s3limits import (
    MAX_METADATA_BYTES,
    OWN_FIXED_BYTES,
    PATH_OMITTED,
    PATH_PERCENT,
    PATH_RFC2047,
    LimitError,
    as_mapping,
    check_object_limits,
    check_tags,
    check_user_metadata,
    decode_source_path,
    fit_metadata,
    key_problem,
    metadata_bytes,
)

OWN = {"xxh3-128": "0" * 32, "source-mtime": "1700000000.123456789"}
CJK_700 = "\u65e5" * 233 + "a"  # 3 x 233 + 1 = 700 bytes of UTF-8


def test_key_limit_is_utf8_bytes():
    assert key_problem("a" * 1024) is None
    assert "1025 bytes" in key_problem("a" * 1025)
    assert key_problem("\u00e9" * 512) is None and "1026 bytes" in key_problem("\u00e9" * 513)
    assert key_problem(os.fsdecode(b"\xff") * 1025) is not None  # counted, never raises


def test_metadata_bytes_counts_names_and_values_in_utf8():
    assert metadata_bytes({"ab": "c\u00e9"}) == 2 + 3


def test_a_short_path_stays_percent_encoded():
    meta, form = fit_metadata(OWN, b"1920/a b.jp2")
    assert form == PATH_PERCENT and meta["source-path"] == "1920/a%20b.jp2"


def test_a_700_byte_cjk_path_fits_as_rfc2047_and_decodes_back():
    raw = f"{CJK_700}/page.jp2".encode()
    meta, form = fit_metadata(OWN, raw)
    assert form == PATH_RFC2047 and metadata_bytes(meta) <= MAX_METADATA_BYTES
    assert meta["source-path"].isascii() and all(len(w) <= 75 for w in meta["source-path"].split(" "))
    assert decode_source_path(meta["source-path"]) == raw
    # Percent-encoded it would not have fitted: the reason for the other form.
    assert len(raw) * 3 + metadata_bytes(OWN) + len("source-path") > MAX_METADATA_BYTES


def test_a_path_no_form_fits_is_left_out():
    meta, form = fit_metadata(OWN, ("\u65e5" * 1000).encode())
    assert form == PATH_OMITTED and "source-path" not in meta and meta["xxh3-128"] == OWN["xxh3-128"]


def test_undecodable_path_bytes_go_percent_encoded_or_not_at_all():
    meta, form = fit_metadata(OWN, b"bad-\xff.txt")
    assert form == PATH_PERCENT and decode_source_path(meta["source-path"]) == b"bad-\xff.txt"
    meta, form = fit_metadata(OWN, b"\xff" * 700)  # 2,100 escaped: not text, so no RFC 2047 either
    assert form == PATH_OMITTED and "source-path" not in meta


def test_user_metadata_shares_the_room_and_own_keys_win():
    user = {"project": "x" * 900, "xxh3-128": "mine"}
    meta, form = fit_metadata(OWN, f"{CJK_700}/p".encode(), user)
    assert meta["xxh3-128"] == OWN["xxh3-128"] and meta["project"] == "x" * 900
    assert form == PATH_OMITTED and metadata_bytes(meta) <= MAX_METADATA_BYTES


@given(path=st.text(min_size=1, max_size=1200), user_len=st.integers(0, MAX_METADATA_BYTES - OWN_FIXED_BYTES - 8))
def test_metadata_always_fits(path, user_len):
    raw = os.fsencode(path) if "\x00" not in path else b"p"
    user = {"u": "v" * user_len}
    check_user_metadata(user)
    own = {"xxh3-128": "f" * 32, "source-mtime": "999999999999.999999999"}  # the longest they get
    meta, form = fit_metadata(own, raw, user)
    assert metadata_bytes(meta) <= MAX_METADATA_BYTES
    if form != PATH_OMITTED:
        assert decode_source_path(meta["source-path"]) == raw


@pytest.mark.parametrize("meta, words", [
    ({"bad name": "v"}, "HTTP header name"),
    ({"": "v"}, "HTTP header name"),
    ({"k": "a\nb"}, "line break"),
    ({"k": "v" * (MAX_METADATA_BYTES - OWN_FIXED_BYTES)}, "S3 allows 2048"),
])
def test_user_metadata_that_cannot_be_sent_is_a_usage_error(meta, words):
    with pytest.raises(LimitError, match=words):
        check_user_metadata(meta)


def test_user_metadata_at_the_limit_passes():
    check_user_metadata({"k": "v" * (MAX_METADATA_BYTES - OWN_FIXED_BYTES - 1)})
    check_user_metadata({"source-path": "v" * 5000})  # an own name: mpupload's value wins, so it costs nothing


def test_tags_limits():
    check_tags({f"k{i}": "v" * 256 for i in range(10)})
    check_tags({"k" * 128: ""})
    with pytest.raises(LimitError, match="11 tags"):
        check_tags({f"k{i}": "v" for i in range(11)})
    with pytest.raises(LimitError, match="129 characters"):
        check_tags({"k" * 129: "v"})
    with pytest.raises(LimitError, match="257 characters"):
        check_tags({"k": "\u00e9" * 257})  # characters, not bytes: 256 x "é" passes
    check_tags({"k": "\u00e9" * 256})
    with pytest.raises(LimitError, match="0 characters"):
        check_tags({"": "v"})


@pytest.mark.parametrize("metadata, tags", [
    ("a=1,b=2", "k=v&k2=v2"), ({"a": "1"}, {"k": "v"}), ((("a", "1"),), (("k", "v"),)), (None, None), ("", ""),
])
def test_object_settings_in_any_form_pass(metadata, tags):
    check_object_limits(metadata=metadata, tags=tags)


@pytest.mark.parametrize("metadata, tags, words", [
    (None, "&".join(f"k{i}=v" for i in range(11)), "11 tags"),
    ((("k", "v" * 3000),), None, "--metadata is"),
    ("bad name=1", None, "HTTP header name"),
    (None, {"k" * 129: "v"}, "129 characters"),
])
def test_object_settings_over_s3_limits_are_refused(metadata, tags, words):
    with pytest.raises(LimitError, match=words):
        check_object_limits(metadata=metadata, tags=tags)


def test_as_mapping_reads_the_aws_cli_forms():
    assert as_mapping("a=1,b=x=y", pair_sep=",") == {"a": "1", "b": "x=y"}
    assert as_mapping("k=a%20b&e=", pair_sep="&") == {"k": "a b", "e": ""}


def test_settings_validation_calls_the_limit_checks():
    """The hook in Settings.validated: a setting S3 would refuse is a SettingsError (exit 2) before any
    request. Until the object settings exist, a stand-in attribute plays --tags."""
    import dataclasses

    from mpupload.settings.config import Settings, SettingsError

    @dataclasses.dataclass(frozen=True)
    class WithTags(Settings):
        tags: str = ""

    WithTags(tags="a=1").validated()
    with pytest.raises(SettingsError, match="11 tags"):
        WithTags(tags="&".join(f"k{i}=v" for i in range(11))).validated()
