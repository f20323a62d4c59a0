"""Per-kind failure table of the shipped specs: how often each perturbation kind fails its task
and how many control steps a failure takes to develop.

For each task, runs ``robofail generate`` with the ``failures`` spec (``--n-failures`` episodes)
and a nominal spec with the same source (``--n-nominal`` episodes; for ``source: expert`` the
shipped ``nominal`` spec's content), then reads the stored failures back and reports per
perturbation kind: episodes, failures, fail rate, the median and the 25th percentile of
(failure_step - onset_step) over the failures, the median in policy inferences (the task's
executed actions per inference), the share of failures that the task's failure predicate
ended (the rest ran out of time) and the share in which the end effector never moved more than
``IDLE_M`` from its start (the controller never acted, e.g. a vision expert that never found
its object). Prints a table, writes JSON. A spec with
``source: vision_expert`` runs with camera images (the camera faults):

    python benchmarks/bench_failure_table.py [--tasks pick_place push peg_insert]
        [--n-failures 320] [--n-nominal 100] [--workers 2] [--spec failures]
    python benchmarks/bench_failure_table.py --tasks pick_place --spec camera_faults \
        --n-failures 200 --n-nominal 50 --json benchmarks/results/camera_faults.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from robofail.data import open_dataset
from robofail.failgen.generator import generate, task_env
from robofail.failgen.spec import FailureSpec, load_spec, parse_spec
from robofail.tasks import TASKS, get_task
from robofail.tasks.base import MocapTaskEnv

IDLE_M = 0.01
"""A failure whose end effector never got farther than this (m) from its start is idle."""


def hand_travel(env: MocapTaskEnv, states: np.ndarray) -> float:
    """Farthest distance (m) of the end effector from its first position over ``states``
    ((T, N) full simulator states of ``env``'s task)."""
    positions = []
    for state in states:
        env.set_state(state)
        positions.append(env.ee_pos())
    return float(np.linalg.norm(np.array(positions) - positions[0], axis=1).max())


def kind_rows(
    task: str, spec: FailureSpec, title: str, n: int, out: Path, *, workers: int, seed: int
) -> dict:
    """Run ``spec`` (called ``title`` in the result) on ``task`` and return its per-kind
    figures (see the module docstring)."""
    start = time.perf_counter()
    image = spec.source == "vision_expert"
    summary = generate(
        task,
        spec,
        n,
        out,
        seed=seed,
        workers=workers,
        overwrite=True,
        image=image,
        progress=False,
    )
    seconds = time.perf_counter() - start
    env = task_env(task)
    per_inference = int(env.policy_exec_horizon)
    steps: dict[str, list[int]] = {}
    by_predicate: dict[str, int] = {}
    idle: dict[str, int] = {}
    with open_dataset(out) as dataset:
        for episode in dataset:
            label = episode.label
            if label.success or label.onset_step < 0:
                continue
            kind = label.perturbation.get("kind", "none")
            steps.setdefault(kind, []).append(label.failure_step - label.onset_step)
            env.set_state(episode.final_state)
            by_predicate[kind] = by_predicate.get(kind, 0) + bool(env.is_failure())
            states = np.vstack([episode.states, episode.final_state])
            idle[kind] = idle.get(kind, 0) + (hand_travel(env, states) < IDLE_M)
    kinds = {}
    for kind, stats in summary.kinds.items():
        delays = steps.get(kind, [])
        median = statistics.median(delays) if delays else None
        kinds[kind] = {
            "episodes": stats.attempted,
            "failed": stats.failed,
            "fail_rate": stats.failed / max(stats.attempted, 1),
            "median_onset_to_failure": median,
            "p25_onset_to_failure": float(np.percentile(delays, 25)) if delays else None,
            "median_inferences": None if median is None else median / per_inference,
            "ended_by_failure_predicate": (by_predicate.get(kind, 0) / len(delays))
            if delays
            else None,
            "idle_share": (idle.get(kind, 0) / len(delays)) if delays else None,
        }
    return {
        "task": task,
        "spec": title,
        "source": spec.source,
        "image": image,
        "episodes": n,
        "seed": seed,
        "actions_per_inference": per_inference,
        "seconds": seconds,
        "kinds": kinds,
    }


def _fmt(value: float | None, spec: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (format(value, spec))
    )


def print_rows(result: dict) -> None:
    print(
        f"\n{result['task']} / {result['spec']} (source {result['source']}, "
        f"n={result['episodes']}, {result['actions_per_inference']} actions per inference, "
        f"{result['seconds']:.0f} s)"
    )
    print(
        f"{'kind':<18}{'n':>5}{'failed':>8}{'fail %':>8}{'median':>8}{'p25':>6}"
        f"{'infer.':>8}{'predicate':>11}{'idle':>6}"
    )
    for kind, row in sorted(result["kinds"].items()):
        print(
            f"{kind:<18}{row['episodes']:>5}{row['failed']:>8}{100 * row['fail_rate']:>7.1f}%"
            f"{_fmt(row['median_onset_to_failure'], 'g'):>8}"
            f"{_fmt(row['p25_onset_to_failure'], 'g'):>6}"
            f"{_fmt(row['median_inferences'], '.1f'):>8}"
            f"{_fmt(row['ended_by_failure_predicate'], '.0%'):>11}"
            f"{_fmt(row['idle_share'], '.0%'):>6}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--spec", default="failures", help="spec of the failure runs")
    parser.add_argument("--n-failures", type=int, default=320)
    parser.add_argument("--n-nominal", type=int, default=100, help="0: skip the nominal runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/failure_table.json"))
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="robofail-failure-table-") as tmp:
        for task in args.tasks:
            name = get_task(task).name
            spec = load_spec(args.spec, name)
            nominal = parse_spec(
                {"task": name, "source": spec.source, "keep": "all"}, name="nominal"
            )
            runs = [
                (spec, Path(args.spec).stem, args.n_failures),
                (nominal, "nominal", args.n_nominal),
            ]
            for run_spec, title, n in runs:
                if n <= 0:
                    continue
                out = Path(tmp) / f"{name}_{title}"
                result = kind_rows(
                    name, run_spec, title, n, out, workers=args.workers, seed=args.seed
                )
                print_rows(result)
                results.append(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"benchmark": "failure_table", "workers": args.workers, "runs": results}, indent=2
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
