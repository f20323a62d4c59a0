"""Alarm rules: windowed scores compared with (possibly time-varying) thresholds.

A method watches one or more scores. Per inference t of an episode, each score s_j is summed over
its window of the last w_j inferences (partial windows at the start), S_j(t), and compared with its
threshold tau_j(t): a constant, or a band indexed by the inference number (held at its last value
past the longest calibration episode). ``combine="any"`` alarms when some S_j(t) > tau_j(t) (a
single score, OR, and robofail's jointly calibrated rule); ``combine="all"`` alarms when every one
does (FIPER's AND). The normalised ratio S_j/tau_j is what the verdicts report.

The same functions serve the streaming monitor and offline evaluation, so both alarm alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robofail.errors import CorruptFileError

COMBINATIONS = ("any", "all")
THRESHOLD_FLOOR = 1e-9
"""Thresholds are kept above this so normalised ratios stay finite."""
NEVER = float(np.finfo(np.float64).max)
"""The threshold of a score a rule watches with weight 0: it can never be exceeded."""


@dataclass(frozen=True)
class MethodRule:
    """One calibrated detection method.

    Attributes:
        name: method name, e.g. ``"robofail"``.
        scores: names of the scores it watches (keys of the artifact's ``scores``).
        windows: window length w_j (inferences) per score.
        combine: ``"any"`` or ``"all"``.
        thresholds: per score, (L_j,) thresholds by inference index (L_j = 1: constant).
        style: ``"constant"`` or ``"band"`` (informational; the thresholds say it all).
    """

    name: str
    scores: tuple[str, ...]
    windows: tuple[int, ...]
    combine: str
    thresholds: tuple[np.ndarray, ...]
    style: str = "constant"

    def threshold_matrix(self, k: int) -> np.ndarray:
        """Thresholds (K, m) for inferences 0..K-1 of an episode."""
        columns = []
        for band in self.thresholds:
            index = np.minimum(np.arange(k), len(band) - 1)
            columns.append(band[index])
        return np.stack(columns, axis=1) if k else np.zeros((0, len(self.scores)))

    def to_json(self) -> dict[str, Any]:
        return {
            "scores": list(self.scores),
            "windows": list(self.windows),
            "combine": self.combine,
            "style": self.style,
            "thresholds": [band.tolist() for band in self.thresholds],
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any], source: str) -> MethodRule:
        try:
            scores = tuple(str(s) for s in data["scores"])
            windows = tuple(int(w) for w in data["windows"])
            combine = str(data["combine"])
            thresholds = tuple(np.asarray(t, dtype=np.float64).ravel() for t in data["thresholds"])
            style = str(data.get("style", "constant"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{source}: method {name!r} is malformed ({exc})") from None
        m = len(scores)
        if (
            m == 0
            or len(windows) != m
            or len(thresholds) != m
            or combine not in COMBINATIONS
            or any(w < 1 for w in windows)
            or any(len(t) == 0 or not np.all(np.isfinite(t)) for t in thresholds)
        ):
            raise CorruptFileError(f"{source}: method {name!r} has inconsistent fields")
        return cls(name, scores, windows, combine, thresholds, style)


def windowed_sum(raw: np.ndarray, window: int) -> np.ndarray:
    """S(t) = s(t-w+1) + ... + s(t) over (K,) scores, partial windows at the start; summed oldest
    first, the order :class:`WindowSum` uses, so streaming and offline agree bit for bit."""
    k = len(raw)
    total = np.zeros(k)
    for lag in range(window - 1, -1, -1):
        if lag < k:
            total[lag:] += raw[: k - lag]
    return total


class WindowSum:
    """Streaming :func:`windowed_sum`."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._values: list[float] = []

    def reset(self) -> None:
        self._values.clear()

    def push(self, value: float) -> float:
        values = self._values
        values.append(value)
        if len(values) > self.window:
            del values[0]
        total = 0.0
        for v in values:
            total += v
        return total


@dataclass(frozen=True)
class Trace:
    """A method's view of one episode (K inferences, m scores)."""

    windowed: np.ndarray  # (K, m)
    thresholds: np.ndarray  # (K, m)
    alarms: np.ndarray  # (K,) bool

    @property
    def ratios(self) -> np.ndarray:
        """S_j / tau_j, (K, m)."""
        return self.windowed / self.thresholds

    def combined(self, combine: str) -> np.ndarray:
        """(K,) combined ratio: alarm iff > 1 (max over scores for ``any``, min for ``all``)."""
        ratios = self.ratios
        return ratios.max(axis=1) if combine == "any" else ratios.min(axis=1)

    @property
    def first_alarm(self) -> int:
        """Index of the first alarming inference, -1 if none."""
        hits = np.flatnonzero(self.alarms)
        return int(hits[0]) if len(hits) else -1


def trace(rule: MethodRule, raw: dict[str, np.ndarray]) -> Trace:
    """Apply ``rule`` to an episode's raw scores ``{score name: (K,)}``."""
    pairs = zip(rule.scores, rule.windows, strict=True)
    windowed = np.stack([windowed_sum(raw[name], w) for name, w in pairs], axis=1)
    thresholds = rule.threshold_matrix(len(windowed))
    above = windowed > thresholds
    alarms = above.any(axis=1) if rule.combine == "any" else above.all(axis=1)
    return Trace(windowed, thresholds, alarms)
