"""Soak test: does the on-robot path leak memory or slow down over a long run?

Two loops, each in a fresh process that imports no torch (what runs next to a robot), pinned to
one core (the highest this process may use, ``--cpu``):

1. **Monitor**: ``--updates`` (default 10^6) calls of ``Monitor.update`` with B = 32 sampled
   chunks of H = 16 steps (A = 5, D = 128), episodes of 30 inferences with ``reset()`` between
   them, on the realistic synthetic artifact and inputs of ``bench_monitor.py`` (its setup
   functions: ``SyntheticPolicy``, ``build_artifact``, ``input_pool``; half the episodes are
   shifted so alarms happen).
2. **Supervisor**: ``--steps`` (default 10^5) control steps of ``Supervisor.act``: the base
   policy (the same synthetic inputs, served cyclically) under that monitor, a small exported
   recovery ONNX (``robofail.recovery.model``, untrained: its actions do not matter here) switched
   in on alarms, episodes of 240 steps.

For each loop: RSS (``/proc/self/statm``) after a warm-up (the first 10 % of the calls, which fill
caches and allocator pools) and at the end, every tenth of the way; median and p99 latency (wall
clock and thread CPU time, ``perf_counter_ns`` / ``thread_time_ns`` around each call) of the
first and the last 10 % of the calls, and their drift in %. On a shared machine the wall-clock
p99 is set by other jobs' time slices; the CPU-time p99 is not. Acceptance: RSS growth after
warm-up < 1 MB over the monitor's 10^6 updates, p99 drift < 20 %.

Prints a table and writes ``benchmarks/results/soak.json``::

    nice -n 5 python benchmarks/soak.py [--monitor calib/pick_place] [--updates 1000000]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads its thread pool

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from bench_monitor import (  # noqa: E402
    SyntheticPolicy,
    build_artifact,
    default_cpu,
    input_pool,
    machine_info,
    pin_to_cpu,
    rss_mb,
    summary_us,
)

EPISODE_INFERENCES = 30
EPISODE_STEPS = 240
STATE_DIM = 10
MEMORY_LIMIT_MB = 1.0
DRIFT_LIMIT_PERCENT = 20.0


class PooledPolicy:
    """A :class:`~robofail.policy.protocol.ChunkPolicy` serving pre-generated synthetic
    inferences cyclically (embedding (D,), chunks (B, H, A)), so the loop measures robofail, not
    a policy."""

    exec_horizon = 8
    obs_horizon = 1
    position_dims = (0, 1, 2)
    fingerprint = ""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.pairs = pairs
        self.horizon, action_dim = pairs[0][1].shape[1:]
        self.action_names = tuple(f"a{i}" for i in range(action_dim))
        self._next = 0

    def sample_chunks(self, obs: dict[str, np.ndarray], n: int, seed: int) -> np.ndarray:
        self._next = (self._next + 1) % len(self.pairs)
        return self.pairs[self._next][1][:n]

    def embed(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.pairs[self._next][0]


def export_recovery(path: Path, action_dim: int) -> None:
    """An untrained recovery policy (state (STATE_DIM,) -> chunk (8, A)) exported to ONNX."""
    import onnx

    from robofail.recovery.model import RecoveryConfig, build_network, export_onnx

    config = RecoveryConfig(
        task="synthetic",
        state_names=[f"s{i}" for i in range(STATE_DIM)],
        action_names=[f"a{i}" for i in range(action_dim)],
        action_low=[-1.0] * action_dim,
        action_high=[1.0] * action_dim,
        horizon=8,
        exec_horizon=4,
        hidden=64,
    )
    net = build_network(config, np.zeros(STATE_DIM), np.ones(STATE_DIM), seed=0).eval()
    onnx.save(export_onnx(net, config), path)


# --------------------------------------------------------------------------- the loops


def soak(call: Callable[[int], Any], calls: int, *, checkpoints: int = 10) -> dict[str, Any]:
    """Run ``call(i)`` for i < ``calls``: RSS after the warm-up tenth and at every tenth, and the
    latency of the first and last tenth of the calls."""
    wall, cpu = np.ones(calls, dtype=np.int64), np.ones(calls, dtype=np.int64)  # pages touched
    tenth = max(1, calls // checkpoints)
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    rss = [rss_mb()]
    start = time.perf_counter()
    for i in range(calls):
        cpu_start = cpu_clock()
        begin = clock()
        call(i)
        wall[i] = clock() - begin
        cpu[i] = cpu_clock() - cpu_start
        if (i + 1) % tenth == 0:
            rss.append(rss_mb())
    seconds = time.perf_counter() - start
    first = summary_us(wall[:tenth], cpu[:tenth])
    last = summary_us(wall[-tenth:], cpu[-tenth:])
    return {
        "calls": calls,
        "seconds": seconds,
        "rss_mb": {"start": rss[0], "after_warmup": rss[1], "end": rss[-1], "every_tenth": rss},
        "growth_after_warmup_mb": rss[-1] - rss[1],
        "first_tenth": first,
        "last_tenth": last,
        "drift_percent": {
            key: 100.0 * (last[f"{key}_us"] / first[f"{key}_us"] - 1.0)
            for key in ("median", "p99", "cpu_median", "cpu_p99")
        },
    }


def monitor_loop(folder: Path, pairs: list, updates: int) -> dict[str, Any]:
    """``updates`` Monitor.update calls over the input pool, reset every 30 inferences."""
    from robofail.monitor import Monitor

    monitor = Monitor.load(folder)
    update, reset = monitor.update, monitor.reset
    alarms = 0

    def call(i: int) -> None:
        nonlocal alarms
        if i % EPISODE_INFERENCES == 0:
            reset()
        embedding, chunks = pairs[i % len(pairs)]
        alarms += update(embedding, chunks).alarm

    result = soak(call, updates)
    result["alarm_rate"] = alarms / updates
    return result


def supervisor_loop(folder: Path, recovery: Path, pairs: list, steps: int) -> dict[str, Any]:
    """``steps`` Supervisor.act calls, a new episode every 240 steps."""
    from robofail.monitor import Monitor
    from robofail.recovery import RecoveryPolicy
    from robofail.recovery.supervisor import Supervisor

    policy = PooledPolicy(pairs)
    supervisor = Supervisor(policy, Monitor.load(folder), RecoveryPolicy.load(recovery))
    states = np.random.default_rng(0).normal(size=(EPISODE_STEPS, STATE_DIM)).astype(np.float32)
    counts = {"switches_to_recovery": 0, "recovery_errors": 0}

    def call(i: int) -> None:
        step = i % EPISODE_STEPS
        if step == 0:
            if i:
                counts["switches_to_recovery"] += sum(
                    s.to == "recovery" for s in supervisor.switches
                )
                counts["recovery_errors"] += len(supervisor.errors)
            supervisor.reset()
        supervisor.act({"state": states[step]})

    result = soak(call, steps)
    result.update(counts)
    return result


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Both loops in this (torch-free) process."""
    pinned = pin_to_cpu(args.cpu)
    from robofail.monitor import Monitor

    monitor = Monitor.load(args.monitor)
    policy = SyntheticPolicy.create(
        monitor.embedding_dim, monitor.horizon, monitor.action_dim, args.samples, args.seed
    )
    pool = input_pool(policy, args.pool_episodes, EPISODE_INFERENCES, args.seed + 1)
    pairs = [pair for episode in pool for pair in episode]
    report = {
        "pinned_cpu": args.cpu if pinned else None,
        "method": monitor.method,
        "monitor": monitor_loop(args.monitor, pairs, args.updates),
        "supervisor": supervisor_loop(args.monitor, args.recovery, pairs, args.steps),
    }
    report["torch_imported"] = "torch" in sys.modules
    return report


# --------------------------------------------------------------------------- main


def run_worker(args: argparse.Namespace, folder: Path, recovery: Path) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--worker", "--monitor", str(folder), "--recovery",
        str(recovery), "--updates", str(args.updates), "--steps", str(args.steps), "--cpu",
        str(args.cpu), "--samples", str(args.samples), "--seed", str(args.seed),
        "--pool-episodes", str(args.pool_episodes),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"soak worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nsoak, one core (cpu {report['pinned_cpu']}), torch imported: "
        f"{report['torch_imported']}; latency in us, first / last 10 % of the calls"
    )
    header = ("calls", "RSS MB", "growth", "med", "med'", "p99", "p99'", "drift p99", "cpu p99'")
    print(f"{'loop':<12}" + "".join(f"{h:>11}" for h in header))
    for name in ("monitor", "supervisor"):
        part = report[name]
        first, last, drift = part["first_tenth"], part["last_tenth"], part["drift_percent"]
        cells = [
            f"{part['calls']:>11d}",
            f"{part['rss_mb']['end']:>11.1f}",
            f"{part['growth_after_warmup_mb']:>+11.3f}",
            f"{first['median_us']:>11.1f}",
            f"{last['median_us']:>11.1f}",
            f"{first['p99_us']:>11.1f}",
            f"{last['p99_us']:>11.1f}",
            f"{drift['p99']:>+10.1f}%",
            f"{drift['cpu_p99']:>+10.1f}%",
        ]
        print(f"{name:<12}" + "".join(cells))
    targets = report["targets"]
    print(
        f"monitor RSS growth after warm-up {report['monitor']['growth_after_warmup_mb']:+.3f} MB "
        f"(target < {MEMORY_LIMIT_MB} MB: {'met' if targets['memory_met'] else 'NOT met'}); "
        f"p99 drift {report['monitor']['drift_percent']['p99']:+.1f} % wall-clock, "
        f"{report['monitor']['drift_percent']['cpu_p99']:+.1f} % CPU time (target < "
        f"{DRIFT_LIMIT_PERCENT:.0f} %: {'met' if targets['drift_met'] else 'NOT met'})"
    )
    print(
        f"supervisor: {report['supervisor']['switches_to_recovery']} switches to recovery, "
        f"{report['supervisor']['recovery_errors']} recovery errors; monitor alarm rate "
        f"{report['monitor']['alarm_rate']:.2f}"
    )
    print(f"load average before {report['load_before']}, after {report['load_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitor", type=Path, help="existing artifact (default: synthesise)")
    parser.add_argument("--recovery", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--updates", type=int, default=1_000_000, help="Monitor.update calls")
    parser.add_argument("--steps", type=int, default=100_000, help="Supervisor.act calls")
    parser.add_argument("--samples", type=int, default=32, help="B, sampled chunks per update")
    parser.add_argument("--episodes", type=int, default=150, help="synthetic calibration episodes")
    parser.add_argument("--pool-episodes", type=int, default=20, help="pre-generated episodes")
    parser.add_argument("--cpu", type=int, default=default_cpu(), help="core to pin to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results/soak.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="soak_") as temp:
        folder = args.monitor
        if folder is None:
            folder = Path(temp) / "artifact"
            policy = SyntheticPolicy.create(128, 16, 5, args.samples, args.seed)
            start = time.perf_counter()
            build_artifact(policy, folder, args.episodes, args.seed)
            print(f"calibrated a synthetic artifact in {time.perf_counter() - start:.1f} s")
        calibration = json.loads((folder / "calibration.json").read_text())
        recovery = Path(temp) / "recovery.onnx"
        export_recovery(recovery, calibration["action_dim"])
        report: dict[str, Any] = {
            "benchmark": "soak",
            "artifact": str(args.monitor or f"synthetic ({args.episodes} episodes)"),
            "samples": args.samples,
            "horizon": calibration["horizon"],
            "action_dim": calibration["action_dim"],
            "embedding_dim": calibration["embedding_dim"],
            **run_worker(args, folder, recovery),
        }
    report["load_before"] = load_before
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    monitor = report["monitor"]
    report["targets"] = {
        "memory_growth_mb_max": MEMORY_LIMIT_MB,
        "p99_drift_percent_max": DRIFT_LIMIT_PERCENT,
        "memory_met": monitor["growth_after_warmup_mb"] < MEMORY_LIMIT_MB,
        "drift_met": abs(monitor["drift_percent"]["p99"]) < DRIFT_LIMIT_PERCENT,
        "drift_met_cpu_time": abs(monitor["drift_percent"]["cpu_p99"]) < DRIFT_LIMIT_PERCENT,
    }
    report["machine"] = machine_info()
    report["command"] = " ".join(["python", *sys.argv])
    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
