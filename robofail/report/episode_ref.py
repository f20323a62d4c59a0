"""One episode of a stored dataset, named on the command line as ``PATH:EPISODE``.

``EPISODE`` is one of

- ``demo_<i>``: the episode stored under that name (``robofail evaluate`` and the report list
  episodes this way), e.g. ``data/push_rollouts.h5:demo_3``;
- ``<k>``: the k-th episode of the dataset, from 0 (negative: from the end), e.g.
  ``runs/quickstart/test_failures:0``;
- ``<FILTER>:<k>``: the k-th episode of one of the dataset's filters, e.g.
  ``runs/quickstart/test_failures:failure:2`` or ``...:slip:0``.

``PATH`` is an ``.h5`` file or a shard folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from robofail.data.episode import DatasetInfo, Episode
from robofail.errors import IndexOutOfRangeError, InvalidInputError, UnknownNameError

SYNTAX = (
    "PATH:demo_<i> (a stored episode name), PATH:<k> (the k-th episode, from 0) or "
    "PATH:<FILTER>:<k> (the k-th episode of a filter, e.g. test_failures:failure:0)"
)
_NAME = re.compile(r"demo_\d+")
_POSITION = re.compile(r"-?\d+")


@dataclass(frozen=True)
class EpisodeRef:
    """A parsed ``PATH:EPISODE``: the dataset, an optional filter, and the episode's name
    (``demo_<i>``) or position (within the filter when there is one)."""

    path: Path
    filter: str | None
    key: str

    def __str__(self) -> str:
        middle = f":{self.filter}" if self.filter else ""
        return f"{self.path}{middle}:{self.key}"


def parse_episode_ref(text: str) -> EpisodeRef:
    """Parse ``PATH:EPISODE`` (see the module docstring).

    Raises:
        InvalidInputError: the text does not follow the syntax, or ``PATH`` does not exist.
    """
    head, sep, key = text.rpartition(":")
    if not sep or not head or not key:
        raise InvalidInputError(f"episode {text!r}: expected {SYNTAX}")
    if Path(head).exists():
        if not (_NAME.fullmatch(key) or _POSITION.fullmatch(key)):
            raise InvalidInputError(
                f"episode {text!r}: {key!r} is neither demo_<i> nor a number; expected {SYNTAX}"
            )
        return EpisodeRef(Path(head), None, key)
    path, sep, filter_name = head.rpartition(":")
    if sep and path and Path(path).exists():
        if not filter_name or not _POSITION.fullmatch(key):
            raise InvalidInputError(
                f"episode {text!r}: after the filter {filter_name!r} give a position, e.g. "
                f"{path}:{filter_name or 'failure'}:0"
            )
        return EpisodeRef(Path(path), filter_name, key)
    raise InvalidInputError(f"episode {text!r}: no such dataset {head!r}; expected {SYNTAX}")


def load_episode(ref: EpisodeRef) -> tuple[Episode, DatasetInfo, str]:
    """The episode ``ref`` names, its dataset's info and its stored name.

    Raises:
        UnknownNameError: no episode of that name, or no such filter.
        IndexOutOfRangeError: a position past the end (of the filter).
        CorruptFileError, InvalidInputError: from the store.
    """
    from robofail.data import open_dataset

    with open_dataset(ref.path) as dataset:
        names = dataset.episode_names()
        if ref.filter is not None:
            positions = dataset.mask(ref.filter)
            k = int(ref.key)
            if not -len(positions) <= k < len(positions):
                raise IndexOutOfRangeError(
                    f"episode {ref}: filter {ref.filter!r} of {ref.path} holds "
                    f"{len(positions)} episodes"
                )
            position = positions[k]
        elif _NAME.fullmatch(ref.key):
            if ref.key not in names:
                raise UnknownNameError(
                    f"episode {ref}: {ref.path} has no {ref.key} (its {len(names)} episodes run "
                    f"from {names[0] if names else '-'} to {names[-1] if names else '-'})"
                )
            position = names.index(ref.key)
        else:
            position = int(ref.key)
        return dataset[position], dataset.info, names[position]
