"""Simulation throughput of the bundled tasks.

For each task, in one run:
- env ``step`` throughput: control steps/s replaying a recorded expert episode's actions;
- raw ``mj_step`` throughput of *the same physics work*: the identical sequence of ``mj_step``
  calls (same mocap targets and controls per segment, recorded from that episode) with no env
  code around them, as physics steps/s and as control-step equivalents/s;
- their ratio (env steps/s over raw control-step equivalents/s: 1.0 = no env overhead);
- scripted-expert episodes/s (expert planning included).
Each figure is the median of ``--repeats`` timed runs. Prints a table and writes JSON.

    python benchmarks/bench_sim.py [--tasks pick_place push] [--json benchmarks/results/sim.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import mujoco
import numpy as np

from robofail.tasks import TASKS, make_env
from robofail.tasks.demos import run_expert_episode


def _median_rate(fn, count: int, repeats: int) -> float:
    """Median over ``repeats`` of count / seconds taken by ``fn()``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def record_physics_calls(env, actions: np.ndarray) -> list[tuple]:
    """(mocap_pos, mocap_quat, ctrl, nstep) of every ``mj_step`` call an episode makes."""
    calls = []
    original = mujoco.mj_step

    def recording(model, data, nstep=1):
        calls.append((data.mocap_pos.copy(), data.mocap_quat.copy(), data.ctrl.copy(), nstep))
        original(model, data, nstep)

    mujoco.mj_step = recording
    try:
        env.reset(seed=0)
        for action in actions:
            env.step(action)
    finally:
        mujoco.mj_step = original
    return calls


def bench_task(task: str, *, repeats: int, expert_episodes: int) -> dict[str, float]:
    env = make_env(task)
    episode = run_expert_episode(env, seed=0, index=0)
    actions = episode.actions
    calls = record_physics_calls(env, actions)
    raw_steps = sum(call[3] for call in calls)
    model, data = env.model, env.data

    def raw() -> None:
        env.reset(seed=0)
        for mocap_pos, mocap_quat, ctrl, nstep in calls:
            data.mocap_pos[:] = mocap_pos
            data.mocap_quat[:] = mocap_quat
            data.ctrl[:] = ctrl
            mujoco.mj_step(model, data, nstep)

    def stepping() -> None:
        env.reset(seed=0)
        for action in actions:
            env.step(action)

    def experts() -> None:
        for i in range(expert_episodes):
            run_expert_episode(env, seed=1, index=i)

    raw_rate = _median_rate(raw, raw_steps, repeats)
    env_rate = _median_rate(stepping, len(actions), repeats)
    episode_rate = _median_rate(experts, expert_episodes, max(1, repeats // 2))
    env.close()
    equivalent = raw_rate / env.n_substeps
    return {
        "substeps_per_control_step": env.n_substeps,
        "raw_mj_step_per_s": raw_rate,
        "raw_control_step_equivalent_per_s": equivalent,
        "env_steps_per_s": env_rate,
        "env_over_raw_ratio": env_rate / equivalent,
        "expert_episodes_per_s": episode_rate,
        "expert_episode_length": len(actions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--expert-episodes", type=int, default=10)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/sim.json"))
    args = parser.parse_args()

    results = {
        task: bench_task(task, repeats=args.repeats, expert_episodes=args.expert_episodes)
        for task in args.tasks
    }
    header = f"{'task':<12}{'mj_step/s':>12}{'env step/s':>12}{'raw equiv/s':>13}"
    print(header + f"{'ratio':>8}{'expert ep/s':>13}")
    for task, r in results.items():
        print(
            f"{task:<12}{r['raw_mj_step_per_s']:>12.0f}{r['env_steps_per_s']:>12.0f}"
            f"{r['raw_control_step_equivalent_per_s']:>13.0f}{r['env_over_raw_ratio']:>8.2f}"
            f"{r['expert_episodes_per_s']:>13.1f}"
        )
    report = {
        "benchmark": "sim",
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "repeats": args.repeats,
        "tasks": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
