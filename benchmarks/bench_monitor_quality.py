"""Detection quality of every monitor method on the bundled tasks, on held-out test rollouts.

Per task, with the reference policy trained by ``bench_policy_quality.py`` (``--policies``):

- ``calib.h5``, ``calib_extra.h5`` and ``calib_more.h5``: 320 + 300 + 600 nominal rollouts
  (seeds 100, 101 and 103); their successes are split into fit / threshold / validation parts
  by ``robofail calibrate``. ``calib_more.h5`` was added in session 14 (before: ~560
  successes per task), developed on ``fresh`` only: it doubles the threshold and validation
  splits, so the calibration draw behind a false-alarm rate above alpha spreads less and
  validation can judge lower shares of alpha;
- ``val_failures``, ``val_failures_extra`` and ``val_failures_304``: episodes of the
  ``policy_failures`` spec (seed 301: 120 for pick_place, 80 for the contact tasks; seed 303:
  120 each; seed 304: 240 each), the failures of which choose windows, threshold style and
  weights (validation only);
- the test set, used for nothing else (``--test-set``): ``sixth`` (the default),
  ``test_nominal_250.h5``, 240 nominal rollouts (seed 250, so that push too has >= 200
  successes), and ``test_failures_352``, episodes of the ``policy_failures`` spec (seed 352;
  300 for pick_place, 200 for push and peg_insert); ``seventh`` (240 / 362), ``fifth``
  (240 / 342), ``fourth`` (220 / 332), ``third`` (220 / 322), ``fresh`` (210 / 312) and
  ``first`` (200 / 302), the same sizes otherwise.
  Earlier sessions chose the selection procedure looking at ``first``, and compared variants of
  it on ``fresh``, so their figures are development figures. ``third`` was read once, with the
  method that chose on whole-episode TPR; the method now chooses on TPR before the length cap
  and tries only the alpha shares validation can judge (developed on ``fresh`` and ``first``),
  and ``fourth`` was recorded before and read once, with it. ``fifth`` was added after that,
  with the method unchanged, for the >= 200 nominal successes the false-alarm check asks for.
  ``sixth`` was recorded in session 13 and first read in session 14, with ``calib_more.h5``
  added to the calibration data (the only change); the other sets' figures are re-computed
  with it. ``seventh`` was recorded in session 14 after that change and read once, with the
  method unchanged.

Missing datasets are recorded with the ``robofail`` command. The monitor is calibrated at each
``--alphas`` (once: a calibration is reused while its inputs, settings and the monitor's source
are unchanged, so every test set is judged by the same monitor) and evaluated on the test
nominal successes plus the test failures (perturbed runs that still succeeded are left out, so
negatives are exactly the nominal population the conformal bound is about). Prints the tables
and writes ``benchmarks/results/monitor_quality.json``.

Next to each method's balanced accuracy the JSON gives its difference to ``robofail``'s with a
95 % paired bootstrap interval (``ba_difference_to_robofail``: the test successes and failures
resampled separately, the same draw for both methods), so a gap can be told from test noise.

    python benchmarks/bench_monitor_quality.py [--tasks pick_place push peg_insert]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from robofail.monitor.artifact import CALIBRATION_FILE, file_sha256
from robofail.monitor.calibrate import CalibrationSettings, calibrate
from robofail.monitor.episodes import load_episodes
from robofail.monitor.evaluate import evaluate, format_table

FAILURE_EPISODES = {"pick_place": (120, 300), "push": (80, 200), "peg_insert": (80, 200)}
VALIDATION_FAILURES = ("val_failures", "val_failures_extra", "val_failures_304")
TEST_SETS = {
    "fresh": ("test_nominal_210.h5", "210", "test_failures_312", "312"),
    "first": ("test_nominal.h5", "200", "test_failures", "302"),
    "third": ("test_nominal_220.h5", "220", "test_failures_322", "322"),
    "fourth": ("test_nominal_230.h5", "230", "test_failures_332", "332"),
    "fifth": ("test_nominal_240.h5", "240", "test_failures_342", "342"),
    "sixth": ("test_nominal_250.h5", "250", "test_failures_352", "352"),
    "seventh": ("test_nominal_260.h5", "260", "test_failures_362", "362"),
}
"""Test set name -> (nominal dataset, its seed, failure dataset, its seed)."""
NOMINAL_EPISODES = {"fifth": 240, "sixth": 240, "seventh": 240}
"""Nominal test rollouts where not 220: enough for >= 200 successes on every task (push's
policy succeeds in ~88 % of nominal episodes, so 220 gave it 193-206)."""


def datasets(task: str, test_set: str) -> dict[str, list[str]]:
    """Dataset name -> the robofail verb and arguments that record it."""
    n_val, n_test = FAILURE_EPISODES.get(task, (80, 200))
    failures = ["generate", "--spec", "policy_failures"]
    nominal_name, nominal_seed, failures_name, failures_seed = TEST_SETS[test_set]
    n_nominal = str(NOMINAL_EPISODES.get(test_set, 220))
    return {
        "calib.h5": ["rollout", "-n", "320", "--seed", "100"],
        "calib_extra.h5": ["rollout", "-n", "300", "--seed", "101"],
        "calib_more.h5": ["rollout", "-n", "600", "--seed", "103"],
        "val_failures": [*failures, "-n", str(n_val), "--seed", "301"],
        "val_failures_extra": [*failures, "-n", "120", "--seed", "303"],
        "val_failures_304": [*failures, "-n", "240", "--seed", "304"],
        nominal_name: ["rollout", "-n", n_nominal, "--seed", nominal_seed],
        failures_name: [*failures, "-n", str(n_test), "--seed", failures_seed],
    }


def ensure_data(task: str, folder: Path, policy: Path, workers: int, test_set: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, args in datasets(task, test_set).items():
        path = folder / name
        if path.exists():
            continue
        command = [
            sys.executable, "-m", "robofail.cli", args[0], "--task", task,
            "--policy", str(policy), *args[1:], "--workers", str(workers), "--out", str(path),
        ]  # fmt: skip
        subprocess.run(command, check=True)


CALIBRATION_ROLLOUTS = ("calib.h5", "calib_extra.h5", "calib_more.h5")


def bench_record(out: Path) -> Path:
    """``calib_alpha<a>.bench.json`` beside the artifact folder ``out`` (an artifact folder holds
    only its own files): what it was calibrated from (:func:`calibration_inputs`) and how long
    that took."""
    return out.with_name(out.name + ".bench.json")


def _file_sizes(path: Path) -> list[list]:
    """[relative name, size in bytes] of ``path`` (a file) or of every file under it."""
    if path.is_file():
        return [[path.name, path.stat().st_size]]
    return [[str(f.relative_to(path)), f.stat().st_size] for f in sorted(path.rglob("*"))]


def calibration_inputs(
    folder: Path, validation: tuple[str, ...], settings: CalibrationSettings, fingerprint: str
) -> dict:
    """What a calibration depends on: the datasets (names and sizes), the settings, the
    policy's fingerprint and the source of the monitor package and the ONNX graph builder it
    exports with (so a method change recalibrates)."""
    import robofail.monitor as monitor_package
    import robofail.onnx_graph as onnx_graph

    source = hashlib.sha256()
    files = [*sorted(Path(monitor_package.__file__).parent.glob("*.py")), Path(onnx_graph.__file__)]
    for path in files:
        source.update(path.read_bytes())
    return {
        "rollouts": [_file_sizes(folder / name) for name in CALIBRATION_ROLLOUTS],
        "validation": [_file_sizes(folder / name) for name in validation],
        "settings": repr(settings),
        "policy_fingerprint": fingerprint,
        "monitor_source_sha256": source.hexdigest(),
    }


def reused_calibration(out: Path, inputs: dict) -> tuple[dict | None, float | None]:
    """(calibration.json, seconds it took) of the artifact in ``out`` when it was calibrated
    from exactly ``inputs`` and has not been replaced since; (None, None) when it must be
    calibrated (again)."""
    try:
        record = json.loads(bench_record(out).read_text())
        if record.get("inputs") != inputs or record.get("sha256") != file_sha256(
            out / CALIBRATION_FILE
        ):
            return None, None
        calibration = json.loads((out / CALIBRATION_FILE).read_text())
    except (OSError, ValueError):
        return None, None
    print(f"reusing {out} (calibrated from the same inputs)")
    return calibration, record["seconds"]


BOOTSTRAP_DRAWS = 2000


def ba_difference(ours: list, theirs: list, seed: int = 0) -> dict:
    """Balanced accuracy of ``theirs`` minus ``ours`` (per-episode outcomes of two methods on
    the same test episodes), with a 95 % paired, stratified bootstrap interval."""
    failed = np.array([not o.success for o in ours])
    flags = np.array([[o.flagged for o in ours], [o.flagged for o in theirs]], dtype=float)
    rng = np.random.default_rng(seed)

    def flagged_share(members: np.ndarray) -> np.ndarray:
        """(2, draws) share of flagged episodes among resampled ``members``."""
        picks = rng.integers(0, len(members), size=(BOOTSTRAP_DRAWS, len(members)))
        return flags[:, members[picks]].mean(axis=2)

    tpr = flagged_share(np.flatnonzero(failed))
    tnr = 1.0 - flagged_share(np.flatnonzero(~failed))
    difference = 0.5 * (tpr[1] - tpr[0] + tnr[1] - tnr[0])
    point = 0.5 * (flags[:, failed].mean(axis=1) + 1.0 - flags[:, ~failed].mean(axis=1))
    low, high = np.percentile(difference, [2.5, 97.5])
    return {"difference": float(point[1] - point[0]), "low": float(low), "high": float(high)}


def run_task(
    task: str,
    folder: Path,
    policy: Path,
    alphas: list[float],
    seed: int,
    test_set: str,
    validation: tuple[str, ...] = VALIDATION_FAILURES,
) -> dict:
    nominal_name, _, failures_name, _ = TEST_SETS[test_set]
    test, _ = load_episodes([str(folder / nominal_name), f"{folder / failures_name}:failure"])
    policy_config = json.loads((policy / "config.json").read_text())
    rows = {}
    for alpha in alphas:
        out = folder / f"calib_alpha{alpha}"
        settings = CalibrationSettings(alpha=alpha, seed=seed)
        inputs = calibration_inputs(folder, validation, settings, policy_config["fingerprint"])
        calibration, seconds = reused_calibration(out, inputs)
        if calibration is None:
            start = time.perf_counter()
            rollouts, _ = load_episodes([str(folder / name) for name in CALIBRATION_ROLLOUTS])
            val_failures, _ = load_episodes([f"{folder / name}:failure" for name in validation])
            calibration = calibrate(
                rollouts,
                out,
                position_dims=policy_config["config"]["position_dims"],
                policy_fingerprint=policy_config["fingerprint"],
                validation_failures=val_failures,
                settings=settings,
                task=task,
                overwrite=True,
            )
            seconds = time.perf_counter() - start
            record = {
                "inputs": inputs,
                "seconds": seconds,
                "sha256": file_sha256(out / CALIBRATION_FILE),
            }
            bench_record(out).write_text(json.dumps(record, indent=1))
        evaluation = evaluate(out, test, policy_fingerprint=policy_config["fingerprint"])
        result = evaluation.result
        ours = evaluation.outcomes["robofail"]
        differences = {
            name: ba_difference(ours, outcomes)
            for name, outcomes in evaluation.outcomes.items()
            if name != "robofail"
        }
        n = result["methods"]["robofail"]["n_success"]
        bound = alpha + 2 * math.sqrt(alpha * (1 - alpha) / n)
        print(f"\n== {task}, alpha {alpha}: false-alarm bound {bound:.3f} on {n} successes ==")
        print(format_table(result))
        print(f"-- alarms counted before step {result['length_cap_steps']} --")
        print(format_table(result, "methods_length_capped"))
        print("-- balanced accuracy minus robofail's, 95 % paired bootstrap interval --")
        for name, d in differences.items():
            print(f"{name:<12} {d['difference']:+.3f}  [{d['low']:+.3f}, {d['high']:+.3f}]")
        rows[str(alpha)] = {
            "calibration_seconds": seconds,
            "n_episodes": calibration["n_episodes"],
            "selection": calibration["selection"],
            "false_alarm_bound": bound,
            **result,
            "ba_difference_to_robofail": differences,
        }
    return {
        "policy_fingerprint": policy_config["fingerprint"],  # calibrate checks the rollouts'
        "test_set": {"name": test_set, "nominal": nominal_name, "failures": failures_name},
        "n_validation_failures": calibration["n_episodes"]["validation_failures"],
        "alphas": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["pick_place", "push", "peg_insert"])
    parser.add_argument("--data", default="runs/bench_monitor_quality")
    parser.add_argument("--policies", default="runs/bench_policy_quality")
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.05, 0.1])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-set", choices=list(TEST_SETS), default="sixth")
    parser.add_argument(
        "--validation-failures",
        nargs="+",
        choices=VALIDATION_FAILURES,
        default=list(VALIDATION_FAILURES),
        help="which validation failure sets choose the settings (default: all)",
    )
    parser.add_argument("--json", default="benchmarks/results/monitor_quality.json")
    args = parser.parse_args()
    results = {}
    for task in args.tasks:
        policy = Path(args.policies) / task / "policy"
        folder = Path(args.data) / task
        ensure_data(task, folder, policy, args.workers, args.test_set)
        results[task] = run_task(
            task,
            folder,
            policy,
            args.alphas,
            args.seed,
            args.test_set,
            tuple(args.validation_failures),
        )
    summary = {}
    for alpha in map(str, args.alphas):
        per_method: dict[str, list[float]] = {}
        for task in results.values():
            for method, metrics in task["alphas"][alpha]["methods"].items():
                per_method.setdefault(method, []).append(metrics["balanced_accuracy"])
        summary[alpha] = {m: sum(v) / len(v) for m, v in per_method.items() if None not in v}
        ranked = sorted(summary[alpha].items(), key=lambda item: -item[1])
        print(f"\nmean balanced accuracy over tasks, alpha {alpha}: "
              + ", ".join(f"{m} {v:.3f}" for m, v in ranked))  # fmt: skip
    payload = {
        "benchmark": "monitor_quality",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "tasks": results,
        "mean_balanced_accuracy": summary,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
