"""HTML building blocks of the report: escaped text, tables, embedded PNG images, notes.

Everything is inline (CSS in the page, images as base64 ``data:`` URLs): the page is one file that
opens anywhere, offline, and references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_NUMERIC = re.compile(r"-|-?\d[\d.]*( %| s)?|\d+ / \d+")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1300px; padding: 16px 28px 60px; color: #1d2330; background: #fbfbfd; }
h1 { margin-bottom: 4px; }
h2 { margin-top: 38px; border-bottom: 2px solid #d8dde8; padding-bottom: 4px; }
h3 { margin: 18px 0 6px; font-size: 1.02em; }
.subtitle { color: #5a6275; margin-top: 0; }
nav ol { columns: 2; background: #eef1f7; padding: 10px 10px 10px 34px; border-radius: 6px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.9em; background: #fff; }
th, td { border: 1px solid #d4d9e3; padding: 3px 9px; text-align: left; }
th { background: #eef1f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.warn { background: #fde2e1; }
img { max-width: 100%; border: 1px solid #e0e3ea; background: #fff; margin: 6px 0; }
code { background: #eef1f7; padding: 1px 4px; border-radius: 3px; font-size: 0.88em;
       word-break: break-all; }
.missing { background: #fff6e0; border-left: 4px solid #e0a800; padding: 8px 12px; margin: 8px 0; }
.missing li { margin: 4px 0; }
.error { background: #fde2e1; border-left: 4px solid #c62828; padding: 8px 12px; }
.note { color: #4a5264; font-size: 0.92em; }
.bar { display: inline-block; height: 11px; background: #5b7bd5; vertical-align: middle; }
"""


@dataclass(frozen=True)
class Section:
    """One section of the page: ``anchor`` (HTML id), ``title`` (its heading), ``body`` (HTML)."""

    anchor: str
    title: str
    body: str


def esc(value: object) -> str:
    """``value`` as HTML-escaped text."""
    return html.escape(str(value))


def number(value: object, digits: int = 3) -> str:
    """A table cell's text: ``-`` for None, ints as they are, floats with ``digits`` decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    """``0.875`` -> ``87.5 %``; ``-`` for None."""
    return "-" if value is None else f"{100 * value:.1f} %"


def table(heads: Sequence[str] | None, rows: Iterable[Sequence[str | tuple[str, str]]]) -> str:
    """A table; ``heads`` are plain text (None: no header row), cells are HTML, or
    ``(html, css class)``; cells that read as numbers are right-aligned."""
    head = "" if heads is None else "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr>"
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            text, css = cell if isinstance(cell, tuple) else (cell, "")
            css = f"{css} num".strip() if _NUMERIC.fullmatch(text) else css
            cells.append(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(lines)}</table>"


def png(data: bytes, alt: str) -> str:
    """An ``<img>`` holding the PNG bytes ``data`` as a base64 data URL."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def plotted(draw: Callable[[Path], object], alt: str) -> str:
    """Run ``draw(path)`` (a plot function that writes a PNG to ``path``) and embed the PNG."""
    with tempfile.TemporaryDirectory(prefix="robofail-report-") as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        return png(path.read_bytes(), alt)


def code(text: str) -> str:
    """``text`` as inline code (commands, paths)."""
    return f"<code>{esc(text)}</code>"


def missing(items: Sequence[tuple[str, str]], *, partial: bool = False) -> str:
    """A note listing missing inputs, each ``(what, command that produces it)``; ``partial``: the
    section shows what the other inputs allow. Empty when nothing is missing."""
    if not items:
        return ""
    lines = "".join(
        f"<li><b>{esc(what)}</b>: produce it with {code(cmd)}</li>" for what, cmd in items
    )
    effect = "this section shows only part of the run" if partial else "this section is empty"
    return f'<div class="missing">Missing input, so {effect}:<ul>{lines}</ul></div>'


def error(message: str) -> str:
    """A note that an input exists but could not be used."""
    return f'<div class="error">{esc(message)}</div>'


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole HTML document: title, table of contents, the sections in order."""
    contents = "".join(f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(f'<h2 id="{s.anchor}">{esc(s.title)}</h2>\n{s.body}\n' for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n"
        f'<h1>{esc(title)}</h1><p class="subtitle">{subtitle}</p>\n'
        f"<nav><ol>{contents}</ol></nav>\n{body}</body></html>\n"
    )
