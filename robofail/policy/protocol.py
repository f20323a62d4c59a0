"""What a policy must offer to be monitored: the :class:`ChunkPolicy` protocol.

A generative chunk policy maps an observation window to a distribution over action chunks
(``H`` future actions). robofail needs two things from it: an embedding of the observation (the
OOD score's input) and several sampled chunks for the same observation (the entropy score's
input). Numpy only: a user's policy in any framework is wrapped in a few lines.

Observations reach the policy as a *window*: a dict of arrays with a leading history axis,
``{"state": (obs_horizon, S) float32, ...}``, oldest first, built by :class:`ObservationWindow`
from the env's per-step observations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from robofail.errors import InvalidInputError


@runtime_checkable
class ChunkPolicy(Protocol):
    """A policy that samples action chunks. Attributes:

    - ``horizon`` (H): actions per sampled chunk.
    - ``exec_horizon``: actions of a chunk executed before the next inference (<= H).
    - ``obs_horizon``: observations per window (1 = the current one only).
    - ``action_names``: names of the A action dims.
    - ``position_dims``: indices of the action dims that are end-effector positions (for ACE).
    - ``fingerprint``: a string identifying the policy's config and weights ("" if unknown).
    """

    horizon: int
    exec_horizon: int
    obs_horizon: int
    action_names: Sequence[str]
    position_dims: Sequence[int]
    fingerprint: str

    def embed(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The policy's embedding of an observation window, (D,) float32."""
        ...

    def sample_chunks(self, obs: Mapping[str, np.ndarray], n: int, seed: int) -> np.ndarray:
        """``n`` action chunks for one observation window, drawn in one batched call with the
        given seed, (n, H, A) float32."""
        ...


def next_seed(sequence: np.random.SeedSequence) -> int:
    """A fresh sampling seed spawned from ``sequence``: one per policy inference, so an episode's
    draws depend only on the sequence's entropy and the inference's position."""
    return int(sequence.spawn(1)[0].generate_state(1)[0])


class ObservationWindow:
    """The last ``length`` observations of an episode, padded with the first at the start.

    ``push(obs)`` adds a step's observation dict; ``window()`` returns
    ``{key: (length, ...) array}``, oldest first.
    """

    def __init__(self, length: int) -> None:
        if length < 1:
            raise InvalidInputError(f"observation window length must be >= 1, got {length}")
        self.length = length
        self._items: deque[Mapping[str, np.ndarray]] = deque(maxlen=length)

    def reset(self, obs: Mapping[str, np.ndarray]) -> None:
        """Start a new episode whose first observation is ``obs``."""
        self._items.clear()
        for _ in range(self.length):
            self._items.append(obs)

    def push(self, obs: Mapping[str, np.ndarray]) -> None:
        """Append the newest observation."""
        if not self._items:
            self.reset(obs)
        else:
            self._items.append(obs)

    def window(self) -> dict[str, np.ndarray]:
        """``{key: (length, ...)}`` arrays, oldest first."""
        if not self._items:
            raise InvalidInputError("observation window is empty: call reset(obs) first")
        return {key: np.stack([item[key] for item in self._items]) for key in self._items[-1]}
