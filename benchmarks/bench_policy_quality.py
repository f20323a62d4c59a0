"""Closed-loop quality of the reference policy on the bundled tasks, end to end.

Per task: collect expert demos (DART-style executed-action noise), train the flow-matching
policy (wall time of the optimisation on this machine), and roll it out on ``--eval`` seeds that
no demo used (collection seed 777 vs 0), reporting the success rate. Prints a table, writes JSON;
the trained policies go to ``--out``.

    python benchmarks/bench_policy_quality.py [--tasks pick_place push peg_insert] [--eval 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from robofail.policy.rollout import collect_rollouts
from robofail.policy.train import TrainConfig, policy_config_for, train_flow_policy
from robofail.tasks import TASKS, make_env
from robofail.tasks.demos import collect_demos, dataset_info

#: Per task: (demos, executed-action noise std, epochs). Epochs keep training under 5 minutes
#: on 2 CPU cores; noise 0.2 on Push (the contact-rich task) teaches more recoveries.
SETTINGS = {
    "pick_place": (200, 0.1, 300),
    "push": (200, 0.2, 220),
    "peg_insert": (200, 0.1, 250),
}
EVAL_SEED = 777


def run_task(task: str, out: Path, n_eval: int, workers: int) -> dict:
    demos_n, noise, epochs = SETTINGS[task]
    env = make_env(task)
    start = time.perf_counter()
    demos = list(collect_demos(task, demos_n, seed=0, workers=workers, action_noise=noise))
    demo_seconds = time.perf_counter() - start
    config = policy_config_for(
        dataset_info(env), env.position_action_dims, exec_horizon=env.policy_exec_horizon
    )
    result = train_flow_policy(demos, config, TrainConfig(epochs=epochs), progress=False)
    policy_dir = out / task / "policy"
    result.policy.save(policy_dir)
    start = time.perf_counter()
    rollouts = list(
        collect_rollouts(policy_dir, n_eval, task=task, seed=EVAL_SEED, samples=1, workers=workers)
    )
    return {
        "demos": demos_n,
        "demo_noise": noise,
        "demo_success_rate": float(np.mean([d.label.success for d in demos])),
        "demo_seconds": demo_seconds,
        "epochs": epochs,
        "train_pairs": result.pairs,
        "train_seconds": result.seconds,
        "final_loss": result.losses[-1],
        "exec_horizon": config.exec_horizon,
        "eval_episodes": n_eval,
        "success_rate": float(np.mean([r.label.success for r in rollouts])),
        "eval_seconds": time.perf_counter() - start,
        "fingerprint": result.policy.fingerprint,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--eval", type=int, default=100, help="held-out evaluation episodes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_policy_quality"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/policy_quality.json"))
    args = parser.parse_args()

    results = {task: run_task(task, args.out, args.eval, args.workers) for task in args.tasks}
    print(
        f"{'task':<12}{'demos':>6}{'noise':>7}{'epochs':>7}{'train s':>9}{'exec':>6}{'success':>9}"
    )
    for task, r in results.items():
        print(
            f"{task:<12}{r['demos']:>6}{r['demo_noise']:>7.2f}{r['epochs']:>7}"
            f"{r['train_seconds']:>9.0f}{r['exec_horizon']:>6}{r['success_rate']:>9.1%}"
        )
    report = {
        "benchmark": "policy_quality",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "tasks": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
