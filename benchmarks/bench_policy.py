"""Inference latency of the reference flow-matching policy: ``sample_chunks`` with n = 1 and
n = 32 (one batched pass per Euler step), and ``embed``, on one CPU thread.

Uses a saved policy (``--policy DIR``) or, without one, a freshly initialised policy of the
default size for the given task (latency does not depend on the weights' values).
Reports median and p99 over ``--iters`` calls after warm-up, and the n=32 / n=1 ratio.

    python benchmarks/bench_policy.py [--task pick_place] [--policy models/pick_place/policy]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from robofail.policy.flow import FlowChunkModel, FlowChunkPolicy
from robofail.policy.protocol import ObservationWindow
from robofail.policy.train import policy_config_for
from robofail.tasks import make_env
from robofail.tasks.demos import dataset_info


def latencies_ms(fn, iters: int, warmup: int = 10) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = np.empty(iters)
    for i in range(iters):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/policy.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    env = make_env(args.task)
    if args.policy is not None:
        policy = FlowChunkPolicy.load(args.policy)
    else:
        config = policy_config_for(dataset_info(env), env.position_action_dims)
        policy = FlowChunkPolicy(FlowChunkModel(config))
    obs, _ = env.reset(seed=0)
    window = ObservationWindow(policy.obs_horizon)
    window.reset(obs)
    current = window.window()

    results = {}
    for name, fn in (
        ("embed", lambda: policy.embed(current)),
        ("sample_n1", lambda: policy.sample_chunks(current, 1, seed=0)),
        ("sample_n32", lambda: policy.sample_chunks(current, 32, seed=0)),
    ):
        ms = latencies_ms(fn, args.iters)
        results[name] = {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}
    ratio = results["sample_n32"]["median_ms"] / results["sample_n1"]["median_ms"]
    print(f"{'call':<12}{'median ms':>11}{'p99 ms':>9}")
    for name, r in results.items():
        print(f"{name:<12}{r['median_ms']:>11.3f}{r['p99_ms']:>9.3f}")
    print(
        f"n=32 / n=1 median latency ratio: {ratio:.2f} (32 chunks for {ratio:.2f}x the time of 1)"
    )
    report = {
        "benchmark": "policy",
        "task": args.task,
        "threads": args.threads,
        "inference_steps": policy.config.inference_steps,
        "horizon": policy.horizon,
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "torch": torch.__version__,
        "calls": results,
        "n32_over_n1": ratio,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
