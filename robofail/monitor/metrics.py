"""Episode-level detection metrics (positive = failure; an episode is flagged if any alarm).

For a set of episodes and one method:

- TPR: flagged failures / failures; TNR: unflagged successes / successes;
  balanced accuracy: (TPR + TNR) / 2.
- detection time DT of a flagged episode: first-alarm inference index / (K - 1), K its number of
  inferences (0 for K = 1); ``detection_time`` is the mean over flagged failures.
- TWA (time-weighted accuracy): (sum over flagged failures of (1 - DT) / failures + TNR) / 2, so an
  undetected failure counts 0 and a late detection little.
- lead time: failure step - control step of the first alarm, median over flagged failures.
- false-alarm rate: flagged fraction of the *unperturbed* successful episodes, the population the
  conformal bound alpha is about.
- ROC-AUC of the episode maximum of the method's combined ratio (alarm iff ratio > 1).

``cap_steps`` counts alarms only at inferences made before that control step (the calibration
successes' 95th-percentile length), so no method wins because failures run longer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Outcome:
    """One episode under one method."""

    success: bool
    nominal: bool
    first_alarm: int  # inference index, -1 if never
    alarm_step: int  # control step of the first alarm, -1 if never
    inferences: int
    failure_step: int
    max_ratio: float
    family: str = "nominal"

    @property
    def flagged(self) -> bool:
        return self.first_alarm >= 0

    @property
    def detection_time(self) -> float | None:
        """DT: first-alarm inference index / (K - 1) (0 for K = 1); None if never flagged."""
        if not self.flagged:
            return None
        return self.first_alarm / (self.inferences - 1) if self.inferences > 1 else 0.0

    @property
    def lead_time(self) -> int | None:
        """Control steps from the first alarm to the failure step; None without both."""
        if not self.flagged or self.failure_step < 0:
            return None
        return self.failure_step - self.alarm_step


def inferences_before(inference_steps: np.ndarray, cap_steps: int) -> int:
    """How many of an episode's inferences (control steps (K,)) come before step ``cap_steps``:
    the ones whose alarms the length-capped metrics count."""
    return int(np.sum(inference_steps < cap_steps))


def outcome(
    alarms: np.ndarray,
    combined: np.ndarray,
    inference_steps: np.ndarray,
    *,
    success: bool,
    nominal: bool,
    failure_step: int,
    family: str = "nominal",
    cap_steps: int | None = None,
) -> Outcome:
    """Outcome of one episode from its per-inference alarms (K,) bool and combined ratios (K,)."""
    keep = len(alarms) if cap_steps is None else inferences_before(inference_steps, cap_steps)
    alarms, combined = alarms[:keep], combined[:keep]
    hits = np.flatnonzero(alarms)
    first = int(hits[0]) if len(hits) else -1
    return Outcome(
        success=success,
        nominal=nominal,
        first_alarm=first,
        alarm_step=int(inference_steps[first]) if first >= 0 else -1,
        inferences=len(inference_steps),
        failure_step=failure_step,
        max_ratio=float(combined.max()) if keep else 0.0,
        family=family,
    )


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count 1/2): P(positive > negative); None if a side is
    empty."""
    positives, negatives = np.asarray(positives, float), np.asarray(negatives, float)
    if not len(positives) or not len(negatives):
        return None
    values = np.concatenate([positives, negatives])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    # average ranks over ties
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def summarise(outcomes: list[Outcome]) -> dict:
    """The metrics of the module docstring; rates are None where their denominator is 0."""
    failures = [o for o in outcomes if not o.success]
    successes = [o for o in outcomes if o.success]
    nominal = [o for o in successes if o.nominal]
    detected = [o for o in failures if o.flagged]
    tpr = len(detected) / len(failures) if failures else None
    tnr = sum(not o.flagged for o in successes) / len(successes) if successes else None
    delays = [o.detection_time for o in detected]
    twa = None
    if failures and successes:
        twa = 0.5 * (sum(1.0 - d for d in delays) / len(failures) + tnr)
    leads = [o.lead_time for o in detected if o.lead_time is not None]
    return {
        "tpr": tpr,
        "tnr": tnr,
        "balanced_accuracy": None if tpr is None or tnr is None else 0.5 * (tpr + tnr),
        "twa": twa,
        "detection_time": float(np.mean(delays)) if delays else None,
        "lead_time_steps": float(np.median(leads)) if leads else None,
        "false_alarm_rate": sum(o.flagged for o in nominal) / len(nominal) if nominal else None,
        "roc_auc": roc_auc([o.max_ratio for o in failures], [o.max_ratio for o in successes]),
        "n_success": len(successes),
        "n_failure": len(failures),
        "n_nominal_success": len(nominal),
    }
