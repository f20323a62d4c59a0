"""``robofail report``: one self-contained HTML page for a pipeline run folder.

Sections, in order: methods tables, score traces, ROC curves, detection and lead times, failures
by type, the failure boundary, the closed loop, run timings. A section whose inputs are missing
says which, and the command that produces each; a file that exists but cannot be used is named
with the reason. The page is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from robofail import __version__
from robofail.errors import OutputPathError
from robofail.folders import check_writable
from robofail.report import html
from robofail.report.monitor_sections import (
    methods_section,
    roc_section,
    score_test_episodes,
    timing_section,
    traces_section,
)
from robofail.report.pipeline_sections import (
    boundary_section,
    closed_loop_section,
    failures_section,
    timings_section,
)
from robofail.report.run_folder import RunFolder


def check_output(out: Path) -> None:
    """Raise :class:`OutputPathError` unless ``out`` can be written as a file."""
    if out.is_dir():
        raise OutputPathError(f"--out {out} is a folder; give a file name such as report.html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise OutputPathError(f"--out must name an .html file, got {out}")
    if out.exists() and not _is_report(out):
        raise OutputPathError(
            f"--out {out} exists and is not a robofail report, so it would be lost; give another "
            "path (or delete that file first)"
        )
    check_writable(out, "--out")


def _is_report(path: Path) -> bool:
    """Whether ``path`` is an HTML page this module wrote (its title starts "robofail report")."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return head.startswith(b"<!DOCTYPE html>") and b"<title>robofail report" in head


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the run folder ``run_dir`` to ``out`` (default
    ``run_dir/report.html``) and return its path.

    Raises:
        InvalidInputError: ``run_dir`` is not a folder.
        OutputPathError: ``out`` cannot be written.
    """
    run = RunFolder.open(run_dir)
    out = Path(out) if out is not None else run.path / "report.html"
    check_output(out)
    scores = score_test_episodes(run)
    sections = [
        methods_section(run),
        traces_section(run, scores),
        roc_section(scores),
        timing_section(scores),
        failures_section(run),
        boundary_section(run),
        closed_loop_section(run),
        timings_section(run),
    ]
    document = html.page(f"robofail report: {run.task or 'run'}", _subtitle(run), sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(document, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputPathError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _subtitle(run: RunFolder) -> str:
    """Run folder, task, seed, size, policy fingerprint, versions and when the page was made."""
    from robofail.tasks import TASKS

    parts = [f"run folder {html.code(str(run.path))}"]
    for key in ("task", "seed", "size"):
        if key in run.record:
            parts.append(f"{key} {html.esc(run.record[key])}")
    config = run.path / "policy" / "config.json"
    if config.exists():
        try:
            fingerprint = json.loads(config.read_text()).get("fingerprint")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            fingerprint = None
        if fingerprint:
            parts.append(f"policy {html.esc(fingerprint)}")
    parts.append(f"robofail {html.esc(__version__)}")
    parts.append(time.strftime("made %Y-%m-%d %H:%M UTC", time.gmtime()))
    hint = (
        f"Run or resume every missing stage with {html.code(run.quickstart_command())}."
        if run.task in TASKS
        else ""
    )
    return " &middot; ".join(parts) + f"<br>{hint}"
