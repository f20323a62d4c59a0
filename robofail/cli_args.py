"""Argument types and output-path checks shared by the ``robofail`` verbs.

Every type raises :class:`argparse.ArgumentTypeError`, which the parser prints as one line with
exit status 2. The output checks run before any work, so a bad path never costs a finished run.
An existing output is replaced only with ``--overwrite`` (:func:`check_new_file`), when it is the
verb's own earlier result (:func:`check_result_file`), or when it is a folder holding an earlier
artifact of the same kind and nothing else (:func:`check_artifact_folder`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from robofail.errors import OutputPathError
from robofail.folders import check_writable
from robofail.parallel import MAX_SEED

#: Suffixes of an episode file.
H5_SUFFIXES = (".h5", ".hdf5")


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed(text: str) -> int:
    """A seed in 0 .. :data:`MAX_SEED`."""
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_SEED}, got {value}")
    return value


def threads(text: str) -> int:
    """0 (the library's default) up to this machine's CPU count."""
    value = _number(text, int)
    cpus = os.cpu_count() or 1
    if not 0 <= value <= cpus:
        raise argparse.ArgumentTypeError(
            f"must be in 0..{cpus} (0: default; this machine has {cpus} CPUs), got {value}"
        )
    return value


#: Most chunks per inference a verb samples: the monitor's chunk scores need at least 2.
MAX_SAMPLES = 1024


def samples(text: str) -> int:
    """Chunks sampled per policy inference, 2 .. :data:`MAX_SAMPLES`."""
    value = _number(text, int)
    if not 2 <= value <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(
            f"must be in 2..{MAX_SAMPLES} (the monitor compares at least 2 chunks), got {value}"
        )
    return value


def seconds(text: str) -> float:
    """A duration in seconds, 0 .. 1 hour."""
    value = _number(text, float)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be in [0, 3600] seconds, got {text}")
    return value


def action_noise(text: str) -> float:
    """A noise std in action units: actions lie in [-1, 1], so 0 .. 1."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be in [0, 1] (action units; actions lie in [-1, 1]), got {text}"
        )
    return value


def probability(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def open_unit(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), e.g. 0.05; got {text}")
    return value


def action_dims(text: str) -> list[int]:
    """Comma-separated action dims: at least one, each >= 0, none twice."""
    try:
        dims = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated action dims like 0,1,2, got {text!r}"
        ) from None
    if not dims or min(dims) < 0 or len(set(dims)) != len(dims):
        raise argparse.ArgumentTypeError(
            f"expected distinct action dims >= 0 like 0,1,2, got {text!r}"
        )
    return dims


def check_new_file(path: Path, flag: str, suffixes: tuple[str, ...], *, overwrite: bool) -> None:
    """Fail fast unless ``path`` can be written as a new file: the right suffix, not a folder,
    not an existing file unless ``overwrite`` (the verb's ``--overwrite``), a writable folder."""
    _check_file_path(path, flag, suffixes)
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it")
    check_writable(path, flag)


def check_result_file(
    path: Path, flag: str, suffixes: tuple[str, ...], written_by_us: Callable[[Path], bool]
) -> None:
    """Fail fast unless ``path`` can take a result file: the right suffix, not a folder, a
    writable folder, and if it exists, a file this verb writes (``written_by_us``), so that
    running a verb again replaces its own result but never another file (a dataset, an artifact).
    """
    _check_file_path(path, flag, suffixes)
    if path.exists() and not written_by_us(path):
        raise OutputPathError(
            f"{flag} {path} exists and is not a file this command writes, so it would be lost; "
            "give another path (or delete that file first)"
        )
    check_writable(path, flag)


def _check_file_path(path: Path, flag: str, suffixes: tuple[str, ...]) -> None:
    if path.is_dir():
        raise OutputPathError(
            f"{flag} {path} is a folder; give a file name ending in {suffixes[0]}"
        )
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{flag} must name a {' or '.join(suffixes)} file, got {path}")


def _json_object(path: Path) -> dict | None:
    """The JSON object in file ``path``, or None for anything else (unreadable, not JSON, too
    deep or with numbers too long to parse, not an object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # ValueError covers JSON and UTF-8 errors
        return None
    return data if isinstance(data, dict) else None


def json_with_keys(*keys: str) -> Callable[[Path], bool]:
    """A ``written_by_us`` test: a JSON object with all of ``keys``."""

    def test(path: Path) -> bool:
        data = _json_object(path)
        return data is not None and all(key in data for key in keys)

    return test


def check_artifact_folder(
    path: Path,
    flag: str,
    what: str,
    marker: str,
    kind: str,
    own: Callable[[str], bool],
    *,
    overwrite: bool,
) -> None:
    """Fail fast unless ``path`` can be written as a ``what`` folder: new, or (with
    ``overwrite``) an earlier ``what`` to replace whole: not a file, writable, and if it holds
    anything, its ``marker`` JSON file names ``kind`` and every entry (hidden ones too) is one
    ``own`` claims, since replacing the folder deletes all that is in it."""
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path} is a file; give a folder for the {what}")
    check_writable(path, flag)
    if not path.is_dir() or not any(path.iterdir()):
        return
    if (_json_object(path / marker) or {}).get("kind") != kind:
        raise OutputPathError(
            f"{flag} {path} holds something other than a {what} (no {marker} of one); a {what} "
            "is saved by replacing its folder whole: give a folder of its own"
        )
    others = sorted(p.name for p in path.iterdir() if not own(p.name))
    if others:
        raise OutputPathError(
            f"{flag} {path} holds other files ({', '.join(others[:3])}); a {what} is saved by "
            "replacing its folder whole: give a folder of its own"
        )
