"""Hostile names in the human views: one line per file, and no markup injection into the rich view."""

from __future__ import annotations

import io
import sys

from mpupload.core.messages import FAILED, SKIPPED, UploadResult
from mpupload.observe.stats import Stats
from mpupload.ui.liveview import RichReporter
from mpupload.ui.printers import PlainReporter
from mpupload.ui.text import printable


def test_printable_escapes_control_characters_only():
    assert printable("1950/ünï cödé.jp2") == "1950/ünï cödé.jp2"
    assert printable("new\nline\t\x01.jp2") == "new\\nline\\t\\x01.jp2"


def test_rich_view_survives_names_that_look_like_markup(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    view = RichReporter(out=io.StringIO())
    view.result(UploadResult(rel="1950/[/weird] [bold]x\n.jp2", key="k", status=SKIPPED, reason="not a regular file"))
    assert "[/weird] [bold]x\\n.jp2" in err.getvalue()


def test_summary_lists_each_failed_file_on_one_line():
    stats = Stats()
    stats.found(2, 10)
    stats.scan_done = True
    for rel in ("a\nb.jp2", "c.jp2"):
        stats.add(UploadResult(rel=rel, key=rel, status=FAILED, reason="file error: boom"))
    out = io.StringIO()
    PlainReporter(out=out, err=io.StringIO()).finish(stats.snapshot(), stats.failures, interrupted=False, fatal=None)
    listing = out.getvalue().split("Failed files:\n", 1)[1].splitlines()
    assert listing == ["  a\\nb.jp2: file error: boom", "  c.jp2: file error: boom"]
