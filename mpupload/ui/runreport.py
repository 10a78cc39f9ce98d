"""Where run reports live and how they are written, listed and re-drawn.

Every run writes `report.json` and `report.html` into a folder of its own: by default beside its journal
(`JOURNAL-reports/YYYYmmddTHHMMSSZ-RUNID/`), so a run's reports are found from the journal; with
`--report DIR`, into DIR itself (the user named the place). A report that cannot be written never turns a
run into a failure: the run already happened; the user is told why and where."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mpupload.ui.reportpage import render

JSON_NAME, HTML_NAME = "report.json", "report.html"


def reports_root(journal: str | os.PathLike) -> Path:
    """The folder that holds every report of the runs on this journal."""
    p = Path(journal)
    return p.with_name(p.name + "-reports")


def run_folder(*, journal: str, started_at: str, run_id: str, chosen: str | None) -> Path:
    if chosen:
        return Path(chosen)
    stamp = started_at.replace("-", "").replace(":", "")
    return reports_root(journal) / f"{stamp}-{run_id[:8]}"


def _write_atomic(path: Path, text: str) -> None:
    # Written whole or not at all: `mpupload report` never finds half a JSON document.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(doc: dict, folder: str | os.PathLike) -> tuple[Path, Path]:
    """report.json and report.html in `folder` (created); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    j, h = folder / JSON_NAME, folder / HTML_NAME
    _write_atomic(j, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    _write_atomic(h, render(doc))
    return j, h


def rerender(path: str | os.PathLike) -> Path:
    """Draw report.html again from report.json (a path to either, or to their folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / JSON_NAME
    elif p.name == HTML_NAME:
        p = p.with_name(JSON_NAME)
    doc = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "mpupload_report" not in doc:
        raise ValueError(f"{p} is not an mpupload report")
    html = p.with_name(HTML_NAME)
    _write_atomic(html, render(doc))
    return html


@dataclass(frozen=True)
class Listed:
    path: Path
    started_at: str
    source: str
    destination: str
    uploaded: int
    failed: int
    seconds: float
    outcome: str


def _outcome(doc: dict) -> str:
    run, summ = doc.get("run", {}), doc.get("summary", {})
    if run.get("fatal"):
        return "fatal"
    if run.get("interrupted"):
        return "interrupted"
    return "failures" if summ.get("failed") or summ.get("not_done") else "ok"


def list_reports(roots: list[Path]) -> list[Listed]:
    """Every report.json under the given folders (a journal's reports folder, or a state folder), oldest
    first. Unreadable ones are left out, not fatal: a listing is for finding, not for checking."""
    found: list[Listed] = []
    for root in roots:
        if not root.exists():
            continue
        for j in sorted(root.rglob(JSON_NAME)):
            try:
                doc = json.loads(j.read_text(encoding="utf-8"))
                run, summ = doc["run"], doc.get("summary", {})
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found.append(Listed(path=j.parent, started_at=run.get("started_at", ""), source=run.get("source", ""),
                                destination=run.get("destination", ""), uploaded=summ.get("uploaded", 0),
                                failed=summ.get("failed", 0), seconds=summ.get("seconds", 0.0),
                                outcome=_outcome(doc)))
    return sorted(found, key=lambda x: x.started_at)
