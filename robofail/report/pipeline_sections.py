"""The report's pipeline sections: generated failures by type, the failure-boundary map, the
closed-loop arms and the run's stage timings.

Each reads the files the matching verb wrote (the failure datasets' labels, ``discover/``,
``closed_loop.json``, ``run.json``) and draws with the verb's own plot where it has one.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from robofail.errors import RobofailError
from robofail.figures import save_png
from robofail.report import html
from robofail.report.html import Section
from robofail.report.run_folder import RunFolder

FAILURE_SETS = (("val_failures", "validation"), ("test_failures", "test"))


# --------------------------------------------------------------------------- failures
def failures_section(run: RunFolder) -> Section:
    """Counts of the generated episodes by failure type and by perturbation family."""
    from robofail.data import open_dataset

    title = "Failures by type"
    notes = [html.missing(run.missing(*(name for name, _ in FAILURE_SETS)), partial=True)]
    labels = {}
    for name, role in FAILURE_SETS:
        path = run.find(name)
        if path is None:
            continue
        try:
            with open_dataset(path) as dataset:
                labels[role] = dataset.labels()
        except RobofailError as exc:
            notes.append(html.error(f"could not read {path}: {exc}"))
    if not labels:
        notes[0] = html.missing(run.missing(*(name for name, _ in FAILURE_SETS)))
        return Section("failures", title, "".join(notes))
    summary = []
    for role, group in labels.items():
        failed = sum(not label.success for label in group)
        summary.append(
            f"<li>{role}: {len(group)} episodes stored, {failed} failed "
            f"({html.percent(failed / len(group) if group else None)})</li>"
        )
    types = {
        role: Counter(x.failure_type for x in group if not x.success)
        for role, group in labels.items()
    }
    order = [t for t, _ in sum(types.values(), Counter()).most_common()]
    type_rows = []
    for t in order:
        counts = [types[role][t] for role in labels]
        type_rows.append([html.esc(t), *map(str, counts), str(sum(counts))])
    body = [
        *notes,
        f"<ul>{''.join(summary)}</ul>",
        html.table(["failure type", *labels, "total"], type_rows),
    ]
    if order:
        body.append(html.plotted(lambda path: _type_chart(order, types, path), "failures by type"))
    body.append("<h3>By perturbation family (failed / stored)</h3>")
    body.append(_family_table(labels))
    return Section("failures", title, "\n".join(body))


def _family_table(labels: dict) -> str:
    counts: dict[str, dict[str, list[int]]] = {}
    for role, group in labels.items():
        for label in group:
            family = str((label.perturbation or {}).get("kind", "nominal"))
            cell = counts.setdefault(family, {}).setdefault(role, [0, 0])
            cell[0] += not label.success
            cell[1] += 1
    rows = []
    for family in sorted(counts):
        cells = [
            "{} / {}".format(*counts[family][role]) if role in counts[family] else "-"
            for role in labels
        ]
        rows.append([html.esc(family), *cells])
    return html.table(["family", *labels], rows)


def _type_chart(order: list[str], types: dict[str, Counter], path: Path) -> None:
    """Horizontal bars: failed episodes per failure type, one bar per dataset."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 1.4 + 0.42 * len(order)))
    y = np.arange(len(order))
    height = 0.8 / len(types)
    for k, (role, counter) in enumerate(types.items()):
        offset = (k - (len(types) - 1) / 2) * height
        axis.barh(y + offset, [counter[t] for t in order], height, label=role)
    axis.set_yticks(y, order)
    axis.invert_yaxis()
    axis.set_xlabel("failed episodes")
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_png(figure, path, "failure_types", dpi=110)
    plt.close(figure)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- boundary
def boundary_section(run: RunFolder) -> Section:
    """``robofail discover``'s boundary plot, the key figures of its report and its model."""
    title = "Failure boundary"
    folder = run.find("discover")
    if folder is None:
        return Section("boundary", title, html.missing(run.missing("discover")))
    body = []
    absent = [
        name
        for name in ("boundary.png", "report.json", "model.json")
        if not (folder / name).exists()
    ]
    if absent:
        body.append(
            html.missing(
                [(f"discover/{name}", run.command("discover")) for name in absent], partial=True
            )
        )
    try:
        report = _json(folder / "report.json")
        model = _json(folder / "model.json")
    except ValueError as exc:
        return Section("boundary", title, "".join(body) + html.error(str(exc)))
    if report:
        body.append(_boundary_facts(report))
    if (folder / "boundary.png").exists():
        body.append(html.png((folder / "boundary.png").read_bytes(), "failure boundary"))
    if model.get("features") and model.get("coefficients"):
        rows = [
            [html.esc(f), html.number(c)]
            for f, c in zip(model["features"], model["coefficients"], strict=False)
        ]
        body.append(
            f'<h3>Risk model</h3><p class="note">{html.esc(model.get("predict", ""))}; '
            f"{html.esc(model.get('normalisation', ''))}</p>"
        )
        body.append(html.table(["feature", "coefficient"], rows))
    return Section("boundary", title, "\n".join(body))


def _boundary_facts(report: dict) -> str:
    boundary = report.get("boundary_phase", {}) or {}
    influence = report.get("influence", {}) or {}
    facts = [
        ("perturbation", report.get("kind")),
        ("searched parameters", ", ".join(report.get("params", []))),
        ("episodes", report.get("n")),
        ("failures", f"{report.get('failures')} ({html.percent(report.get('failure_rate'))})"),
        ("held-out ROC-AUC of the risk model", html.number(report.get("heldout_auc"))),
        ("in-sample ROC-AUC", html.number(report.get("in_sample_auc"))),
        ("boundary-phase failure fraction", html.percent(boundary.get("failure_fraction"))),
        ("P(fail) = 0.5 at", html.number(report.get("p50"))),
        ("influence (logit span over the box)", _influence(influence)),
        ("note", report.get("fallback_note")),
    ]
    rows = [[html.esc(k), html.esc(v)] for k, v in facts if v not in (None, "", "-")]
    return html.table(None, rows)


def _influence(influence: dict) -> str:
    return ", ".join(f"{name} {float(span):.2f}" for name, span in influence.items())


def _json(path: Path) -> dict:
    """The JSON object in ``path`` ({} if absent); ValueError naming the file if unreadable."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


# --------------------------------------------------------------------------- closed loop
def closed_loop_section(run: RunFolder) -> Section:
    """Per arm (base, abort/retry, recovery) the success rate overall and per family."""
    from robofail.recovery.closed_loop import plot_bars

    title = "Closed loop"
    if run.find("closed_loop.json") is None:
        return Section("closed-loop", title, html.missing(run.missing("closed_loop.json")))
    path = run.path / "closed_loop.json"
    try:
        result = _json(path)
        arms = result["arms"]
        families = sorted({f for arm in arms.values() for f in arm["by_family"]})
        rows = []
        for name, arm in arms.items():
            time = arm.get("mean_time_to_success")
            cells = [
                html.percent(arm["by_family"].get(f, {}).get("success_rate")) for f in families
            ]
            rows.append(
                [html.esc(name), html.percent(arm["success_rate"]),
                 "-" if time is None else f"{time:.1f} s", str(arm.get("n", "-")), *cells]
            )  # fmt: skip
        settings = {"task": run.task, "n": next(iter(arms.values())).get("n", "?")}
        drawable = {**result, "settings": settings | result.get("settings", {})}
        figure = html.plotted(lambda out: plot_bars(drawable, out), "closed-loop success rates")
    except (ValueError, KeyError, TypeError, AttributeError, StopIteration) as exc:
        return Section(
            "closed-loop", title, html.error(f"{path} is not closed-loop's JSON ({exc!r})")
        )
    body = [
        "<p>Success rate of the same perturbed episodes run three ways: the base policy alone, "
        "aborting and retrying on an alarm, and switching to the recovery policy on an alarm; "
        "time to success in simulated seconds (resets included).</p>",
        html.table(["arm", "success", "time to success", "episodes", *families], rows),
        figure,
    ]
    explanation = result.get("decision", {}).get("explanation")
    if explanation:
        body.append(f"<p><b>Abort or continue:</b> {html.esc(explanation)}</p>")
    return Section("closed-loop", title, "\n".join(body))


# --------------------------------------------------------------------------- timings
def timings_section(run: RunFolder) -> Section:
    """Seconds per pipeline stage from ``run.json``."""
    title = "Run timings"
    if run.record_problem:
        return Section("timings", title, html.error(run.record_problem))
    stages = run.record.get("stages")
    if not isinstance(stages, dict) or not stages:
        need = [("run.json with stage timings", run.quickstart_command())]
        return Section("timings", title, html.missing(need))
    seconds = {
        name: _seconds(stage.get("seconds") if isinstance(stage, dict) else None)
        for name, stage in stages.items()
    }
    longest = max(max(seconds.values()), 1e-9)
    rows = []
    for name, stage in stages.items():
        stage = stage if isinstance(stage, dict) else {}
        status = "skipped (up to date)" if stage.get("skipped") else (
            "finished" if stage.get("finished", True) else "failed"
        )  # fmt: skip
        bar = f'<span class="bar" style="width:{240 * seconds[name] / longest:.0f}px"></span>'
        rows.append([html.esc(name), f"{seconds[name]:.1f}", status, bar])
    total = _seconds(run.record.get("seconds")) or sum(seconds.values())
    body = html.table(["stage", "seconds", "status", ""], rows) + (
        f"<p>Total {float(total):.0f} s ({float(total) / 60:.1f} min). A skipped stage shows "
        "the seconds of the run that made its outputs.</p>"
    )
    return Section("timings", title, body)


def _seconds(value: object) -> float:
    """A recorded duration, or 0 where the record holds something else (a hand-edited run.json)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        seconds = float(value)
    except OverflowError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
