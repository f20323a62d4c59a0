"""Offline evaluation of a calibration artifact's methods on labelled rollouts.

Scores are recomputed from the stored embeddings and sampled chunks with the artifact's own score
models (the ONNX files the robot runs), every method's rule is applied exactly as the streaming
:class:`~robofail.monitor.Monitor` applies it, and :mod:`robofail.monitor.metrics` turns the
alarms into episode-level figures, once with all alarms and once with alarms counted only before
the calibration successes' 95th-percentile length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robofail.errors import UnknownNameError
from robofail.monitor.artifact import (
    METHOD_NAMES,
    check_fingerprint,
    load_calibration,
    method_rule,
)
from robofail.monitor.calibrate import ScoreTable, method_outcomes
from robofail.monitor.episodes import MonitoredEpisode, check_episodes
from robofail.monitor.metrics import summarise
from robofail.monitor.rules import MethodRule
from robofail.monitor.scores import build_score

METRIC_KEYS = (
    "tpr", "tnr", "balanced_accuracy", "twa", "detection_time", "lead_time_steps",
    "false_alarm_rate", "roc_auc", "n_success", "n_failure",
)  # fmt: skip


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured: the JSON result and what the plots need."""

    result: dict
    rules: dict[str, MethodRule]
    split: ScoreTable
    outcomes: dict[str, list]


def resolve_methods(requested: list[str] | None, available: dict) -> list[str]:
    """``None`` or ``["all"]``: every calibrated method in the canonical order; else the names,
    checked."""
    if not requested or requested == ["all"]:
        return [m for m in METHOD_NAMES if m in available] + [
            m for m in available if m not in METHOD_NAMES
        ]
    unknown = [m for m in requested if m not in available]
    if unknown:
        raise UnknownNameError(
            f"unknown method(s) {', '.join(unknown)}; calibrated: {', '.join(available)}"
        )
    return list(requested)


def evaluate(
    monitor_dir: str | Path,
    episodes: list[MonitoredEpisode],
    *,
    methods: list[str] | None = None,
    policy_fingerprint: str = "",
) -> Evaluation:
    """Evaluate the artifact's methods on ``episodes`` (successes and failures).

    Returns:
        :class:`Evaluation` whose ``result`` is ``{"alpha", "length_cap_steps", "methods":
        {NAME: metrics}, "methods_length_capped": {NAME: metrics}, "by_family": {NAME: {FAMILY:
        {"tpr"/"tnr", "n"}}}}`` with the metric keys of :data:`METRIC_KEYS`.

    Raises:
        CorruptFileError, IncompatibleArtifactError: the artifact cannot be used.
        InvalidInputError: no episodes, or episodes that do not fit the artifact (sizes, NaN).
        UnknownNameError: a method the artifact does not have.
    """
    folder = Path(monitor_dir)
    calibration = load_calibration(folder)
    check_fingerprint(calibration, policy_fingerprint, str(folder))
    sizes = (calibration["embedding_dim"], calibration["horizon"], calibration["action_dim"])
    check_episodes(list(episodes), sizes)
    names = resolve_methods(methods, calibration["methods"])
    rules = {name: method_rule(calibration, name, str(folder)) for name in names}
    needed = sorted({score for rule in rules.values() for score in rule.scores})
    split = ScoreTable(list(episodes))
    for score in needed:
        split.score(score, build_score(calibration["scores"][score], folder))
    cap = int(calibration["length_cap_steps"])
    result = {
        "alpha": calibration["alpha"],
        "length_cap_steps": cap,
        "methods": {},
        "methods_length_capped": {},
        "by_family": {},
    }
    outcomes = {}
    for name, rule in rules.items():
        full = method_outcomes(rule, split)
        capped = method_outcomes(rule, split, cap_steps=cap)
        outcomes[name] = full
        result["methods"][name] = _pick(summarise(full))
        result["methods_length_capped"][name] = _pick(summarise(capped))
        result["by_family"][name] = _by_family(full)
    return Evaluation(result, rules, split, outcomes)


def _pick(metrics: dict) -> dict:
    return {key: metrics[key] for key in METRIC_KEYS}


def _by_family(outcomes: list) -> dict:
    families: dict[str, dict] = {}
    for family in sorted({o.family for o in outcomes}):
        group = [o for o in outcomes if o.family == family]
        failures = [o for o in group if not o.success]
        successes = [o for o in group if o.success]
        families[family] = {
            "n_failure": len(failures),
            "tpr": sum(o.flagged for o in failures) / len(failures) if failures else None,
            "n_success": len(successes),
            "tnr": sum(not o.flagged for o in successes) / len(successes) if successes else None,
        }
    return families


TABLE_COLUMNS = (
    ("tpr", "TPR"), ("tnr", "TNR"), ("balanced_accuracy", "bal.acc"), ("twa", "TWA"),
    ("detection_time", "DT"), ("lead_time_steps", "lead"), ("false_alarm_rate", "FA rate"),
    ("roc_auc", "AUC"), ("n_success", "n_succ"), ("n_failure", "n_fail"),
)  # fmt: skip
"""(metric key, column head) of the methods table, in order."""
TABLE_LEGEND = (
    "TWA: time-weighted accuracy; DT: mean first alarm as a fraction of the episode's inferences "
    "(0 first, 1 last); lead: median control steps from the first alarm to the failure; FA rate: "
    "false alarms on unperturbed successes (compare with alpha)"
)


def format_table(result: dict, key: str = "methods") -> str:
    """The methods table as fixed-width text."""
    lines = [f"{'method':<12}" + "".join(f"{head:>9}" for _, head in TABLE_COLUMNS)]
    for name, metrics in result[key].items():
        cells = []
        for column, _ in TABLE_COLUMNS:
            value = metrics[column]
            if value is None:
                cells.append(f"{'-':>9}")
            elif isinstance(value, int):
                cells.append(f"{value:>9d}")
            else:
                cells.append(f"{value:>9.3f}")
        lines.append(f"{name:<12}" + "".join(cells))
    return "\n".join(lines)
