"""Argument types and output-path checks shared by the ``robofail`` verbs.

Every type raises :class:`argparse.ArgumentTypeError`, which the parser prints as one line with
exit status 2. The output checks run before any work, so a bad path never costs a finished run.
An existing output is replaced only with ``--overwrite`` (:func:`check_new_file`), when it is the
verb's own earlier result (:func:`check_result_file`), or when it is a folder holding an earlier
artifact of the same kind and nothing else (:func:`robofail.folders.check_replaceable_folder`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robofail.errors import OutputPathError
from robofail.folders import check_writable, read_json_object
from robofail.parallel import MAX_SEED, max_local_workers, usable_cpus

#: Suffixes of an episode file.
H5_SUFFIXES = (".h5", ".hdf5")


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def _ranged(kind: type, inside: Callable[[float], bool], rule: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` if ``inside`` it, else "must be ``rule``"."""

    def parse(text: str) -> Any:
        value = _number(text, kind)
        if not inside(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


#: Most chunks per inference a verb samples: the monitor's chunk scores need at least 2.
MAX_SAMPLES = 1024

positive_int = _ranged(int, lambda v: v >= 1, ">= 1")
seed = _ranged(int, lambda v: 0 <= v <= MAX_SEED, f"in 0..{MAX_SEED}")
samples = _ranged(
    int,
    lambda v: 2 <= v <= MAX_SAMPLES,
    f"in 2..{MAX_SAMPLES} (the monitor compares at least 2 chunks)",
)
seconds = _ranged(float, lambda v: 0 <= v <= 3600, "in [0, 3600] seconds")
action_noise = _ranged(
    float, lambda v: 0 <= v <= 1, "in [0, 1] (action units; actions lie in [-1, 1])"
)
probability = _ranged(float, lambda v: 0 <= v <= 1, "a probability in [0, 1]")
fraction = _ranged(float, lambda v: 0 < v <= 1, "in (0, 1]")
open_unit = _ranged(float, lambda v: 0 < v < 1, "in (0, 1), e.g. 0.05")
workers = _ranged(
    int,
    lambda v: 1 <= v <= max_local_workers(),
    f"in 1..{max_local_workers()} (twice this machine's CPUs)",
)


def alpha(text: str) -> float:
    """A false-alarm bound the monitor can calibrate: [MIN_ALPHA, 1)."""
    from robofail.monitor.conformal import MIN_ALPHA  # not at import: it loads onnxruntime

    return _ranged(float, lambda v: MIN_ALPHA <= v < 1, f"in [{MIN_ALPHA:g}, 1), e.g. 0.05")(text)


def threads(text: str) -> int:
    """0 (the library's default) up to the CPUs this process may use."""
    value = _number(text, int)
    cpus = usable_cpus()
    if not 0 <= value <= cpus:
        raise argparse.ArgumentTypeError(
            f"must be in 0..{cpus} (0: default; this process may use {cpus} CPUs), got {value}"
        )
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


def json_with_keys(*keys: str) -> Callable[[Path], bool]:
    """A ``written_by_us`` test: a JSON object with all of ``keys``."""

    def test(path: Path) -> bool:
        data = read_json_object(path)
        return data is not None and all(key in data for key in keys)

    return test
