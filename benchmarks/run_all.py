"""Run every benchmark, then render ``benchmarks/RESULTS.md`` and README's summary from their JSON.

Each script runs as a subprocess from the repository root with its default arguments (the camera
faults table: the arguments that produced ``results/camera_faults.json``), in this order, the
rough wall-clock time on the 2-core reference machine in brackets:

===================  ===========================  ================================================
name                 script                       time
===================  ===========================  ================================================
bad_inputs           bad_inputs.py                ~2 min
sim                  bench_sim.py                 ~1 min
experts              bench_experts.py             ~2 min
policy               bench_policy.py              ~1 min
recovery             bench_recovery.py            ~1 min
monitor              bench_monitor.py             ~6 min (10^6 updates in the memory run)
generate             bench_generate.py            ~2 min
failure_table        bench_failure_table.py       ~3 min
camera_faults        bench_failure_table.py ...   ~4 min (camera images)
policy_quality       bench_policy_quality.py      ~15 min: demos + training, 3 tasks (long)
monitor_quality      bench_monitor_quality.py     ~40 min: ~30 recording its datasets (long)
closed_loop          bench_closed_loop.py         ~60 min: failures, recovery data, training (long)
closed_loop_sensing  bench_closed_loop.py ...     ~10 min: same recovery, sensing faults (long)
soak                 soak.py                      set by soak.py (long)
determinism          determinism.py               ~12 min: two quickstart runs (long)
===================  ===========================  ================================================

The long ones need datasets that the ones before them make (``runs/bench_policy_quality`` ->
``runs/bench_monitor_quality`` -> ``runs/bench_closed_loop``); ``--quick`` skips them (and the
soak run). A failing script is reported and the rest still run; the exit status is 1 if any
failed. Rendering always covers every JSON in ``benchmarks/results/``, whatever ran:

    python benchmarks/run_all.py [--only NAME ...] [--skip NAME ...] [--quick]
    python benchmarks/run_all.py --render-only
    python benchmarks/run_all.py --list

``RESULTS.md`` gets one section per JSON (tables of its headline figures, the command that
produced it, the machine it ran on); every figure comes from the JSON. README's block between
``<!-- results:start -->`` and ``<!-- results:end -->`` is replaced by a short summary (monitor
quality, closed loop, latency) linking to ``RESULTS.md``; without both markers README is left
alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

Lines = list[str]
Renderer = Callable[[dict], Lines]


# ---------------------------------------------------------------------------------------------
# Markdown helpers


def num(value: Any, spec: str = ".3g") -> str:
    """``value`` formatted with ``spec``; yes/no for booleans; "-" for None, NaN or non-numbers."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not (isinstance(value, int | float) and math.isfinite(value)):
        return "-"
    try:
        return format(value, spec)
    except ValueError:  # e.g. an integer spec for a float that a script wrote as 100.0
        return format(value, "g")


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage ("97.8 %"); "-" where it is not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{100 * value:.{digits}f} %"
    return "-"


def cell(value: Any) -> str:
    """``value`` as one table cell: pipes escaped, line breaks flattened."""
    return " ".join(str(value).split()).replace("|", "\\|")


def table(headers: list[str], rows: Iterable[list[Any]]) -> Lines:
    """A markdown table, the first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def safe(render: Renderer, data: dict) -> Lines:
    """``render(data)``, or one "could not render" line if it raises (a renderer's bug or an
    unexpected layout must not stop the other sections)."""
    try:
        return render(data)
    except Exception as error:  # reported in the document instead
        return [f"_could not render: {type(error).__name__}: {error}_"]


# ---------------------------------------------------------------------------------------------
# One renderer per JSON


def render_sim(data: dict) -> Lines:
    """Env steps/s next to the raw ``mj_step`` rate of the same physics work, per task."""
    rows = [
        [
            task,
            num(r.get("env_steps_per_s"), ".0f"),
            num(r.get("raw_control_step_equivalent_per_s"), ".0f"),
            num(r.get("env_over_raw_ratio"), ".2f"),
            num(r.get("raw_mj_step_per_s"), ".0f"),
            num(r.get("expert_episodes_per_s"), ".1f"),
        ]
        for task, r in data["tasks"].items()
    ]
    headers = ["task", "env steps/s", "raw physics (control steps/s)", "env / raw",
               "raw mj_step/s", "expert episodes/s"]  # fmt: skip
    return [
        *table(headers, rows),
        "",
        f"Median of {num(data.get('repeats'), 'd')} timed runs; env / raw = 1.0 means no env "
        f"overhead over the same `mj_step` calls. MuJoCo {data.get('mujoco', '-')}.",
    ]


def render_experts(data: dict) -> Lines:
    """Scripted-expert success rates, nominal and with executed-action noise."""
    rows = [
        [
            r.get("task", "-"),
            num(r.get("action_noise"), "g"),
            num(r.get("episodes"), "d"),
            pct(r.get("success_rate")),
            num(r.get("mean_length"), ".1f"),
            num(r.get("max_length"), "d"),
            num(r.get("episodes_per_s"), ".1f"),
        ]
        for r in data["rows"]
    ]
    headers = ["task", "action noise", "episodes", "success", "mean length", "max length"]
    return [
        *table([*headers, "episodes/s"], rows),
        "",
        f"{num(data.get('workers'), 'd')} workers.",
    ]


def render_policy(data: dict) -> Lines:
    """Sampling latency of the reference policy (n = 1 and n = 32) and of ``embed``."""
    calls = {
        "embed": "embed",
        "sample_n1": "sample_chunks, n = 1",
        "sample_n32": "sample_chunks, n = 32",
    }
    rows = [
        [calls.get(name, name), num(r.get("median_ms"), ".2f"), num(r.get("p99_ms"), ".2f")]
        for name, r in data["calls"].items()
    ]
    return [
        *table(["call", "median ms", "p99 ms"], rows),
        "",
        f"n = 32 / n = 1 median: {num(data.get('n32_over_n1'), '.2f')}; task "
        f"{data.get('task', '-')}, {num(data.get('threads'), 'd')} thread(s), "
        f"{num(data.get('inference_steps'), 'd')} Euler steps, horizon "
        f"{num(data.get('horizon'), 'd')}, torch {data.get('torch', '-')}.",
    ]


def render_recovery(data: dict) -> Lines:
    """Recovery policy latency at batch 1: onnxruntime vs torch eager."""
    cpu = data.get("cpu_time_results", {})
    rows = [
        [
            name,
            num(r.get("median_us"), ".1f"),
            num(r.get("p99_us"), ".1f"),
            num(cpu.get(name, {}).get("median_us"), ".1f"),
            num(cpu.get(name, {}).get("p99_us"), ".1f"),
        ]
        for name, r in data["results"].items()
    ]
    period = num(data.get("period_ms"), "g")
    rows += [
        [f"{name}, one call per {period} ms", num(r.get("median_us"), ".1f"),
         num(r.get("p99_us"), ".1f"), "-", "-"]
        for name, r in data.get("paced", {}).items()
    ]  # fmt: skip
    header = ["runtime", "median us", "p99 us", "CPU-time median us", "CPU-time p99 us"]
    return [
        *table(header, rows),
        "",
        f"onnxruntime / torch eager median: {num(data.get('median_ratio_onnx_over_torch'), '.2f')}"
        f"; max abs difference {num(data.get('max_abs_diff'), '.1e')}; task "
        f"{data.get('task', '-')}, {data.get('model', '-')}, {num(data.get('calls'), 'd')} calls "
        "per runtime, one thread. The paced rows call each runtime once per control period, "
        "the thread asleep in between (as a robot's control loop does): caches go cold between "
        "calls; the p99 target is on the back-to-back rows.",
    ]


def render_policy_quality(data: dict) -> Lines:
    """Held-out closed-loop success rate of the reference policy per task, and its training."""
    rows = [
        [
            task,
            num(r.get("demos"), "d"),
            num(r.get("demo_noise"), "g"),
            num(r.get("epochs"), "d"),
            num(r.get("train_seconds"), ".0f"),
            num(r.get("final_loss"), ".3f"),
            num(r.get("eval_episodes"), "d"),
            pct(r.get("success_rate")),
        ]
        for task, r in data["tasks"].items()
    ]
    headers = ["task", "demos", "demo noise", "epochs", "train s", "final loss", "eval episodes"]
    return [
        *table([*headers, "success"], rows),
        "",
        f"torch {data.get('torch', '-')}, {num(data.get('torch_threads'), 'd')} threads.",
    ]


def render_generate(data: dict) -> Lines:
    """Failure-generation throughput: 1 vs 2 pool workers, Ray vs pool, physics bound."""
    physics = data.get("physics", {})
    rows = [
        [
            "physics bound (1 core)",
            "1",
            num(physics.get("physics_bound_episodes_per_s"), ".1f"),
            num(physics.get("physics_seconds"), ".1f"),
            "-",
            "1.00",
        ]
    ]
    runs = data["runs"]
    rows += [
        [
            name,
            num(r.get("workers"), "d"),
            num(r.get("episodes_per_s"), ".1f"),
            num(r.get("seconds"), ".1f"),
            num(r.get("kept"), "d"),
            num(r.get("ratio_to_physics_bound"), ".2f"),
        ]
        for name, r in runs.items()
    ]
    lines = [
        *table(["configuration", "workers", "episodes/s", "seconds", "kept", "/ bound"], rows),
        "",
        f"- scaling 1 -> 2 workers: {num(data.get('scaling_1_to_2_workers'), '.2f')}x",
    ]
    if "ray x2" in runs and "pool x2" in runs:
        ray = runs["ray x2"].get("episodes_per_s")
        pool = runs["pool x2"].get("episodes_per_s")
        ratio = ray / pool if isinstance(ray, int | float) and pool else None
        lines.append(
            f"- Ray x2 / pool x2: {num(ratio, '.2f')} (Ray start-up "
            f"{num(data.get('ray_init_seconds'), '.1f')} s, not counted)"
        )
    lines += [
        f"- identical datasets in every configuration: {num(data.get('identical_datasets'))}",
        f"- {num(data.get('episodes'), 'd')} episodes of {Path(str(data.get('spec', '-'))).name} "
        f"({data.get('task', '-')}), best of {num(data.get('repeats'), 'd')} runs; "
        f"/ bound = episodes/s over the physics bound of as many cores as workers",
    ]
    return lines


def render_failure_table(data: dict) -> Lines:
    """Per task and spec: each perturbation kind's fail rate and onset -> failure steps."""
    lines: Lines = []
    any_idle = False
    for run in data["runs"]:
        kinds = run["kinds"]
        idle = any("idle_share" in row for row in kinds.values())
        any_idle |= idle
        headers = ["kind", "episodes", "failed", "fail rate", "median steps", "p25 steps"]
        headers += ["median inferences", "ended by predicate", *(["idle"] if idle else [])]
        rows = [
            [
                kind,
                num(row.get("episodes"), "d"),
                num(row.get("failed"), "d"),
                pct(row.get("fail_rate")),
                num(row.get("median_onset_to_failure"), "g"),
                num(row.get("p25_onset_to_failure"), "g"),
                num(row.get("median_inferences"), ".1f"),
                pct(row.get("ended_by_failure_predicate"), 0),
                *([pct(row.get("idle_share"), 0)] if idle else []),
            ]
            for kind, row in sorted(kinds.items())
        ]
        source = f", source {run['source']}" if "source" in run else ""
        lines += [
            f"### {run.get('task', '-')} / {run.get('spec', '-')}",
            "",
            f"{num(run.get('episodes'), 'd')} episodes{source}, "
            f"{num(run.get('actions_per_inference'), 'd')} actions per inference, "
            f"{num(run.get('seconds'), '.0f')} s.",
            "",
            *table(headers, rows),
            "",
        ]
    lines.append(
        "Steps: control steps from the perturbation's onset to the failure. ended by predicate: "
        "share of failures the task's failure predicate ended (the rest ran out of time)."
        + (" idle: share in which the end effector never moved." if any_idle else "")
    )
    return lines


def _latency_row(name: str, r: dict) -> list[str]:
    """One latency table row: wall-clock and CPU-time percentiles in microseconds."""
    return [
        name,
        num(r.get("median_us"), ".1f"),
        num(r.get("p90_us"), ".1f"),
        num(r.get("p99_us"), ".1f"),
        num(r.get("cpu_median_us"), ".1f"),
        num(r.get("cpu_p99_us"), ".1f"),
        pct(r.get("descheduled_fraction"), 2),
    ]


def render_monitor(data: dict) -> Lines:
    """``Monitor.update`` latency vs torch eager, its parts, and memory over many updates."""
    latency = data["latency"]
    targets = data.get("targets", {})
    headers = ["implementation", "median us", "p90 us", "p99 us", "CPU median", "CPU p99"]
    lines = [
        f"Method {data.get('method', '-')}, B = {num(data.get('samples'), 'd')}, "
        f"H = {num(data.get('horizon'), 'd')}, A = {num(data.get('action_dim'), 'd')}, "
        f"D = {num(data.get('embedding_dim'), 'd')}; artifact {data.get('artifact', '-')}; "
        f"{num(data.get('latency_updates'), 'd')} timed updates on one pinned core.",
        "",
        *table(
            [*headers, "descheduled"],
            [
                _latency_row("Monitor.update", latency.get("monitor", {})),
                _latency_row("torch eager, same scores", latency.get("torch_eager", {})),
                *(
                    _latency_row(f"{label}, {when}", row)
                    for section, when in (
                        ("after_switch", "first update after the other's episode"),
                        ("paced", f"one update per {num(data.get('period_ms'), 'g')} ms"),
                    )
                    for key, label in (
                        ("monitor", "Monitor.update"),
                        ("torch_eager", "torch eager"),
                    )
                    if (row := data.get(section, {}).get(key))
                ),
            ],
        ),
        "",
        "The two implementations run episode by episode in turn on the same core; the first "
        "update after the other one's episode runs on caches the other one filled, so those "
        f"{num(data.get('after_switch_updates'), 'd')} updates per implementation have their own "
        "rows; the first two rows and the targets are over the rest. The last two rows pace the "
        f"updates at a control rate ({num(data.get('paced_updates'), 'd')} each, the thread "
        "asleep in between, as in a robot's control loop): caches go cold between calls.",
        "",
        f"- monitor / torch median: {num(data.get('median_ratio_monitor_over_torch'), '.3f')} "
        f"(target <= {num(targets.get('median_ratio_max'), 'g')}: "
        f"{'met' if targets.get('ratio_met') else 'missed'})",
        f"- monitor p99: {num(latency.get('monitor', {}).get('p99_us'), '.1f')} us "
        f"(target <= {num(targets.get('p99_us_max'), 'g')} us: "
        f"{'met' if targets.get('p99_met') else 'missed'}); load average before/after "
        f"{data.get('load_before', '-')} / {data.get('load_after', '-')}",
    ]
    parity = data.get("parity", {})
    if parity:
        worst = max((v for v in parity.get("max_relative_difference", {}).values()), default=None)
        lines.append(
            f"- parity with torch over {num(parity.get('updates'), 'd')} updates: max relative "
            f"difference {num(worst, '.1e')}, {num(parity.get('alarm_disagreements'), 'd')} "
            "alarm disagreements"
        )
    memory = data.get("memory")
    if memory:
        rss, drift, every = (
            memory.get("rss_mb", {}),
            memory.get("drift_percent", {}),
            memory.get("all", {}),
        )
        lines += [
            "",
            f"Memory and drift: {num(memory.get('updates'), 'd')} updates in a fresh process "
            f"(torch imported: {num(memory.get('torch_imported'))}).",
            "",
            *table(
                ["figure", "value"],
                [
                    ["RSS after load (MB)", num(rss.get("after_load"), ".1f")],
                    ["RSS after the updates (MB)", num(rss.get("after_updates"), ".1f")],
                    ["growth (MB)", num(memory.get("growth_mb"), ".2f")],
                    [
                        "growth after the first tenth (MB)",
                        num(memory.get("growth_after_first_tenth_mb"), ".3f"),
                    ],
                    [
                        "median / p99 over all updates (us)",
                        f"{num(every.get('median_us'), '.1f')} / {num(every.get('p99_us'), '.1f')}",
                    ],
                    [
                        "drift last vs first tenth, median / p99",
                        f"{num(drift.get('median'), '+.1f')} % / {num(drift.get('p99'), '+.1f')} %",
                    ],
                ],
            ),
        ]
    parts = data.get("parts")
    if parts:
        rows = [
            [name, num(r.get("median_us"), ".1f"), num(r.get("p99_us"), ".1f")]
            for name, r in parts.items()
        ]
        lines += ["", "Where the time goes:", "", *table(["part", "median us", "p99 us"], rows)]
    return lines


def within(value: Any, bound: Any) -> str:
    """yes/no: ``value`` <= ``bound``; "-" unless both are numbers."""
    if all(isinstance(x, int | float) and math.isfinite(x) for x in (value, bound)):
        return num(value <= bound)
    return "-"


def render_monitor_quality(data: dict) -> Lines:
    """Mean balanced accuracy per method and alpha, then per task x alpha each method's figures."""
    lines = [
        "Mean balanced accuracy over the tasks (held-out test rollouts and failures):",
        "",
        *mean_accuracy_table(data),
    ]
    for task, entry in data["tasks"].items():
        for alpha, result in entry["alphas"].items():
            bound = result.get("false_alarm_bound")
            methods = result["methods"]
            capped = result.get("methods_length_capped", {})
            differences = result.get("ba_difference_to_robofail", {})
            first = next(iter(methods.values()), {})
            rows = [
                [
                    method,
                    num(m.get("balanced_accuracy"), ".3f"),
                    num(capped.get(method, {}).get("balanced_accuracy"), ".3f"),
                    difference_cell(differences.get(method)),
                    pct(m.get("tpr")),
                    pct(m.get("false_alarm_rate")),
                    within(m.get("false_alarm_rate"), bound),
                    num(m.get("twa"), ".3f"),
                    num(m.get("roc_auc"), ".3f"),
                    num(m.get("lead_time_steps"), "g"),
                ]
                for method, m in methods.items()
            ]
            headers = [
                "method", "balanced acc.", "length-capped", "minus robofail [95 % CI]", "TPR",
                "false alarms", "<= bound", "TWA", "ROC-AUC", "lead time (steps)",
            ]  # fmt: skip
            lines += [
                "",
                f"### {task}, alpha {alpha}",
                "",
                f"{num(first.get('n_success'), 'd')} nominal successes, "
                f"{num(first.get('n_failure'), 'd')} failures; false-alarm bound "
                f"{pct(bound)}; length-capped: alarms counted before step "
                f"{num(result.get('length_cap_steps'), 'd')}, the calibration successes' 95th "
                f"percentile length.{test_set_note(entry)}",
                "",
                *table(headers, rows),
            ]
    return lines


def difference_cell(difference: dict | None) -> str:
    """A method's balanced accuracy minus robofail's, with its paired bootstrap interval."""
    if not difference:
        return "-"
    return f"{difference['difference']:+.3f} [{difference['low']:+.3f}, {difference['high']:+.3f}]"


def test_set_note(entry: dict) -> str:
    """Which test set a task's figures come from and how many failures chose the settings."""
    test_set = entry.get("test_set")
    if not test_set:
        return ""
    return (
        f" Test set `{test_set['name']}` ({test_set['nominal']}, {test_set['failures']}); "
        f"settings chosen on {entry['n_validation_failures']} validation failures."
    )


def mean_accuracy_table(data: dict) -> Lines:
    """Method x alpha table of the balanced accuracy averaged over the tasks."""
    summary = data["mean_balanced_accuracy"]
    alphas = list(summary)
    methods = list(dict.fromkeys(m for alpha in alphas for m in summary[alpha]))
    rows = [[m, *(num(summary[a].get(m), ".3f") for a in alphas)] for m in methods]
    return table(["method", *(f"alpha {a}" for a in alphas)], rows)


RECOVERABILITY_HEADERS = ["privileged", "at alarm", "observable", "at alarm"]
RECOVERABILITY_KEYS = ["privileged", "privileged_at_alarm", "observable", "observable_at_alarm"]


def render_closed_loop(data: dict) -> Lines:
    """Per task: per arm success rate and mean time to success; per family success rates,
    recoverability (privileged and observable) and the gain of recovery over the base policy;
    the pooled gain over the recoverable families."""
    threshold = data.get("recoverable_threshold")
    judge = "observation" if data.get("judge") == "observation" else "privileged"
    at_alarm = data.get("judge_start") == "alarm"
    lines = [
        *closed_loop_arms_table(data),
        "",
        "Success: share of episodes that succeeded; time: mean simulated seconds to success "
        "(abort/retry: resets included). Gain: recovery - base, percentage points. "
        "Recoverability: share of the family's failed episodes (generated, not the evaluation "
        "episodes) the scripted expert rescued, verified in simulation, from any start (onset, "
        "halfway, first alarm) and from the monitor's first alarm (where the supervisor hands "
        "over): privileged, the expert reads the simulator's true state; observable, it plans "
        "from the state observation the controller sees, faults included. Recoverable: the "
        f"{'observable' if judge == 'observation' else 'privileged'} recoverability"
        f"{' from the first alarm' if at_alarm else ''} is at least {pct(threshold, 0)}.",
    ]
    for task, result in data["tasks"].items():
        arms = result["arms"]
        settings = result.get("settings", {})
        gains = result.get("families", {})
        families = sorted({f for arm in arms.values() for f in arm.get("by_family", {})})
        rows = []
        for family in families:
            rates = [
                pct(arm.get("by_family", {}).get(family, {}).get("success_rate"), 0)
                for arm in arms.values()
            ]
            gain = gains.get(family, {})
            count = arms.get("base", {}).get("by_family", {}).get(family, {}).get("n")
            rows.append(
                [
                    family,
                    num(count, "d"),
                    *rates,
                    *(  # one decimal: a share just under the threshold must not read as it
                        pct(gain.get(f"recoverability_{key}"), 1) for key in RECOVERABILITY_KEYS
                    ),
                    "yes" if gain.get("recoverable") else "no",
                    num(gain.get("gain_points"), "+.0f"),
                ]
            )
        headers = ["family", "n", *(name.replace("_", "/") for name in arms)]
        lines += [
            "",
            f"### {task}",
            "",
            f"{num(settings.get('n'), 'd')} episodes of {settings.get('spec', '-')}, seed "
            f"{num(settings.get('seed'), 'd')}. Recovery acts for up to "
            f"{num(settings.get('max_recovery_steps'), 'd')} steps per alarm, or until "
            f"{num(settings.get('calm_inferences'), 'd')} monitor verdicts in a row are calm.",
            "",
            *table([*headers, *RECOVERABILITY_HEADERS, "recoverable", "gain (points)"], rows),
            "",
            "Pooled gain over the recoverable families: "
            f"{num(result.get('pooled_gain_recoverable'), '+.0f')} points.",
        ]
        explanation = result.get("decision", {}).get("explanation")
        if explanation:
            lines += ["", f"Abort-or-continue decision: {explanation}"]
        chart = result.get("chart")
        if chart and (ROOT / chart).is_file():
            lines += ["", f"![{task}]({os.path.relpath(ROOT / chart, BENCH_DIR)})"]
    return lines


def closed_loop_arms_table(data: dict) -> Lines:
    """Task x arm table: success rate (mean time to success)."""
    tasks = data["tasks"]
    arms = list(dict.fromkeys(arm for result in tasks.values() for arm in result["arms"]))
    rows = []
    for task, result in tasks.items():
        cells = []
        for arm in arms:
            r = result["arms"].get(arm, {})
            cells.append(
                f"{pct(r.get('success_rate'), 0)} ({num(r.get('mean_time_to_success'), '.1f')} s)"
            )
        rows.append([task, num(result["arms"].get("base", {}).get("n"), "d"), *cells])
    headers = ["task", "episodes", *(f"{arm.replace('_', '/')}: success (time)" for arm in arms)]
    return table(headers, rows)


def render_soak(data: dict) -> Lines:
    """Memory growth and latency drift of the long monitor and supervisor loops."""
    rows = []
    for name in ("monitor", "supervisor"):
        loop = data.get(name, {})
        first, last = loop.get("first_tenth", {}), loop.get("last_tenth", {})
        drift = loop.get("drift_percent", {})
        rows.append(
            [
                name,
                num(loop.get("calls"), "d"),
                num(loop.get("growth_after_warmup_mb"), ".3f"),
                f"{num(first.get('median_us'), '.1f')} / {num(last.get('median_us'), '.1f')}",
                f"{num(first.get('p99_us'), '.1f')} / {num(last.get('p99_us'), '.1f')}",
                num(drift.get("p99"), "+.1f"),
                num(drift.get("cpu_p99"), "+.1f"),
            ]
        )
    header = ["loop", "calls", "RSS growth MB", "median us first / last 10 %",
              "p99 us first / last 10 %", "p99 drift %", "CPU-time p99 drift %"]  # fmt: skip
    targets = data.get("targets", {})
    return [
        *table(header, rows),
        "",
        f"Targets: RSS growth < {num(targets.get('memory_growth_mb_max'), 'g')} MB "
        f"({'met' if targets.get('memory_met') else 'not met'}), |p99 drift| < "
        f"{num(targets.get('p99_drift_percent_max'), 'g')} % "
        f"({'met' if targets.get('drift_met') else 'not met'}); load average before / after "
        f"{data.get('load_before')} / {data.get('load_after')}; torch imported: "
        f"{num(data.get('torch_imported'))}.",
    ]


def render_determinism(data: dict) -> Lines:
    """Two quickstart runs with one seed, compared file by file."""
    same, content = data.get("identical", 0), data.get("same_content", [])
    different = data.get("different", [])
    rows = [
        ["byte-identical", num(same, "d")],
        ["same content (bytes differ only in wall-clock seconds or HDF5 layout)", len(content)],
        ["different", len(different)],
        ["excluded (they record wall-clock times)", ", ".join(data.get("timed_excluded", []))],
    ]
    lines = table(["files", "count"], rows)
    if content:
        lines += ["", "Same content: " + ", ".join(f"`{name}`" for name in content) + "."]
    if different:
        lines += ["", "Different: " + ", ".join(f"`{d['file']}` ({d['why']})" for d in different)]
    return lines


def render_bad_inputs(data: dict) -> Lines:
    """Bad-input sweep: cases per entry point, and every case that was not refused properly."""
    outcomes = data.get("outcomes", [])
    per_entry: dict[str, list[int]] = {}
    for outcome in outcomes:
        counts = per_entry.setdefault(str(outcome.get("entry", "-")), [0, 0])
        counts[0] += 1
        counts[1] += not outcome.get("ok", False)
    rows = [[entry, str(n), str(bad)] for entry, (n, bad) in sorted(per_entry.items())]
    lines = [
        f"{num(data['cases'], 'd')} cases, {num(data['failed'], 'd')} not refused as they "
        "should be (a robofail error from the API; exit 2 with one stderr line from the CLI; "
        "existing files the case names left exactly as they were).",
        "",
        *table(["entry point", "cases", "failed"], rows),
    ]
    failed = [o for o in outcomes if not o.get("ok", False)]
    if failed:
        rows = [
            [
                o.get("entry", "-"),
                o.get("input", "-"),
                str(o.get("came_back", "-"))[:160],
                o.get("why", "-"),
            ]
            for o in failed
        ]
        lines += [
            "",
            "Failed cases:",
            "",
            *table(["entry point", "input", "came back", "why"], rows),
        ]
    return lines


GENERIC_ROWS = 200
"""Most rows the generic renderer writes."""


def flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted path, leaf) for every numeric or boolean leaf of nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    elif isinstance(value, int | float):
        yield prefix, value


def render_generic(data: dict) -> Lines:
    """Any layout: every numeric leaf as a (path, value) row."""
    leaves = list(flatten(data))
    rows = [[f"`{path}`", num(value, "g")] for path, value in leaves[:GENERIC_ROWS]]
    lines = table(["figure", "value"], rows)
    if len(leaves) > GENERIC_ROWS:
        lines += ["", f"... and {len(leaves) - GENERIC_ROWS} more numbers in the JSON."]
    return lines


# ---------------------------------------------------------------------------------------------
# The benchmarks


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script, the JSON it writes under ``results/`` and how to render it."""

    name: str
    title: str
    script: str
    json: str
    minutes: float | None
    """Rough wall-clock time on the 2-core reference machine (None: set by the script)."""
    render: Renderer
    long: bool = False
    """Needs datasets and takes tens of minutes: skipped by ``--quick``."""
    args: tuple[str, ...] = ()

    @property
    def command(self) -> str:
        """The command line, as run from the repository root."""
        return " ".join(["python", f"benchmarks/{self.script}", *self.args])


SENSING_ARGS = (
    *("--spec", "observation_faults", "--json", "benchmarks/results/closed_loop_sensing.json"),
)
CAMERA_FAULTS_ARGS = (
    *("--tasks", "pick_place", "--spec", "camera_faults", "--n-failures", "200"),
    *("--json", "benchmarks/results/camera_faults.json"),
)
"""What produced ``results/camera_faults.json`` (200 camera-fault and 100 nominal episodes)."""


def monitor_quality_set(name: str, title: str) -> Benchmark:
    """The monitor-quality bench on another of its test sets (``bench_monitor_quality.py``
    documents each), written to ``results/monitor_quality_<name>.json``."""
    json_name = f"monitor_quality_{name}.json"
    return Benchmark(
        f"monitor_quality_{name}", f"Monitor quality: {title}", "bench_monitor_quality.py",
        json_name, 1, render_monitor_quality, long=True,
        args=("--test-set", name, "--json", f"benchmarks/results/{json_name}"),
    )  # fmt: skip


BENCHMARKS = (
    Benchmark("bad_inputs", "Bad inputs", "bad_inputs.py", "bad_inputs.json", 2, render_bad_inputs),
    Benchmark("sim", "Simulation throughput", "bench_sim.py", "sim.json", 1, render_sim),
    Benchmark("experts", "Scripted experts", "bench_experts.py", "experts.json", 2, render_experts),
    Benchmark("policy", "Policy latency", "bench_policy.py", "policy.json", 1, render_policy),
    Benchmark(
        "recovery", "Recovery policy latency", "bench_recovery.py", "recovery.json", 1,
        render_recovery,
    ),
    Benchmark(
        "monitor", "Monitor latency and memory", "bench_monitor.py", "monitor.json", 6,
        render_monitor,
    ),
    Benchmark(
        "generate", "Failure generation throughput", "bench_generate.py", "generate.json", 2,
        render_generate,
    ),
    Benchmark(
        "failure_table", "Failure table", "bench_failure_table.py", "failure_table.json", 3,
        render_failure_table,
    ),
    Benchmark(
        "camera_faults", "Failure table: camera faults", "bench_failure_table.py",
        "camera_faults.json", 4, render_failure_table, args=CAMERA_FAULTS_ARGS,
    ),
    Benchmark(
        "policy_quality", "Policy quality", "bench_policy_quality.py", "policy_quality.json", 15,
        render_policy_quality, long=True,
    ),
    Benchmark(
        "monitor_quality", "Monitor quality", "bench_monitor_quality.py", "monitor_quality.json",
        40, render_monitor_quality, long=True,
    ),
    monitor_quality_set("seventh", "the seventh test set"),
    monitor_quality_set("fourth", "the fourth test set"),
    monitor_quality_set("fifth", "the fifth test set"),
    monitor_quality_set("third", "the third test set"),
    monitor_quality_set("fresh", "the development test set"),
    Benchmark(
        "closed_loop", "Closed loop", "bench_closed_loop.py", "closed_loop.json", 60,
        render_closed_loop, long=True,
    ),
    Benchmark(
        "closed_loop_sensing", "Closed loop: sensing faults", "bench_closed_loop.py",
        "closed_loop_sensing.json", 10, render_closed_loop, long=True, args=SENSING_ARGS,
    ),
    Benchmark("soak", "Soak", "soak.py", "soak.json", None, render_soak, long=True),
    Benchmark(
        "determinism", "Determinism: the quickstart twice", "determinism.py", "determinism.json",
        12, render_determinism, long=True,
    ),
)  # fmt: skip
NAMES = [bench.name for bench in BENCHMARKS]


# ---------------------------------------------------------------------------------------------
# RESULTS.md and README


def machine_note(data: Any) -> str:
    """Where the figures were measured: the JSON's ``machine`` field, else this machine."""
    machine = data.get("machine") if isinstance(data, dict) else None
    if isinstance(machine, dict) and machine:
        parts = [
            str(value) if key == "platform" else f"{key} {value}"
            for key, value in machine.items()
            if value not in ("", None)
        ]
        return "ran on " + ", ".join(parts)
    return f"machine not recorded in the JSON; rendered on {platform.platform()}"


def render_section(title: str, path: Path, command: str | None, render: Renderer) -> Lines:
    """One ``##`` section: command, machine and the renderer's tables (or why there are none)."""
    lines = [f"## {title}", ""]
    if not path.is_file():
        return [*lines, f"_No `results/{path.name}` yet: run `{command}`._", ""]
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    except (OSError, ValueError, TypeError) as error:
        return [*lines, f"_could not read `results/{path.name}`: {error}_", ""]
    recorded = data.get("command")
    command = recorded if isinstance(recorded, str) else command
    lines += [
        f"`results/{path.name}`, from `{command or 'unknown command'}`; {machine_note(data)}.",
        "",
        *safe(render, data),
        "",
    ]
    return lines


def render_results(results_dir: Path) -> str:
    """RESULTS.md: one section per benchmark, then one per other JSON found in ``results_dir``."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python benchmarks/run_all.py` from the JSON files in `benchmarks/results/`"
        " (re-render with `python benchmarks/run_all.py --render-only`); do not edit by hand.",
        "",
    ]
    known = {bench.json for bench in BENCHMARKS}
    for bench in BENCHMARKS:
        lines += render_section(bench.title, results_dir / bench.json, bench.command, bench.render)
    for path in sorted(results_dir.glob("*.json")):
        if path.name not in known:
            lines += render_section(f"Other: {path.stem}", path, None, render_generic)
    return "\n".join(lines).rstrip("\n") + "\n"


def load(results_dir: Path, name: str) -> dict | None:
    """The JSON object in ``results_dir / name``, or None if it is missing or unreadable."""
    try:
        data = json.loads((results_dir / name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def latency_table(results_dir: Path) -> Lines:
    """Median and p99 of the on-robot calls, from monitor.json, policy.json and recovery.json."""
    rows = []
    monitor = load(results_dir, "monitor.json")
    if monitor:
        long_run = monitor.get("memory", {}).get("all")
        paced, period = monitor.get("paced", {}), num(monitor.get("period_ms"), "g")
        named = [
            (long_run, "Monitor.update, 10^6 updates, torch-free process"),
            (monitor["latency"]["monitor"], "Monitor.update, interleaved with torch"),
            (monitor["latency"]["torch_eager"], "same scores, torch"),
            (paced.get("monitor"), f"Monitor.update, one per {period} ms"),
            (paced.get("torch_eager"), f"same scores, torch, one per {period} ms"),
        ]
        for r, name in named:
            if r:
                rows.append(
                    [
                        name,
                        f"{num(r.get('median_us'), '.0f')} us",
                        f"{num(r.get('p99_us'), '.0f')} us",
                    ]
                )
    policy = load(results_dir, "policy.json")
    if policy:
        for key, name in (("sample_n1", "policy, n = 1"), ("sample_n32", "policy, n = 32")):
            r = policy["calls"][key]
            rows.append(
                [name, f"{num(r.get('median_ms'), '.1f')} ms", f"{num(r.get('p99_ms'), '.1f')} ms"]
            )
    recovery = load(results_dir, "recovery.json")
    if recovery:
        period = num(recovery.get("period_ms"), "g")
        for section, key, name in (
            ("results", "onnxruntime", "recovery, onnxruntime"),
            ("results", "torch_eager", "recovery, torch"),
            ("paced", "onnxruntime", f"recovery, onnxruntime, one per {period} ms"),
        ):
            r = recovery.get(section, {}).get(key)
            if r:
                rows.append(
                    [
                        name,
                        f"{num(r.get('median_us'), '.0f')} us",
                        f"{num(r.get('p99_us'), '.0f')} us",
                    ]
                )
    if not rows:
        return ["_No latency results yet._"]
    return table(["call (one CPU thread)", "median", "p99"], rows)


def summary_part(results_dir: Path, name: str, render: Renderer) -> Lines:
    """``render`` of one JSON for the README summary, or a line saying why there is none."""
    data = load(results_dir, name)
    if data is None:
        return [f"_No `benchmarks/results/{name}` yet._"]
    return safe(render, data)


def render_summary(results_dir: Path) -> str:
    """README's generated block: monitor quality, closed loop, latency, and the link."""
    try:
        latency = latency_table(results_dir)
    except Exception as error:  # reported in the summary instead
        latency = [f"_could not render: {type(error).__name__}: {error}_"]
    lines = [
        "<!-- generated by benchmarks/run_all.py from benchmarks/results/*.json: do not edit -->",
        "",
        "Monitor quality, mean balanced accuracy over the tasks on held-out rollouts:",
        "",
        *summary_part(results_dir, "monitor_quality.json", mean_accuracy_table),
        "",
        "Closed loop, per task and arm: success rate (mean simulated time to success):",
        "",
        *summary_part(results_dir, "closed_loop.json", closed_loop_arms_table),
        "",
        "Latency:",
        "",
        *latency,
        "",
        "All figures, with the commands and machines: "
        "[benchmarks/RESULTS.md](benchmarks/RESULTS.md).",
    ]
    return "\n".join(lines)


def replace_block(readme: Path, block: str) -> bool:
    """Put ``block`` between README's results markers; False (README untouched) without them."""
    text = readme.read_text()
    start = text.find(START)
    end = text.find(END, start + len(START)) if start >= 0 else -1
    if start < 0 or end < 0:
        return False
    updated = f"{text[: start + len(START)]}\n{block.strip()}\n{text[end:]}"
    if updated != text:
        write(readme, updated)
    return True


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    tmp.replace(path)


def render_all(results_dir: Path, output: Path, readme: Path) -> None:
    """Write RESULTS.md and, if it has the markers, README's summary block."""
    write(output, render_results(results_dir))
    print(f"wrote {output}")
    if replace_block(readme, render_summary(results_dir)):
        print(f"updated the results block of {readme}")
    else:
        print(
            f"{readme} has no results block: add a line {START} and a line {END} where the "
            "summary should go, then run python benchmarks/run_all.py --render-only"
        )


# ---------------------------------------------------------------------------------------------
# Running


def select(only: list[str], skip: list[str], quick: bool) -> list[Benchmark]:
    """The benchmarks to run, in order: ``only`` (all if empty) minus ``skip``; ``quick`` drops
    the long ones that ``only`` does not name."""
    return [
        bench
        for bench in BENCHMARKS
        if (not only or bench.name in only)
        and bench.name not in skip
        and not (quick and bench.long and bench.name not in only)
    ]


def duration(bench: Benchmark) -> str:
    """The rough wall-clock time of ``bench``, for listings."""
    return f"~{bench.minutes:g} min" if bench.minutes is not None else f"set by {bench.script}"


def run(benchmarks: list[Benchmark]) -> list[tuple[Benchmark, str, float]]:
    """Run each script as a subprocess from the repository root, carrying on past failures.

    Returns (benchmark, "ok" / "exit N" / "missing", seconds) per benchmark.
    """
    outcomes = []
    for k, bench in enumerate(benchmarks, start=1):
        print(f"\n=== [{k}/{len(benchmarks)}] {bench.name}: {bench.command} ({duration(bench)})")
        sys.stdout.flush()
        script = BENCH_DIR / bench.script
        if not script.is_file():
            print(f"{script} does not exist")
            outcomes.append((bench, "missing", 0.0))
            continue
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script), *bench.args], cwd=ROOT).returncode
        outcomes.append((bench, "ok" if code == 0 else f"exit {code}", time.perf_counter() - start))
    print(f"\n{'benchmark':<17}{'status':<10}{'seconds':>9}")
    for bench, status, seconds in outcomes:
        print(f"{bench.name:<17}{status:<10}{seconds:>9.0f}")
    return outcomes


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 if a benchmark failed)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        choices=NAMES,
        metavar="NAME",
        help=f"run only these ({', '.join(NAMES)})",
    )
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=NAMES, metavar="NAME", help="do not run these"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the long ones (" + ", ".join(b.name for b in BENCHMARKS if b.long) + ")",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing; re-render RESULTS.md and README from results/",
    )
    parser.add_argument("--list", action="store_true", help="print the run plan and exit")
    args = parser.parse_args(argv)
    chosen = select(args.only, args.skip, args.quick)
    if args.list:
        for bench in chosen:
            print(f"{bench.name:<17}{duration(bench):<20}{bench.command}")
        return 0
    failed = []
    if not args.render_only:
        failed = [bench.name for bench, status, _ in run(chosen) if status != "ok"]
    render_all(RESULTS_DIR, RESULTS_MD, README)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
