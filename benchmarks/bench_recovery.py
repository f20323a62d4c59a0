"""Latency of the exported recovery policy at batch 1 on one core: onnxruntime vs torch eager.

The network is the default recovery MLP (3 x 256, H = 8) for ``--task``'s state and action sizes,
from ``--model DIR`` (a ``robofail train-recovery`` folder) or, by default, freshly initialised
(seed 0; latency does not depend on the weights values). It is exported with
``robofail.recovery.model.export_onnx`` and timed as the robot runs it: ``RecoveryPolicy.act``
(input checks, io binding, one thread, no spinning). The reference is the same network in torch
eager mode (``torch.no_grad``, one thread) on the same states. Both are timed in alternating blocks
(so machine load hits both alike) with ``time.perf_counter_ns`` (wall clock) and
``time.thread_time_ns`` (this thread's CPU time) around each call, the process pinned to one core
(``--cpu``, default the highest one). On a shared machine the wall-clock p99 is set by other jobs'
time slices; the CPU-time p99 is the call's own cost. Outputs must agree within 1e-5. Both are
also timed at a control rate: ``--paced-calls`` calls each, in turn, one every ``--period-ms``
(default 100 ms, a 10 Hz controller), the thread asleep in between, as a robot's control loop
calls them (caches cold between calls). Prints a table, writes
``benchmarks/results/recovery.json``; the p99 target is on the back-to-back calls.

    python benchmarks/bench_recovery.py [--task pick_place] [--model DIR] [--calls 20000] [--cpu N]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy / torch load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_monitor import default_cpu, pin_to_cpu  # noqa: E402


def build(task: str, model_dir: str | None):
    """(torch network, RecoveryConfig) of a trained model or a fresh default one."""
    from robofail.recovery.model import RecoveryConfig, build_network
    from robofail.recovery.train import load_recovery_model
    from robofail.tasks import get_task

    if model_dir:
        net, config, _ = load_recovery_model(model_dir)
        return net, config
    env_type = get_task(task).env_type()
    n_actions = len(env_type.action_names)
    config = RecoveryConfig(
        task=env_type.task_name,
        state_names=list(env_type.state_names),
        action_names=list(env_type.action_names),
        action_low=[-1.0] * n_actions,
        action_high=[1.0] * n_actions,
    )
    size = len(config.state_names)
    return build_network(config, np.zeros(size), np.ones(size), seed=0).eval(), config


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    us = np.asarray(samples_ns) / 1e3
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", default="pick_place", help="task of the fresh weights (a --model names its own)"
    )
    parser.add_argument("--model", help="trained recovery folder (default: fresh weights)")
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per runtime")
    parser.add_argument("--block", type=int, default=500, help="calls per alternating block")
    parser.add_argument("--paced-calls", type=int, default=200, help="calls at a control rate")
    parser.add_argument("--period-ms", type=float, default=100.0, help="control period (100 ms)")
    parser.add_argument("--json", default="benchmarks/results/recovery.json")
    parser.add_argument("--cpu", type=int, default=default_cpu(), help="core to pin to")
    args = parser.parse_args()
    if args.paced_calls < 1 or not args.period_ms >= 0:
        parser.error("--paced-calls must be >= 1 and --period-ms >= 0")
    pinned = pin_to_cpu(args.cpu)

    import onnx
    import torch

    from robofail.recovery.model import export_onnx, input_shape
    from robofail.recovery.runtime import RecoveryPolicy

    torch.set_num_threads(1)
    net, config = build(args.task, args.model)
    rng = np.random.default_rng(0)
    mean, std = net.state_mean.numpy(), net.state_std.numpy()
    shape = (256, *input_shape(config))  # (S,) or a (K, S) window of states
    states = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recovery.onnx"
        onnx.save(export_onnx(net, config), path)
        policy = RecoveryPolicy.load(path)
    inputs = [torch.as_tensor(s[None]) for s in states]
    worst = 0.0
    with torch.no_grad():
        for state, tensor in zip(states, inputs, strict=True):
            worst = max(worst, float(np.abs(policy.act(state) - net(tensor)[0].numpy()).max()))
    if worst > 1e-5:
        raise SystemExit(f"onnxruntime and torch differ by {worst:.2e} (> 1e-5)")
    times: dict[str, list[int]] = {"onnxruntime": [], "torch_eager": []}
    cpu_times: dict[str, list[int]] = {"onnxruntime": [], "torch_eager": []}
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(200):  # warm-up
        policy.act(states[0])
        with torch.no_grad():
            net(inputs[0])
    done = 0
    with torch.no_grad():
        while done < args.calls:
            for i in range(args.block):
                k = (done + i) % len(states)
                start, cpu_start = clock(), cpu_clock()
                policy.act(states[k])
                times["onnxruntime"].append(clock() - start)
                cpu_times["onnxruntime"].append(cpu_clock() - cpu_start)
            for i in range(args.block):
                k = (done + i) % len(states)
                start, cpu_start = clock(), cpu_clock()
                net(inputs[k])
                times["torch_eager"].append(clock() - start)
                cpu_times["torch_eager"].append(cpu_clock() - cpu_start)
            done += args.block
        paced: dict[str, list[int]] = {"onnxruntime": [], "torch_eager": []}
        runtimes = {"onnxruntime": (policy.act, states), "torch_eager": (net, inputs)}
        for i in range(args.paced_calls):
            for name, (call, arguments) in runtimes.items():
                time.sleep(args.period_ms / 1e3)
                start = clock()
                call(arguments[i % len(arguments)])
                paced[name].append(clock() - start)
    results = {name: percentiles(samples) for name, samples in times.items()}
    paced_results = {name: percentiles(samples) for name, samples in paced.items()}
    cpu_results = {name: percentiles(samples) for name, samples in cpu_times.items()}
    ratio = results["onnxruntime"]["median_us"] / results["torch_eager"]["median_us"]
    print(f"recovery policy {config.task}: state {len(config.state_names)}, chunk "
          f"{config.horizon} x {len(config.action_names)}, MLP {config.layers} x {config.hidden}; "
          f"{args.calls} calls each, batch 1, one thread on core {args.cpu} "
          f"({'pinned' if pinned else 'not pinned'}); max |diff| {worst:.1e}")  # fmt: skip
    print(f"{'runtime':<14}{'median us':>11}{'p99 us':>9}{'CPU median':>12}{'CPU p99':>9}")
    for name, r in results.items():
        c = cpu_results[name]
        print(f"{name:<14}{r['median_us']:>11.1f}{r['p99_us']:>9.1f}"
              f"{c['median_us']:>12.1f}{c['p99_us']:>9.1f}")  # fmt: skip
    for name, r in paced_results.items():
        print(f"{name + ', paced':<14}{r['median_us']:>11.1f}{r['p99_us']:>9.1f}"
              f"    (one call per {args.period_ms:g} ms, {args.paced_calls} calls)")  # fmt: skip
    print(f"onnxruntime / torch eager median: {ratio:.2f}; p99 target <= 100 us: wall "
          f"{'met' if results['onnxruntime']['p99_us'] <= 100 else 'MISSED'}, CPU time "
          f"{'met' if cpu_results['onnxruntime']['p99_us'] <= 100 else 'MISSED'}")  # fmt: skip
    payload = {
        "benchmark": "recovery_latency",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "task": config.task,
        "model": args.model or "fresh default network (seed 0)",
        "calls": args.calls,
        "max_abs_diff": worst,
        "cpu": args.cpu,
        "pinned": pinned,
        "results": results,
        "cpu_time_results": cpu_results,
        "median_ratio_onnx_over_torch": ratio,
        "paced": paced_results,
        "paced_calls": args.paced_calls,
        "period_ms": args.period_ms,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
