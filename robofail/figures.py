"""PNG figures robofail writes say which plot they are, so a later run can tell its own earlier
plot (which it may replace) from any other PNG (which it must not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robofail import __version__

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_KEY = "robofail-plot"


def save_png(figure: Any, path: str | Path, kind: str, **kwargs: Any) -> Path:
    """``figure.savefig`` as PNG, with ``kind`` (e.g. ``"closed_loop"``) and robofail's version
    in the file's text metadata."""
    path = Path(path)
    metadata = {"Software": f"robofail {__version__}", _KEY: kind}
    figure.savefig(path, format="png", metadata=metadata, **kwargs)
    return path


def is_robofail_png(path: str | Path, kind: str) -> bool:
    """Whether ``path`` is a ``kind`` plot that :func:`save_png` wrote (text chunks come first)."""
    try:
        with Path(path).open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return head.startswith(_PNG_MAGIC) and f"{_KEY}\0{kind}".encode() in head
