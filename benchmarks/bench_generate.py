"""Failure-generator throughput, in one run:

- the raw physics bound: the same episodes run in this process with every ``mj_step`` call timed;
  episodes/s if nothing but those calls ran (one core);
- ``robofail generate`` episodes/s (wall clock, worker start-up included) with the process pool at
  1 and 2 workers, and the 1 -> 2 scaling;
- Ray (a local instance started beforehand, its start-up reported apart) at 2 workers vs the pool;
- per configuration, the ratio to the physics bound of as many cores as workers (1.0 = nothing
  but physics), and a check that every configuration wrote identical bytes.

Each figure is the best of ``--repeats`` runs (the machine may be shared). Prints a table and
writes JSON.

    python benchmarks/bench_generate.py [--task pick_place] [--spec failures] [-n 120]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import mujoco
import numpy as np

from robofail.failgen.generator import generate, run_perturbed_episode, spec_content
from robofail.failgen.spec import load_spec


def physics_bound(task: str, spec, n: int, seed: int) -> dict[str, float]:
    """Run episodes 0..n-1 of ``spec`` in-process, timing only the ``mj_step`` calls."""
    original = mujoco.mj_step
    physics = 0.0
    calls = 0

    def timed(model, data, nstep=1):
        nonlocal physics, calls
        start = time.perf_counter()
        original(model, data, nstep)
        physics += time.perf_counter() - start
        calls += 1

    mujoco.mj_step = timed
    start = time.perf_counter()
    steps = 0
    try:
        for index in range(n):
            episode = run_perturbed_episode(task, spec.sample(seed, index), seed=seed, index=index)
            steps += episode.length
    finally:
        mujoco.mj_step = original
    total = time.perf_counter() - start
    return {
        "episodes": n,
        "control_steps": steps,
        "mj_step_calls": calls,
        "physics_seconds": physics,
        "episode_seconds_in_process": total,
        "physics_bound_episodes_per_s": n / physics,
        "physics_share_of_episode_time": physics / total,
    }


def digest(folder: Path) -> str:
    """SHA-256 over the names and bytes of every file of a dataset folder."""
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def timed_generate(task: str, spec_arg: str, n: int, seed: int, repeats: int, **kwargs) -> dict:
    """Best-of-``repeats`` wall time of one ``generate`` call; the dataset's digest."""
    best, result_digest, summary = float("inf"), "", None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            start = time.perf_counter()
            summary = generate(task, spec_arg, n, out, seed=seed, progress=False, **kwargs)
            best = min(best, time.perf_counter() - start)
            result_digest = digest(out)
    return {
        "seconds": best,
        "episodes_per_s": n / best,
        "kept": summary.kept,
        "digest": result_digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--spec", default="failures", help="spec file or shipped name")
    parser.add_argument("-n", type=int, default=120, help="episodes per configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray configuration")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/generate.json"))
    args = parser.parse_args()

    spec = load_spec(args.spec, args.task)
    bound = physics_bound(args.task, spec, args.n, args.seed)
    per_core = bound["physics_bound_episodes_per_s"]
    common = {"n": args.n, "seed": args.seed, "repeats": args.repeats, "shard_size": 50}
    runs = {
        "pool x1": timed_generate(args.task, args.spec, backend="local", workers=1, **common),
        "pool x2": timed_generate(args.task, args.spec, backend="local", workers=2, **common),
    }
    ray_init_seconds = None
    if not args.no_ray:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_init_seconds = time.perf_counter() - start
        try:
            runs["ray x2"] = timed_generate(
                args.task, args.spec, backend="ray", workers=2, **common
            )
        finally:
            ray.shutdown()
    workers = {"pool x1": 1, "pool x2": 2, "ray x2": 2}
    for name, run in runs.items():
        run["workers"] = workers[name]
        run["ratio_to_physics_bound"] = run["episodes_per_s"] / (workers[name] * per_core)
    scaling = runs["pool x2"]["episodes_per_s"] / runs["pool x1"]["episodes_per_s"]
    identical = len({run["digest"] for run in runs.values()}) == 1

    print(
        f"{args.task}, spec {spec.name} ({len(spec.entries)} kinds, keep {spec.keep}), "
        f"{args.n} episodes, {bound['control_steps'] / args.n:.0f} steps/episode"
    )
    print(f"{'config':<10}{'episodes/s':>12}{'seconds':>10}{'kept':>6}{'vs physics':>12}")
    print(f"{'physics':<10}{per_core:>12.1f}{bound['physics_seconds']:>10.1f}{'':>6}{1.0:>12.2f}")
    for name, run in runs.items():
        print(
            f"{name:<10}{run['episodes_per_s']:>12.1f}{run['seconds']:>10.1f}{run['kept']:>6}"
            f"{run['ratio_to_physics_bound']:>12.2f}"
        )
    print(f"scaling 1 -> 2 workers: {scaling:.2f}x; identical datasets: {identical}")
    if "ray x2" in runs:
        ray_vs_pool = runs["ray x2"]["episodes_per_s"] / runs["pool x2"]["episodes_per_s"]
        print(f"ray x2 / pool x2: {ray_vs_pool:.2f} (ray start-up {ray_init_seconds:.1f} s apart)")

    report = {
        "benchmark": "generate",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "task": args.task,
        "spec": spec.name,
        "spec_fingerprint": spec.fingerprint(),
        "spec_content": spec_content(spec),
        "episodes": args.n,
        "repeats": args.repeats,
        "physics": bound,
        "runs": runs,
        "scaling_1_to_2_workers": scaling,
        "ray_init_seconds": ray_init_seconds,
        "identical_datasets": identical,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
