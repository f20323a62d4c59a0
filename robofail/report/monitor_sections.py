"""The report's monitor sections: the methods tables, score traces, ROC curves and detection /
lead-time histograms.

The tables are ``metrics.json`` as ``robofail evaluate --json`` wrote it. The figures re-score the
run's test episodes with its calibration artifact through :func:`robofail.monitor.evaluate.evaluate`
(the code behind ``robofail evaluate``) and draw them with :mod:`robofail.monitor.plots`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from robofail.errors import RobofailError
from robofail.monitor.evaluate import TABLE_COLUMNS, Evaluation
from robofail.report import html
from robofail.report.html import Section
from robofail.report.run_folder import RunFolder

TEST_INPUTS = ("calib", "test_rollouts.h5", "test_failures")
COMPARED = ("fiper_and", "fiper_or")
"""Methods whose detection and lead times are drawn next to the default method's."""


@dataclass(frozen=True)
class TestScores:
    """The test episodes re-scored (``evaluation``, None when impossible) and a note (HTML) on
    missing or unusable inputs."""

    evaluation: Evaluation | None
    note: str


def score_test_episodes(run: RunFolder) -> TestScores:
    """Evaluate the run's artifact on its test rollouts and test failures (``:failure``), as
    ``robofail evaluate`` does; partial when one of the two test sets is missing."""
    from robofail.monitor.episodes import load_episodes
    from robofail.monitor.evaluate import evaluate

    absent = run.missing(*TEST_INPUTS)
    calib = run.find("calib")
    sources = [str(run.path / "test_rollouts.h5")] if run.find("test_rollouts.h5") else []
    if run.find("test_failures"):
        sources.append(f"{run.path / 'test_failures'}:failure")
    if calib is None or not sources:
        return TestScores(None, html.missing(absent))
    try:
        episodes, extra = load_episodes(sources)
        fingerprint = str(extra.get("policy_fingerprint", ""))
        evaluation = evaluate(calib, episodes, policy_fingerprint=fingerprint)
    except RobofailError as exc:
        return TestScores(None, html.error(f"could not score the test episodes: {exc}"))
    return TestScores(evaluation, html.missing(absent, partial=True))


def default_method(evaluation: Evaluation) -> str:
    """The method the figures follow: robofail's rule when calibrated, else the first one."""
    return "robofail" if "robofail" in evaluation.rules else next(iter(evaluation.rules))


# --------------------------------------------------------------------------- tables
def methods_section(run: RunFolder) -> Section:
    """Every method's metrics, once with all alarms and once length-capped, and TPR by family."""
    title = "Methods"
    path = run.find("metrics.json")
    if path is None:
        return Section("methods", title, html.missing(run.missing("metrics.json")))
    try:
        result = json.loads(path.read_text())
        alpha = float(result["alpha"])
        methods = dict(result["methods"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return Section("methods", title, html.error(f"{path} is not evaluate's JSON ({exc})"))
    bounds, delta = _false_alarm_bounds(run, alpha, methods)
    guarantee = (
        f" with probability at least {1 - delta:g} over the draw of the calibration rollouts"
        if delta
        else " on average over calibration draws"
    )
    body = [
        f"<p>alpha = <b>{alpha:g}</b>. The FA bound is each method's guaranteed false-alarm rate "
        f"on successful episodes{guarantee}; FA rate is the measured rate on the unperturbed "
        "test successes (red where above the bound). Positives are failures; DT is the "
        "detection time as a fraction of the episode, lead the median control steps from "
        "alarm to failure.</p>",
        _metrics_table(methods, bounds),
    ]
    if "methods_length_capped" in result:
        cap = result.get("length_cap_steps", "?")
        body.append(
            f'<h3>Alarms counted only before step {html.esc(cap)}</h3><p class="note">The '
            "95th percentile of the calibration successes' lengths: failures that run to the "
            "time limit get no extra chances to alarm.</p>"
        )
        body.append(_metrics_table(dict(result["methods_length_capped"]), bounds))
    if result.get("by_family"):
        body.append("<h3>True-positive rate by perturbation family</h3>")
        body.append(_family_table(result["by_family"]))
    return Section("methods", title, "\n".join(body))


def _false_alarm_bounds(
    run: RunFolder, alpha: float, methods: dict
) -> tuple[dict[str, float], float | None]:
    """Per method alpha times the share of it the method spends (``alpha_level`` in the
    artifact's selection record), and the artifact's delta; alpha alone without an artifact."""
    from robofail.monitor.artifact import load_calibration

    bounds = {name: alpha for name in methods}
    calib = run.find("calib")
    if calib is None:
        return bounds, None
    try:
        calibration = load_calibration(calib)
    except RobofailError:
        return bounds, None
    selection = calibration.get("selection", {})
    for name in methods:
        bounds[name] = alpha * float(selection.get(name, {}).get("alpha_level", 1.0))
    return bounds, calibration.get("delta")


def _metrics_table(methods: dict, bounds: dict[str, float]) -> str:
    heads = ["method"]
    for key, head in TABLE_COLUMNS:
        heads.append(head)
        if key == "false_alarm_rate":
            heads.append("FA bound")
    rows = []
    for name, metrics in methods.items():
        row = [html.esc(name)]
        for key, _ in TABLE_COLUMNS:
            value = metrics.get(key)
            if key == "false_alarm_rate":
                bound = bounds.get(name)
                over = value is not None and bound is not None and value > bound
                row += [(html.number(value), "warn") if over else html.number(value)]
                row.append(html.number(bound))
            else:
                row.append(html.number(value, 1 if key == "lead_time_steps" else 3))
        rows.append(row)
    return html.table(heads, rows)


def _family_table(by_family: dict) -> str:
    methods = list(by_family)
    families = sorted({family for groups in by_family.values() for family in groups})
    rows = []
    for family in families:
        first = next(g[family] for g in by_family.values() if family in g)
        cells = [html.percent(by_family[m].get(family, {}).get("tpr")) for m in methods]
        rows.append([html.esc(family), str(first.get("n_failure", "-")), *cells])
    return html.table(["family", "failures", *methods], rows)


# --------------------------------------------------------------------------- figures
def traces_section(run: RunFolder, scores: TestScores) -> Section:
    """The default method's windowed scores over their thresholds on a few test successes and
    failures, with the episodes listed and the command that renders each as a video."""
    from robofail.monitor.plots import plot_traces, sample_episodes

    title = "Score traces"
    evaluation = scores.evaluation
    if evaluation is None:
        return Section("traces", title, scores.note)
    method = default_method(evaluation)
    indices = sample_episodes(evaluation)
    figure = html.plotted(
        lambda path: plot_traces(evaluation, method, path, indices), f"{method} score traces"
    )
    rows = []
    for panel, index in enumerate(indices, start=1):
        episode = evaluation.split.episodes[index]
        source, _, demo = episode.name.rpartition("#")
        selector = f"{source}:{demo}"
        outcome = "success" if episode.success else f"failure: {episode.failure_type}"
        command = (
            f"robofail render {selector} --monitor {run.path / 'calib'} --method {method} "
            f"--out {Path(source).stem}_{demo}.mp4"
        )
        rows.append(
            [str(panel), html.code(selector), html.esc(outcome), html.esc(episode.family),
             str(episode.length), html.code(command)]
        )  # fmt: skip
    listing = html.table(["panel", "episode", "outcome", "family", "steps", "video"], rows)
    intro = (
        f"<p>Method <b>{html.esc(method)}</b>: each score's windowed value divided by its "
        "threshold (1 = threshold; band thresholds included), the first alarm (red) and the "
        "failure step (grey), on test episodes re-scored with the calibration artifact.</p>"
    )
    return Section("traces", title, scores.note + intro + figure + listing)


def roc_section(scores: TestScores) -> Section:
    """ROC curves of every method's episode maximum, with the calibrated operating points."""
    from robofail.monitor.plots import plot_roc

    evaluation = scores.evaluation
    if evaluation is None:
        return Section("roc", "ROC curves", scores.note)
    figure = html.plotted(lambda path: plot_roc(evaluation, path), "ROC curves")
    return Section("roc", "ROC curves", scores.note + figure)


def timing_section(scores: TestScores) -> Section:
    """Detection-time and lead-time histograms of the default method and FIPER's rules."""
    from robofail.monitor.plots import plot_detection_histograms

    title = "Detection and lead times"
    evaluation = scores.evaluation
    if evaluation is None:
        return Section("detection", title, scores.note)
    first = default_method(evaluation)
    methods = [first, *(m for m in COMPARED if m in evaluation.rules and m != first)]
    figure = html.plotted(
        lambda path: plot_detection_histograms(evaluation, path, methods), "detection histograms"
    )
    return Section("detection", title, scores.note + figure)
