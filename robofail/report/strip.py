"""What the monitor said about one stored episode, and the score strip drawn beneath its video.

The scores come from the streaming :class:`~robofail.monitor.Monitor` (the code a robot runs)
fed the episode's stored embeddings and sampled chunks, one inference at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robofail.data.episode import DatasetInfo, Episode
from robofail.errors import InvalidInputError

STRIP_HEIGHT = 180
"""Pixels of the strip beneath each frame."""
CURSOR_RGB = (20, 90, 220)
_MARGINS = (58, 10, 34, 24)  # left, right, bottom, top (the legend's row), pixels


@dataclass(frozen=True)
class MonitorTrack:
    """The monitor's verdicts on one episode's K inferences.

    Attributes:
        method: the method whose rule decided.
        steps: (K,) control step of each inference.
        ratios: per score the rule weighs, (K,) windowed score / threshold (> 1: above it).
        alarms: (K,) bool, the rule fired.
        fired: per inference, the scores above their thresholds.
    """

    method: str
    steps: np.ndarray
    ratios: dict[str, np.ndarray]
    alarms: np.ndarray
    fired: tuple[tuple[str, ...], ...]

    @property
    def alarm_step(self) -> int:
        """Control step of the first alarm, -1 if none."""
        hits = np.flatnonzero(self.alarms)
        return int(self.steps[hits[0]]) if len(hits) else -1

    def status(self, step: int) -> tuple[str, bool]:
        """(text, alarmed) for the frame at control step ``step``: the latest inference's
        largest ratio and, once it came, the first alarm and the scores that fired."""
        done = int(np.searchsorted(self.steps, step, side="right"))
        if done == 0:
            return f"{self.method}: no inference yet", False
        ratio = max(float(values[done - 1]) for values in self.ratios.values())
        text = f"{self.method}: score/threshold {ratio:.2f}"
        first = self.alarm_step
        if 0 <= first <= step:
            k = int(np.flatnonzero(self.alarms)[0])
            return f"{text}  ALARM at step {first} ({', '.join(self.fired[k])})", True
        return f"{text}  no alarm", False


def score_episode(
    episode: Episode, info: DatasetInfo, monitor_dir: str | Path, method: str | None
) -> MonitorTrack:
    """Feed the episode's stored inferences to the monitor calibrated in ``monitor_dir``.

    Raises:
        InvalidInputError: the episode has no monitor inputs, or they do not fit the artifact.
        UnknownNameError: ``method`` is not one the artifact calibrated.
        CorruptFileError, IncompatibleArtifactError: the artifact cannot be used for it.
    """
    from robofail.monitor.episodes import REQUIRED_EXTRAS
    from robofail.monitor.rules import NEVER
    from robofail.monitor.runtime import Monitor

    absent = [key for key in REQUIRED_EXTRAS if key not in episode.extras]
    if absent:
        raise InvalidInputError(
            f"the episode has no {', '.join(absent)}: --monitor needs a monitored rollout "
            "(robofail rollout, robofail generate --policy); leave --monitor out for frames only"
        )
    embeddings = episode.extras["embeddings"]
    chunks = episode.extras["sampled_chunks"]
    steps = episode.extras["inference_steps"].astype(np.int64)
    if not len(embeddings) == len(chunks) == len(steps):
        raise InvalidInputError(
            f"the episode stores {len(embeddings)} embeddings, {len(chunks)} chunk sets and "
            f"{len(steps)} inference steps; they should be one per inference"
        )
    fingerprint = str(info.extra.get("policy_fingerprint", ""))
    monitor = Monitor.load(monitor_dir, method=method, policy_fingerprint=fingerprint)
    monitor.reset()
    verdicts = [monitor.update(e, c) for e, c in zip(embeddings, chunks, strict=True)]
    rule = monitor.rule
    weighed = [
        s for s, band in zip(rule.scores, rule.thresholds, strict=True) if band.min() < NEVER
    ]
    return MonitorTrack(
        method=monitor.method,
        steps=steps,
        ratios={s: np.array([v.ratios[s] for v in verdicts]) for s in weighed},
        alarms=np.array([v.alarm for v in verdicts], dtype=bool),
        fired=tuple(v.fired for v in verdicts),
    )


class ScoreStrip:
    """The strip for one episode of ``length`` control steps, ``width`` pixels wide: each weighed
    score's ratio over time, the threshold (1), the first alarm, the perturbation onset and the
    failure step; :meth:`at` adds the cursor of one frame."""

    def __init__(
        self, track: MonitorTrack, *, length: int, width: int, onset_step: int, failure_step: int
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter

        figure = Figure(figsize=(width / 100, STRIP_HEIGHT / 100), dpi=100)
        canvas = FigureCanvasAgg(figure)
        left, right, bottom, top = _MARGINS
        axis = figure.add_axes(
            (left / width, bottom / STRIP_HEIGHT, 1 - (left + right) / width,
             1 - (bottom + top) / STRIP_HEIGHT)
        )  # fmt: skip
        highest = 2.0
        for name, ratios in track.ratios.items():
            xs = np.append(track.steps, length)
            axis.step(xs, np.append(ratios, ratios[-1]), where="post", label=name, linewidth=1.4)
            highest = max(highest, float(ratios.max()) * 1.3)
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="threshold")
        if track.alarm_step >= 0:
            axis.axvline(track.alarm_step, color="red", linewidth=1.6, label="first alarm")
        if onset_step >= 0:
            axis.axvline(onset_step, color="orange", linestyle=":", linewidth=1.2, label="onset")
        if failure_step >= 0:
            axis.axvline(failure_step, color="gray", linestyle=":", linewidth=1.4, label="failure")
        axis.set_xlim(0, max(length, 1))
        axis.set_yscale("symlog", linthresh=1.0)
        axis.set_ylim(0, highest)
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_xlabel("control step", fontsize=8, labelpad=1)
        axis.set_ylabel("score / thr.", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(
            fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=6, frameon=False,
            borderaxespad=0.1, handlelength=1.6, columnspacing=1.0,
        )  # fmt: skip
        canvas.draw()
        self.image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        self._origin = axis.transData.transform((0.0, 0.0))[0]
        self._per_step = axis.transData.transform((1.0, 0.0))[0] - self._origin
        y0, y1 = axis.bbox.y0, axis.bbox.y1
        self._rows = (int(STRIP_HEIGHT - y1), int(STRIP_HEIGHT - y0))

    def at(self, step: int) -> np.ndarray:
        """(STRIP_HEIGHT, width, 3) uint8 RGB strip with the cursor at control step ``step``."""
        import cv2

        image = self.image.copy()
        x = round(self._origin + step * self._per_step)
        cv2.line(image, (x, self._rows[0]), (x, self._rows[1]), CURSOR_RGB, 2)
        return image
