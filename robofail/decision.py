"""Abort and retry, or run to the end? The expected makespan of a trial-and-error task.

A robot repeats attempts at a task until one succeeds. Each attempt succeeds with probability p.
A failure predictor watches every attempt; its confusion matrix gives the true-positive rate TPR
(failing attempts it flags) and the false-positive rate FPR (successful attempts it flags).
Durations are means, in any one time unit:

- ``success``: a successful attempt run to its end;
- ``failure``: a failing attempt run to its end (often the time limit);
- ``abort_failure`` / ``abort_success``: from the start of an attempt to the alarm that aborts it,
  on failing / successful attempts;
- ``reset``: putting the scene back after any attempt that did not succeed.

**Run to the end**: attempts are independent, so the number of failures before the first success
is geometric with mean (1 - p) / p, and

    E[makespan] = T_success + (1 - p) / p * (T_failure + T_reset).

**Abort on an alarm**: an attempt ends the task only if it succeeds *and* is not flagged, with
probability q = p (1 - FPR). Every other attempt costs (mean over the three ways it can go):
a false alarm p FPR (T_abort_success + T_reset), a caught failure (1 - p) TPR (T_abort_failure +
T_reset), a missed failure (1 - p)(1 - TPR)(T_failure + T_reset); so

    E[makespan] = T_success + [p FPR (T_as + T_r) + (1 - p) TPR (T_af + T_r)
                               + (1 - p)(1 - TPR)(T_f + T_r)] / q.

(The mean duration of the successful final attempt is T_success either way: an unflagged success
runs to its end.) Aborting pays off when the time saved on caught failures outweighs the
successes thrown away by false alarms. Numpy-free, runs on the robot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robofail.errors import InvalidInputError


@dataclass(frozen=True)
class AttemptModel:
    """Success probability, predictor rates and mean durations of one attempt (see module)."""

    p_success: float
    tpr: float
    fpr: float
    success: float
    failure: float
    abort_failure: float
    abort_success: float
    reset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tpr", "fpr"):
            value = getattr(self, name)
            if not _finite(value) or not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be a probability in [0, 1], got {value!r}")
        if not _finite(self.p_success) or not 0.0 < self.p_success <= 1.0:
            raise InvalidInputError(
                f"p_success must be in (0, 1] (a task that never succeeds has no makespan), "
                f"got {self.p_success!r}"
            )
        for name in ("success", "failure", "abort_failure", "abort_success", "reset"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise InvalidInputError(
                    f"duration {name} must be a finite number >= 0, got {value!r}"
                )

    def makespan_continue(self) -> float:
        """Expected time to the first success when every attempt runs to its end."""
        p = self.p_success
        return self.success + (1.0 - p) / p * (self.failure + self.reset)

    def makespan_abort(self) -> float:
        """Expected time to the first success when attempts are aborted at an alarm (inf when
        every success would be flagged)."""
        p, tpr, fpr = self.p_success, self.tpr, self.fpr
        q = p * (1.0 - fpr)
        if q <= 0.0:
            return math.inf
        wasted = (
            p * fpr * (self.abort_success + self.reset)
            + (1.0 - p) * tpr * (self.abort_failure + self.reset)
            + (1.0 - p) * (1.0 - tpr) * (self.failure + self.reset)
        )
        return self.success + wasted / q


@dataclass(frozen=True)
class Decision:
    """Which policy is faster, and by how much (same time unit as the model)."""

    abort_on_alarm: bool
    makespan_continue: float
    makespan_abort: float

    @property
    def saving(self) -> float:
        """Expected time saved per completed task by the faster policy over the other."""
        return abs(self.makespan_continue - self.makespan_abort)

    @property
    def saving_fraction(self) -> float:
        """``saving`` as a fraction of the slower policy's makespan."""
        slower = max(self.makespan_continue, self.makespan_abort)
        return self.saving / slower if math.isfinite(slower) and slower > 0 else 1.0

    def explain(self) -> str:
        """One sentence for a log or a report."""
        faster = "abort and retry on an alarm" if self.abort_on_alarm else "run every attempt out"
        return (
            f"{faster}: expected makespan {min(self.makespan_abort, self.makespan_continue):.2f} "
            f"vs {max(self.makespan_abort, self.makespan_continue):.2f} "
            f"({self.saving_fraction:.0%} less)"
        )


def decide(model: AttemptModel) -> Decision:
    """Compare running attempts to the end with aborting them at the predictor's alarm."""
    keep_going, abort = model.makespan_continue(), model.makespan_abort()
    return Decision(abort < keep_going, keep_going, abort)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
