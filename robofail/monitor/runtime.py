"""The streaming failure monitor that runs next to the robot's controller.

Imports numpy and onnxruntime only. Per policy inference, ``update(embedding, chunks)`` scores the
inference with every score the chosen method watches, sums each over its window and compares it
with the calibrated thresholds::

    monitor = Monitor.load("calib/pick_place", policy_fingerprint=policy.fingerprint)
    monitor.reset()                                  # at the start of every episode
    verdict = monitor.update(embedding, chunks)      # (D,), (B, H, A) per inference
    if verdict.alarm: ...                            # switch to recovery, abort, ask for help

Input it cannot score (wrong shape or dtype, NaN/inf, no ``reset``) raises
:class:`~robofail.errors.InvalidInputError`; the monitor never answers "no alarm" to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robofail.errors import CorruptFileError, InvalidInputError
from robofail.monitor.artifact import check_fingerprint, load_calibration, method_rule
from robofail.monitor.rules import MethodRule, WindowSum
from robofail.monitor.scores import OnnxScore, Score, build_score


@dataclass(frozen=True)
class Verdict:
    """The monitor's answer for one inference.

    Attributes:
        step: inference index within the episode (0 = first inference after ``reset``).
        alarm: the method's rule fired at this inference.
        fired: names of the scores above their threshold.
        scores: raw per-inference score per name.
        windowed: windowed sum S per name.
        ratios: S / threshold per name (> 1: above threshold).
        method: the method whose rule decided.
    """

    step: int
    alarm: bool
    fired: tuple[str, ...]
    scores: dict[str, float]
    windowed: dict[str, float]
    ratios: dict[str, float]
    method: str

    def as_dict(self) -> dict:
        """JSON-friendly copy (``info["robofail"]``, logs)."""
        return {
            "step": self.step,
            "alarm": self.alarm,
            "fired": list(self.fired),
            "scores": dict(self.scores),
            "windowed": dict(self.windowed),
            "ratios": dict(self.ratios),
            "method": self.method,
        }


class Monitor:
    """A calibrated monitor for one policy; load it with :meth:`Monitor.load`."""

    def __init__(self, calibration: dict, rule: MethodRule, scores: dict[str, Score], source: str):
        self.calibration = calibration
        self.rule = rule
        self.source = source
        self._scores = [scores[name] for name in rule.scores]
        self._windows = [WindowSum(w) for w in rule.windows]
        self._thresholds = [band.tolist() for band in rule.thresholds]
        self._any = rule.combine == "any"
        self.embedding_dim = int(calibration["embedding_dim"])
        self.horizon = int(calibration["horizon"])
        self.action_dim = int(calibration["action_dim"])
        self._embedding_shape = (self.embedding_dim,)
        self._chunk_tail = (self.horizon, self.action_dim)
        self._step: int | None = None

    @classmethod
    def load(
        cls, folder: str | Path, *, method: str | None = None, policy_fingerprint: str = ""
    ) -> Monitor:
        """Load the calibration artifact in ``folder``.

        Args:
            folder: directory written by ``robofail calibrate``.
            method: which calibrated method decides (default: the artifact's default, robofail).
            policy_fingerprint: the running policy's fingerprint; an artifact calibrated for
                another policy is refused.

        Raises:
            CorruptFileError, IncompatibleArtifactError, UnknownNameError.
        """
        folder = Path(folder)
        calibration = load_calibration(folder)
        check_fingerprint(calibration, policy_fingerprint, str(folder))
        rule = method_rule(calibration, method or calibration["default_method"], str(folder))
        scores = {name: build_score(calibration["scores"][name], folder) for name in rule.scores}
        for score in scores.values():
            if isinstance(score, OnnxScore) and score.dim != calibration["embedding_dim"]:
                raise CorruptFileError(
                    f"{score.path} takes embeddings of {score.dim} values, the artifact's "
                    f"embedding_dim is {calibration['embedding_dim']}; recalibrate"
                )
        return cls(calibration, rule, scores, str(folder))

    @property
    def method(self) -> str:
        return self.rule.name

    @property
    def alpha(self) -> float:
        return float(self.calibration["alpha"])

    def reset(self) -> None:
        """Start a new episode."""
        for score in self._scores:
            score.reset()
        for window in self._windows:
            window.reset()
        self._step = 0

    def update(self, embedding: np.ndarray, chunks: np.ndarray) -> Verdict:
        """Score one policy inference.

        Args:
            embedding: (D,) the policy's embedding of the observation, floating point.
            chunks: (B, H, A) the B >= 2 chunks sampled for it, floating point.

        Raises:
            InvalidInputError: before ``reset``, or wrong shape, dtype, non-finite values, or
                values so far out of range that a score overflows or leaves ACE's grid; the
                episode's windows are left as they were.
        """
        if self._step is None:
            raise InvalidInputError("Monitor.update before reset(): call monitor.reset() first")
        if not (
            type(embedding) is np.ndarray
            and embedding.shape == self._embedding_shape
            and embedding.dtype.kind == "f"
        ):
            self._refuse(embedding, "embedding", self._embedding_shape)
        if not (
            type(chunks) is np.ndarray
            and chunks.ndim == 3
            and chunks.shape[1:] == self._chunk_tail
            and chunks.dtype.kind == "f"
        ):
            self._refuse(chunks, "chunks", (None, *self._chunk_tail))
        if chunks.shape[0] < 2:
            raise InvalidInputError(
                f"chunks: need B >= 2 sampled chunks per inference, got {chunks.shape[0]}"
            )
        if not (np.isfinite(embedding).all() and np.isfinite(chunks).all()):
            bad = "embedding" if not np.isfinite(embedding).all() else "chunks"
            raise InvalidInputError(f"{bad}: contains NaN or inf; the monitor cannot score it")
        step = self._step
        names = self.rule.scores
        values = [score.update(embedding, chunks) for score in self._scores]
        for name, value in zip(names, values, strict=True):
            if not -math.inf < value < math.inf:
                raise InvalidInputError(
                    f"the {name} score of this input is {value} (values far outside the "
                    "calibration range overflow); the monitor cannot score it"
                )
        raw, windowed, ratios, fired = {}, {}, {}, []
        parts = zip(names, values, self._windows, self._thresholds, strict=True)
        for name, value, window, band in parts:
            total = window.push(value)
            threshold = band[step] if step < len(band) else band[-1]
            raw[name] = value
            windowed[name] = total
            ratios[name] = total / threshold
            if total > threshold:
                fired.append(name)
        alarm = bool(fired) if self._any else len(fired) == len(names)
        self._step = step + 1
        return Verdict(step, alarm, tuple(fired), raw, windowed, ratios, self.rule.name)

    @staticmethod
    def _refuse(array: object, name: str, shape: tuple) -> None:
        """Raise the error that says what is wrong with an input that failed the fast check."""
        if not isinstance(array, np.ndarray):
            raise InvalidInputError(f"{name}: expected a numpy array, got {type(array).__name__}")
        if array.dtype.kind != "f":
            raise InvalidInputError(
                f"{name}: expected a floating-point array (float32), got dtype {array.dtype}"
            )
        wanted = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
        raise InvalidInputError(f"{name}: expected shape {wanted}, got {array.shape}")
