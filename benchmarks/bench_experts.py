"""Scripted-expert success rates of the bundled tasks, nominal and under executed-action noise.

For each task and noise level: success rate over ``--seeds`` episodes (episode i of collection
seed 0, as `robofail demos` runs them), mean and max episode length. Prints a table, writes JSON.

    python benchmarks/bench_experts.py [--seeds 200] [--noise 0 0.2] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from robofail.tasks import TASKS
from robofail.tasks.demos import collect_demos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/experts.json"))
    args = parser.parse_args()

    rows = []
    print(f"{'task':<12}{'noise':>7}{'success':>10}{'mean len':>10}{'max len':>9}{'ep/s':>8}")
    for task in args.tasks:
        for noise in args.noise:
            start = time.perf_counter()
            episodes = list(
                collect_demos(task, args.seeds, seed=0, workers=args.workers, action_noise=noise)
            )
            seconds = time.perf_counter() - start
            lengths = [e.length for e in episodes]
            row = {
                "task": task,
                "action_noise": noise,
                "episodes": len(episodes),
                "success_rate": float(np.mean([e.label.success for e in episodes])),
                "mean_length": float(np.mean(lengths)),
                "max_length": int(max(lengths)),
                "episodes_per_s": len(episodes) / seconds,
            }
            rows.append(row)
            print(
                f"{task:<12}{noise:>7.2f}{row['success_rate']:>10.1%}{row['mean_length']:>10.1f}"
                f"{row['max_length']:>9}{row['episodes_per_s']:>8.1f}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"benchmark": "experts", "workers": args.workers, "rows": rows}, indent=2)
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
