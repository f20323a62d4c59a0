"""Evaluation plots (matplotlib, PNG): score traces with thresholds and alarms, ROC curves,
detection- and lead-time histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robofail.figures import save_png
from robofail.monitor.evaluate import Evaluation
from robofail.monitor.rules import NEVER, trace


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sample_episodes(evaluation: Evaluation, n_success: int = 3, n_failure: int = 3) -> list[int]:
    """Indices of a few successes and of failures from as many families as possible."""
    episodes = evaluation.split.episodes
    successes = [i for i, e in enumerate(episodes) if e.success][:n_success]
    failures, families = [], set()
    for i, e in enumerate(episodes):
        if not e.success and e.family not in families and len(failures) < n_failure:
            failures.append(i)
            families.add(e.family)
    for i, e in enumerate(episodes):
        if not e.success and i not in failures and len(failures) < n_failure:
            failures.append(i)
    return successes + failures


def plot_traces(evaluation: Evaluation, method: str, out: Path, indices: list[int]) -> Path:
    """One panel per episode: each score's windowed value over its threshold (1 = threshold,
    band thresholds included) against the control step, the first alarm and the failure step."""
    plt = _pyplot()
    rule = evaluation.rules[method]
    columns = min(3, max(1, len(indices)))
    rows = max(1, int(np.ceil(len(indices) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis in axes.ravel()[len(indices) :]:
        axis.set_visible(False)
    for axis, index in zip(axes.ravel(), indices, strict=False):
        episode = evaluation.split.episodes[index]
        raw = {name: evaluation.split.raw[name][index] for name in rule.scores}
        t = trace(rule, raw)
        steps = episode.inference_steps
        for j, name in enumerate(rule.scores):
            if rule.thresholds[j].min() >= NEVER:
                continue  # a score the rule gives no weight: it can never fire
            axis.plot(steps, t.ratios[:, j], marker=".", label=f"{name} (w={rule.windows[j]})")
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="threshold")
        if t.first_alarm >= 0:
            axis.axvline(steps[t.first_alarm], color="red", linewidth=1.5, label="first alarm")
        if not episode.success and episode.failure_step >= 0:
            axis.axvline(episode.failure_step, color="gray", linestyle=":", label="failure")
        outcome = "success" if episode.success else f"failure ({episode.family})"
        axis.set_title(f"{outcome}, {episode.length} steps", fontsize=9)
        axis.set_xlabel("control step")
        axis.set_ylabel("score / threshold")
        axis.set_yscale("symlog", linthresh=1.0)
    axes.ravel()[0].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"{method}: windowed scores over their thresholds")
    figure.tight_layout()
    save_png(figure, out, "traces", dpi=110)
    plt.close(figure)
    return out


def plot_roc(evaluation: Evaluation, out: Path) -> Path:
    """ROC curve of every method's episode-maximum ratio, with the operating point (ratio 1)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.2, 4.6))
    for name, outcomes in evaluation.outcomes.items():
        positives = np.array([o.max_ratio for o in outcomes if not o.success])
        negatives = np.array([o.max_ratio for o in outcomes if o.success])
        if not len(positives) or not len(negatives):
            continue
        cuts = np.unique(np.concatenate([positives, negatives, [np.inf]]))[::-1]
        tpr = [(positives >= c).mean() for c in cuts] + [1.0]
        fpr = [(negatives >= c).mean() for c in cuts] + [1.0]
        auc = evaluation.result["methods"][name]["roc_auc"]
        (line,) = axis.plot(fpr, tpr, label=f"{name} (AUC {auc:.2f})", linewidth=1.2)
        axis.plot((negatives > 1).mean(), (positives > 1).mean(), "o", color=line.get_color(), ms=4)
    axis.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1)
    axis.set_xlabel("false-positive rate (successes flagged)")
    axis.set_ylabel("true-positive rate (failures flagged)")
    axis.set_title("ROC of the episode maximum (dots: calibrated threshold)")
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    save_png(figure, out, "roc", dpi=110)
    plt.close(figure)
    return out


def plot_detection_histograms(evaluation: Evaluation, out: Path, methods: list[str]) -> Path:
    """Histograms over the detected failures of each of ``methods``: detection time DT (0 = at
    the first inference, 1 = at the last) and lead time (control steps from the first alarm to the
    failure step; negative: the alarm came after the failure)."""
    plt = _pyplot()
    figure, (dt_axis, lead_axis) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    leads = {
        name: [o.lead_time for o in evaluation.outcomes[name] if o.lead_time is not None]
        for name in methods
    }
    every_lead = [lead for values in leads.values() for lead in values]
    lead_bins = np.histogram_bin_edges(every_lead or [0], bins=15)
    for name in methods:
        failures = [o for o in evaluation.outcomes[name] if not o.success]
        times = [o.detection_time for o in failures if o.flagged]
        label = f"{name} ({len(times)}/{len(failures)} detected)"
        dt_axis.hist(times, bins=np.linspace(0, 1, 11), histtype="step", linewidth=1.5, label=label)
        lead_axis.hist(leads[name], bins=lead_bins, histtype="step", linewidth=1.5, label=name)
    lead_axis.axvline(0, color="gray", linestyle=":", linewidth=1)
    dt_axis.set_xlabel("detection time DT (fraction of the episode's inferences)")
    lead_axis.set_xlabel("lead time (control steps before the failure step)")
    for axis in (dt_axis, lead_axis):
        axis.set_ylabel("failures")
        axis.legend(fontsize=7)
    figure.suptitle("when the monitor flags the failures it detects")
    figure.tight_layout()
    save_png(figure, out, "detection_histograms", dpi=110)
    plt.close(figure)
    return out
