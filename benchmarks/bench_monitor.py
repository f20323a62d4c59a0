"""Latency and memory of the streaming failure monitor, ``Monitor.update(embedding, chunks)``.

What is measured, on ONE core (the process's threads pinned to ``--cpu``; onnxruntime, torch and
BLAS on one thread), for the artifact's default method (``robofail``: RND through onnxruntime +
ACE in numpy + window sums + thresholds) with B = 32 sampled chunks of H = 16 steps, A = 5:

1. **Artifact.** By default a calibration artifact is built from synthetic monitored episodes
   (150 successful nominal episodes of ~10 inferences, embeddings (K, 128) float32, chunks
   (K, 32, 16, 5) float32 from a seeded generator) with ``robofail.monitor.calibrate.calibrate``
   into a temporary folder; ``--monitor DIR`` benchmarks an existing artifact instead (D, H, A
   from its ``calibration.json``, inputs still synthetic).
2. **Latency** of ``Monitor.update``: median and p99 (microseconds) over ``--latency-updates``
   updates after warm-up, in episodes of ``--episode-length`` inferences (``reset()`` between
   them, not timed), inputs pre-generated (a pool reused cyclically, half nominal-like, half
   shifted so that alarms happen), ``time.perf_counter_ns`` around each call. The thread CPU
   time of each call is recorded too (``time.thread_time_ns``): on a shared machine the
   wall-clock p99 is set by other jobs' time slices, and the fraction of calls during which the
   thread lost its core (wall - CPU > 100 us, column ``desch %``) says how much.
   The first update after an episode of the *other* implementation on the same core runs on
   caches the other one just filled (after ~60 ms of torch: ~3x the median); those updates
   (one per such switch, about 1 in 60) are reported apart (``after_switch``), for both
   implementations, and the latency rows and the p99 target are over the others. A robot that
   runs its policy on the monitor's core pays the after-switch figure on every update.
   **At a control rate**, ``--paced-updates`` updates of each implementation in turn, one every
   ``--period-ms`` (default 100 ms: a 10 Hz controller), the thread asleep in between: what a
   robot's control loop sees, caches and predictors gone cold between calls (on the 2-core VM
   this was written on, an update after a 60 ms sleep takes ~5x a back-to-back one). Reported
   beside the back-to-back figures; the targets stay on the back-to-back ones.
3. **Torch-eager reference** of the *same* scores, timed the same way and interleaved episode by
   episode with the monitor (so machine load hits both alike): RND rebuilt in torch from the
   weights in the artifact's ``rnd.onnx`` (standardise, predictor and target MLPs, L2 norm of the
   difference), ACE in torch (floor to grid cells, ``torch.unique(dim=0, return_counts=True)``
   per prediction step, Shannon entropy in bits averaged over steps; the path integration adds
   step by step in float32 like numpy's ``cumsum``, so cell boundaries match bit for bit), window
   sums and threshold comparison, with the same finite-input check the monitor makes. Its raw
   scores, windowed scores, ratios and alarms are checked against the monitor's on every input
   of the pool (max relative difference printed; must be <= 1e-4, else the exit status is 1).
   Reported: monitor median / torch median (target <= 0.2) and the monitor's p99 (target
   <= 200 us).
4. **Memory and drift**, in a fresh process that imports no torch (what runs next to a robot):
   RSS after ``Monitor.load`` and after ``--updates`` updates (default 10^6, pool reused
   cyclically), growth in MB, and latency median / p99 (wall-clock and CPU time) of the first
   and last 10 % of those updates (drift in %).
5. A per-part breakdown (RND alone, ACE alone, for both implementations) to show where time goes.

Prints a table and writes JSON (default ``benchmarks/results/monitor.json``) with machine info.

    python benchmarks/bench_monitor.py [--monitor calib/pick_place] [--updates 1000000]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy / torch load their thread pools

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import numpy as np  # noqa: E402

from robofail.monitor import Monitor  # noqa: E402
from robofail.monitor.episodes import MonitoredEpisode  # noqa: E402
from robofail.monitor.scores import build_score  # noqa: E402

if TYPE_CHECKING:
    import torch

Inputs = list[list[tuple[np.ndarray, np.ndarray]]]
"""Benchmark inputs: episodes, each a list of (embedding (D,), chunks (B, H, A)) float32."""

LATENT = 8
EXEC_STEPS = 8
PARITY_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- synthetic inputs


@dataclass(frozen=True)
class SyntheticPolicy:
    """A stand-in for a chunk policy: embeddings and sampled chunks with some structure.

    The embedding is tanh of a random linear map of a low-dimensional latent (the task phase and
    noise); the B chunks are a phase-dependent straight path of delta positions plus per-sample
    noise, sized so that nominal ACE is ~3 of 5 bits (as in DESIGN.md's prototype). ``shifted``
    inferences move the latent and widen the samples (out of distribution).
    """

    dim: int
    horizon: int
    action_dim: int
    samples: int
    mixing: np.ndarray  # (LATENT, dim)

    @classmethod
    def create(
        cls, dim: int, horizon: int, action_dim: int, samples: int, seed: int
    ) -> SyntheticPolicy:
        mixing = np.random.default_rng(seed).normal(size=(LATENT, dim)) / math.sqrt(LATENT)
        return cls(dim, horizon, action_dim, samples, mixing)

    def inference(
        self, rng: np.random.Generator, phase: float, shifted: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(embedding (D,), chunks (B, H, A)) float32 of one inference at ``phase`` in [0, 1]."""
        latent = rng.normal(scale=0.3, size=LATENT)
        latent[0] += 2.0 * phase
        latent[1] += math.cos(math.pi * phase)
        if shifted:
            latent[2:] += 1.5
        embedding = np.tanh(latent @ self.mixing).astype(np.float32)
        direction = np.zeros(self.action_dim)
        direction[: min(3, self.action_dim)] = [
            math.cos(math.pi * phase),
            math.sin(math.pi * phase),
            0.5 * math.cos(2 * math.pi * phase),
        ][: min(3, self.action_dim)]
        base = 0.01 * direction[None, :] * np.ones((self.horizon, 1))
        spread = 0.003 if shifted else 0.001
        chunks = base[None] + rng.normal(
            scale=spread, size=(self.samples, self.horizon, self.action_dim)
        )
        return embedding, chunks.astype(np.float32)

    def episode(
        self, rng: np.random.Generator, length: int, shifted: bool
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``length`` inferences of one episode (phase 0 to 1)."""
        return [self.inference(rng, k / max(length - 1, 1), shifted) for k in range(length)]


def synthetic_episodes(policy: SyntheticPolicy, count: int, seed: int) -> list[MonitoredEpisode]:
    """``count`` successful nominal monitored episodes of 8 to 12 inferences."""
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(count):
        k = int(rng.integers(8, 13))
        pairs = policy.episode(rng, k, shifted=False)
        episodes.append(
            MonitoredEpisode(
                name=f"synthetic#{i}",
                embeddings=np.stack([e for e, _ in pairs]),
                chunks=np.stack([c for _, c in pairs]),
                inference_steps=np.arange(k, dtype=np.int64) * EXEC_STEPS,
                length=k * EXEC_STEPS,
                success=True,
                nominal=True,
                failure_step=-1,
                failure_type="none",
                family="nominal",
            )
        )
    return episodes


def input_pool(policy: SyntheticPolicy, episodes: int, length: int, seed: int) -> Inputs:
    """Pre-generated benchmark inputs: ``episodes`` episodes, every second one shifted."""
    rng = np.random.default_rng(seed)
    return [policy.episode(rng, length, shifted=i % 2 == 1) for i in range(episodes)]


def build_artifact(policy: SyntheticPolicy, out: Path, episodes: int, seed: int) -> dict:
    """Calibrate robofail, RND and ACE on synthetic successes into ``out``."""
    from robofail.monitor.calibrate import CalibrationSettings, calibrate

    settings = CalibrationSettings(seed=seed, methods=("robofail", "rnd", "ace"))
    return calibrate(
        synthetic_episodes(policy, episodes, seed),
        out,
        position_dims=[0, 1, 2],
        policy_fingerprint="",
        settings=settings,
        task="synthetic",
    )


# --------------------------------------------------------------------------- torch reference


def _mlp_layers(
    nodes: dict[str, Any], weights: dict[str, np.ndarray], output: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Walk back from ``output`` through Add(MatMul(x, W), b) / Relu nodes; return the affine
    layers in forward order and the name of the MLP's input."""
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    name = output
    while name in nodes and nodes[name].op_type in ("Add", "Relu"):
        node = nodes[name]
        if node.op_type == "Relu":
            name = node.input[0]
            continue
        matmul_out, bias = node.input
        matmul = nodes[matmul_out]
        if matmul.op_type != "MatMul" or bias not in weights:
            break
        layers.append((weights[matmul.input[1]], weights[bias]))
        name = matmul.input[0]
    return layers[::-1], name


def rnd_weights(path: Path) -> dict[str, Any]:
    """Mean, std and the predictor / target MLP layers of an RND score graph (``fit_rnd``)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = {node.output[0]: node for node in graph.node}
    name = graph.output[0].name
    while nodes[name].op_type in ("Identity", "Sqrt", "ReduceSumSquare"):
        name = nodes[name].input[0]
    difference = nodes[name]
    if difference.op_type != "Sub":
        raise ValueError(f"{path}: not an RND graph (expected Sub, found {difference.op_type})")
    predictor, start_p = _mlp_layers(nodes, weights, difference.input[0])
    target, start_t = _mlp_layers(nodes, weights, difference.input[1])
    divide = nodes.get(start_p)
    if start_p != start_t or divide is None or divide.op_type != "Div":
        raise ValueError(f"{path}: the two MLPs do not start from one standardised input")
    subtract = nodes[divide.input[0]]
    return {
        "mean": weights[subtract.input[1]],
        "std": weights[divide.input[1]],
        "predictor": predictor,
        "target": target,
    }


def _torch_mlp(layers: list[tuple[np.ndarray, np.ndarray]]) -> torch.nn.Sequential:
    import torch
    from torch import nn

    modules: list[nn.Module] = []
    for i, (weight, bias) in enumerate(layers):
        linear = nn.Linear(*weight.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight.T.copy()))
            linear.bias.copy_(torch.from_numpy(bias.copy()))
        modules.append(linear)
        if i < len(layers) - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval().requires_grad_(False)


class TorchRnd:
    """RND score in torch eager: ||f(x) - g(x)||_2, x the standardised embedding."""

    def __init__(self, path: Path) -> None:
        import torch

        w = rnd_weights(path)
        self.mean = torch.from_numpy(w["mean"].copy())
        self.std = torch.from_numpy(w["std"].copy())
        self.predictor = _torch_mlp(w["predictor"])
        self.target = _torch_mlp(w["target"])

    def __call__(self, embedding: torch.Tensor) -> float:
        import torch

        x = ((embedding - self.mean) / self.std)[None]
        difference = self.predictor(x) - self.target(x)
        return float(torch.linalg.vector_norm(difference))


class TorchAce:
    """ACE in torch eager: per prediction step, the entropy (bits) of the B samples' cells.

    The integration over the chunk (``cumulative``) adds step by step in float32, as numpy's
    ``cumsum`` does (``torch.cumsum`` accumulates in double and can put a point in the
    neighbouring cell), and cells are floor(position * (1 / cell)) in float64, as in the monitor.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        import torch

        self.dims = torch.as_tensor(spec["position_dims"], dtype=torch.long)
        self.cumulative = bool(spec["cumulative"])
        self.inverse_cell = 1.0 / torch.as_tensor(spec["cell"], dtype=torch.float64)

    def __call__(self, chunks: torch.Tensor) -> float:
        import torch

        b, h = chunks.shape[:2]
        positions = chunks.index_select(2, self.dims)
        if self.cumulative:
            positions = positions.clone()
            for step in range(1, h):
                positions[:, step] += positions[:, step - 1]
        cells = torch.floor(positions.double() * self.inverse_cell).long()
        cells.clamp_(-((1 << 19) - 1), (1 << 19) - 1)
        total = torch.zeros((), dtype=torch.float64)
        for step in range(h):
            _, counts = torch.unique(cells[:, step], dim=0, return_counts=True)
            p = counts.double() / b
            total -= (p * torch.log2(p)).sum()
        return float(total / h)


class TorchMonitor:
    """The monitor's method (RND and/or ACE, windows, thresholds) written in torch eager."""

    def __init__(self, folder: Path, method: str) -> None:
        calibration = json.loads((folder / "calibration.json").read_text())
        rule = calibration["methods"][method]
        self.names: list[str] = list(rule["scores"])
        self.scorers: list[Callable[[torch.Tensor, torch.Tensor], float]] = []
        for name in self.names:
            spec = calibration["scores"][name]
            if name == "rnd":
                rnd = TorchRnd(folder / spec["file"])
                self.scorers.append(lambda e, c, rnd=rnd: rnd(e))
            elif name == "ace":
                ace = TorchAce(spec)
                self.scorers.append(lambda e, c, ace=ace: ace(c))
            else:
                raise ValueError(f"the torch reference knows rnd and ace, not {name!r}")
        self.windows = [deque(maxlen=w) for w in rule["windows"]]
        self.thresholds: list[list[float]] = rule["thresholds"]
        self.any = rule["combine"] == "any"
        self.step = 0

    def reset(self) -> None:
        for window in self.windows:
            window.clear()
        self.step = 0

    def update(self, embedding: np.ndarray, chunks: np.ndarray) -> dict[str, Any]:
        import torch

        e, c = torch.from_numpy(embedding), torch.from_numpy(chunks)
        if not (bool(torch.isfinite(e).all()) and bool(torch.isfinite(c).all())):
            raise ValueError("non-finite input")
        raw, windowed, ratios, fired = {}, {}, {}, []
        for name, scorer, window, band in zip(
            self.names, self.scorers, self.windows, self.thresholds, strict=True
        ):
            value = scorer(e, c)
            window.append(value)
            total = sum(window)
            threshold = band[min(self.step, len(band) - 1)]
            raw[name], windowed[name], ratios[name] = value, total, total / threshold
            if total > threshold:
                fired.append(name)
        self.step += 1
        alarm = bool(fired) if self.any else len(fired) == len(self.names)
        return {"raw": raw, "windowed": windowed, "ratios": ratios, "alarm": alarm}


# --------------------------------------------------------------------------- measuring


def pin_to_cpu(cpu: int) -> bool:
    """Pin every thread of this process to ``cpu``; False where affinity is not available."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task), {cpu})
    os.sched_setaffinity(0, {cpu})
    return True


def rss_mb() -> float:
    """Resident set size of this process in MB (10^6 bytes)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # peak, KB on Linux


def summary_us(wall: np.ndarray, cpu: np.ndarray | None = None) -> dict[str, float]:
    """Median, p90, p99, mean (microseconds) of wall-clock latencies in ns and, given the
    thread CPU time of the same calls, its median and p99 (what the code costs while the thread
    runs) and the fraction of calls during which the thread lost its core for over 100 us
    (wall - CPU time > 100 us: on a shared machine, other jobs' time slices)."""
    result = {
        "median_us": float(np.median(wall)) / 1e3,
        "p90_us": float(np.percentile(wall, 90)) / 1e3,
        "p99_us": float(np.percentile(wall, 99)) / 1e3,
        "mean_us": float(np.mean(wall)) / 1e3,
    }
    if cpu is not None:
        result["cpu_median_us"] = float(np.median(cpu)) / 1e3
        result["cpu_p99_us"] = float(np.percentile(cpu, 99)) / 1e3
        result["descheduled_fraction"] = float(np.mean(wall - cpu > 100_000))
    return result


def interleaved_latency(
    impls: dict[str, tuple[Callable[[], None], Callable[[np.ndarray, np.ndarray], Any]]],
    pool: Inputs,
    updates: int,
    warmup: int,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-update wall-clock and thread CPU time (ns) of each (reset, update) pair, run episode
    by episode in turn (the order alternates), ``warmup`` untimed updates first; and a mask
    (updates,) bool of the updates that came right after the *other* implementation's episode
    on the same core (the first of an episode whose predecessor was the other one)."""
    names = list(impls)
    times = {
        name: (np.empty(updates, np.int64), np.empty(updates, np.int64), np.zeros(updates, bool))
        for name in names
    }
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for name in names:
        reset, update = impls[name]
        done, episode = 0, 0
        while done < warmup:
            reset()
            for embedding, chunks in pool[episode % len(pool)]:
                update(embedding, chunks)
            done += len(pool[episode % len(pool)])
            episode += 1
    filled, episode, previous = 0, 0, names[-1]
    while filled < updates:
        inputs = pool[episode % len(pool)][: updates - filled]
        order = names if episode % 2 == 0 else names[::-1]
        for name in order:
            reset, update = impls[name]
            wall, cpu, after_switch = times[name]
            after_switch[filled] = previous != name
            previous = name
            reset()
            for i, (embedding, chunks) in enumerate(inputs, start=filled):
                cpu_start = cpu_clock()
                start = clock()
                update(embedding, chunks)
                wall[i] = clock() - start
                cpu[i] = cpu_clock() - cpu_start
        filled += len(inputs)
        episode += 1
    return times


def paced_latency(
    impls: dict[str, tuple[Callable[[], None], Callable[[np.ndarray, np.ndarray], Any]]],
    pool: Inputs,
    updates: int,
    period_s: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-update wall-clock and thread CPU time (ns) when updates come at a control rate: one
    update of each implementation in turn every ``period_s`` seconds, the thread asleep in
    between (as a controller at 1 / ``period_s`` Hz leaves the core), episodes as in the pool."""
    times = {name: (np.empty(updates, np.int64), np.empty(updates, np.int64)) for name in impls}
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    flat = [(i == 0, pair) for episode in pool for i, pair in enumerate(episode)]
    for k in range(updates):
        first, (embedding, chunks) = flat[k % len(flat)]
        for name, (reset, update) in impls.items():
            if first:
                reset()
            time.sleep(period_s)
            wall, cpu = times[name]
            cpu_start = cpu_clock()
            start = clock()
            update(embedding, chunks)
            wall[k] = clock() - start
            cpu[k] = cpu_clock() - cpu_start
    return times


def part_latency(fn: Callable[[Any], Any], arguments: list[Any], calls: int) -> np.ndarray:
    """Latency (ns) of ``fn(argument)`` over ``calls`` calls cycling through ``arguments``."""
    for argument in arguments[:200]:
        fn(argument)
    out = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        argument = arguments[i % len(arguments)]
        start = clock()
        fn(argument)
        out[i] = clock() - start
    return out


def parity(monitor: Monitor, reference: TorchMonitor, pool: Inputs) -> dict[str, Any]:
    """Run both over every input of the pool; max relative differences and alarm agreement."""
    worst: dict[str, float] = {"raw": 0.0, "windowed": 0.0, "ratios": 0.0}
    alarms = disagreements = count = 0
    for episode in pool:
        monitor.reset()
        reference.reset()
        for embedding, chunks in episode:
            verdict = monitor.update(embedding, chunks)
            expected = reference.update(embedding, chunks)
            for key, ours in (
                ("raw", verdict.scores),
                ("windowed", verdict.windowed),
                ("ratios", verdict.ratios),
            ):
                for name, value in ours.items():
                    other = expected[key][name]
                    scale = max(abs(value), abs(other), 1e-12)
                    worst[key] = max(worst[key], abs(value - other) / scale)
            alarms += verdict.alarm
            disagreements += verdict.alarm != expected["alarm"]
            count += 1
    return {
        "updates": count,
        "max_relative_difference": worst,
        "alarm_rate": alarms / count,
        "alarm_disagreements": disagreements,
        "within_tolerance": max(worst.values()) <= PARITY_TOLERANCE and disagreements == 0,
    }


# --------------------------------------------------------------------------- memory worker


def memory_worker(args: argparse.Namespace) -> dict[str, Any]:
    """In this (torch-free) process: RSS around ``args.updates`` updates, and latency drift."""
    pinned = pin_to_cpu(args.cpu)
    before_load = rss_mb()
    monitor = Monitor.load(args.monitor, method=args.method)
    after_load = rss_mb()
    policy = SyntheticPolicy.create(
        monitor.embedding_dim, monitor.horizon, monitor.action_dim, args.samples, args.seed
    )
    pool = input_pool(policy, args.pool_episodes, args.episode_length, args.seed + 1)
    flat = [pair for episode in pool for pair in episode]
    n, length = args.updates, args.episode_length
    wall, cpu = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    wall.fill(1)  # touch every page now: the timing arrays must not grow RSS during the run
    cpu.fill(1)
    after_inputs = rss_mb()
    checkpoints = max(1, n // 10)
    rss_trace = [after_inputs]
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    update = monitor.update
    for i in range(n):
        if i % length == 0:
            monitor.reset()
        embedding, chunks = flat[i % len(flat)]
        cpu_start = cpu_clock()
        start = clock()
        update(embedding, chunks)
        wall[i] = clock() - start
        cpu[i] = cpu_clock() - cpu_start
        if (i + 1) % checkpoints == 0:
            rss_trace.append(rss_mb())
    after_run = rss_mb()
    tenth = max(1, n // 10)
    first = summary_us(wall[:tenth], cpu[:tenth])
    last = summary_us(wall[-tenth:], cpu[-tenth:])
    return {
        "updates": n,
        "pinned": pinned,
        "torch_imported": "torch" in sys.modules,
        "rss_mb": {
            "before_load": before_load,
            "after_load": after_load,
            "after_inputs_and_timing_arrays": after_inputs,
            "after_updates": after_run,
            "every_tenth": rss_trace,
        },
        "growth_mb": after_run - after_inputs,
        "growth_after_first_tenth_mb": after_run - rss_trace[1] if len(rss_trace) > 1 else 0.0,
        "all": summary_us(wall, cpu),
        "first_tenth": first,
        "last_tenth": last,
        "drift_percent": {
            key: 100.0 * (last[f"{key}_us"] / first[f"{key}_us"] - 1.0)
            for key in ("median", "p99", "cpu_median", "cpu_p99")
        },
    }


def run_memory_worker(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Run :func:`memory_worker` in a fresh interpreter and return its JSON report."""
    command = [
        sys.executable,
        __file__,
        "--memory-worker",
        "--monitor",
        str(folder),
        "--updates",
        str(args.updates),
        "--cpu",
        str(args.cpu),
        "--samples",
        str(args.samples),
        "--seed",
        str(args.seed),
        "--pool-episodes",
        str(args.pool_episodes),
        "--episode-length",
        str(args.episode_length),
    ]
    if args.method:
        command += ["--method", args.method]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def default_cpu() -> int:
    """The highest-numbered core this process may run on (0 without affinity support)."""
    if hasattr(os, "sched_getaffinity"):
        return max(os.sched_getaffinity(0))
    return 0


def machine_info() -> dict[str, Any]:
    """Platform, CPU and library versions for the JSON report."""
    import onnxruntime

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def benchmark(args: argparse.Namespace, folder: Path, calibration: dict) -> dict[str, Any]:
    """Parity check, interleaved latency of monitor and torch reference, per-part latency."""
    import torch

    torch.set_num_threads(1)
    pinned = pin_to_cpu(args.cpu)
    monitor = Monitor.load(folder, method=args.method)
    method = monitor.method
    reference = TorchMonitor(folder, method)
    policy = SyntheticPolicy.create(
        monitor.embedding_dim, monitor.horizon, monitor.action_dim, args.samples, args.seed
    )
    pool = input_pool(policy, args.pool_episodes, args.episode_length, args.seed + 1)

    with torch.inference_mode():
        check = parity(monitor, reference, pool)
        times = interleaved_latency(
            {
                "monitor": (monitor.reset, monitor.update),
                "torch_eager": (reference.reset, reference.update),
            },
            pool,
            args.latency_updates,
            args.warmup,
        )
        paced = paced_latency(
            {
                "monitor": (monitor.reset, monitor.update),
                "torch_eager": (reference.reset, reference.update),
            },
            pool,
            args.paced_updates,
            args.period_ms / 1e3,
        )
        parts = _parts(folder, calibration, reference, pool, args.part_calls)
    latency = {name: summary_us(w[~after], c[~after]) for name, (w, c, after) in times.items()}
    after_switch = {name: summary_us(w[after], c[after]) for name, (w, c, after) in times.items()}
    return {
        "method": method,
        "pinned_cpu": args.cpu if pinned else None,
        "parity": check,
        "latency": latency,
        "after_switch": after_switch,
        "after_switch_updates": int(times["monitor"][2].sum()),
        "paced": {name: summary_us(wall, cpu) for name, (wall, cpu) in paced.items()},
        "paced_updates": args.paced_updates,
        "period_ms": args.period_ms,
        "median_ratio_monitor_over_torch": latency["monitor"]["median_us"]
        / latency["torch_eager"]["median_us"],
        "parts": parts,
    }


def _parts(
    folder: Path,
    calibration: dict,
    reference: TorchMonitor,
    pool: Inputs,
    calls: int,
) -> dict[str, dict[str, float]]:
    """Latency of each score alone, in the monitor's implementation and in torch."""
    import torch

    flat = [pair for episode in pool for pair in episode]
    parts: dict[str, dict[str, float]] = {}
    for name, scorer in zip(reference.names, reference.scorers, strict=True):
        score = build_score(calibration["scores"][name], folder)
        parts[f"{name} (monitor)"] = summary_us(
            part_latency(lambda pair, s=score: s.update(*pair), flat, calls)
        )
        tensors = [(torch.from_numpy(e), torch.from_numpy(c)) for e, c in flat]
        parts[f"{name} (torch)"] = summary_us(
            part_latency(lambda pair, s=scorer: s(*pair), tensors, calls)
        )
    parts["input check (monitor: 2x isfinite)"] = summary_us(
        part_latency(
            lambda pair: np.isfinite(pair[0]).all() and np.isfinite(pair[1]).all(), flat, calls
        )
    )
    return parts


def print_table(report: dict[str, Any]) -> None:
    latency = report["latency"]
    print(
        f"\nmethod {report['method']!r}, B={report['samples']}, H={report['horizon']}, "
        f"A={report['action_dim']}, D={report['embedding_dim']}, one core "
        f"(cpu {report['pinned_cpu']}), {report['latency_updates']} updates each"
    )
    header = ("median", "p90", "p99", "mean", "cpu med", "cpu p99", "desch %")
    print(f"{'wall-clock us per update':<38}" + "".join(f"{h:>9}" for h in header))
    rows = [(name, row) for name, row in latency.items()]
    rows.append((f"monitor, {report['memory']['updates']}-update run", report["memory"]["all"]))
    rows += [(f"  {name}", row) for name, row in report["parts"].items()]
    rows += [(f"{name}, after a switch", row) for name, row in report["after_switch"].items()]
    rows += [
        (f"{name}, one per {report['period_ms']:g} ms", row)
        for name, row in report["paced"].items()
    ]
    for name, row in rows:
        cells = [row["median_us"], row["p90_us"], row["p99_us"], row["mean_us"]]
        cells += [row.get("cpu_median_us"), row.get("cpu_p99_us")]
        descheduled = row.get("descheduled_fraction")
        cells.append(None if descheduled is None else 100.0 * descheduled)
        print(f"{name:<38}" + "".join(f"{'-':>9}" if c is None else f"{c:>9.1f}" for c in cells))
    ratio = report["median_ratio_monitor_over_torch"]
    p99 = latency["monitor"]["p99_us"]
    print(
        f"monitor / torch median ratio: {ratio:.3f} (target <= 0.2: "
        f"{'met' if ratio <= 0.2 else 'NOT met'})"
    )
    cpu_p99 = latency["monitor"]["cpu_p99_us"]
    print(
        f"monitor p99: {p99:.1f} us wall-clock, {cpu_p99:.1f} us CPU time (target <= 200 us: "
        f"{'met' if p99 <= 200 else 'NOT met'} wall-clock, "
        f"{'met' if cpu_p99 <= 200 else 'NOT met'} CPU time)"
    )
    check = report["parity"]
    diff = check["max_relative_difference"]
    print(
        f"parity over {check['updates']} updates: max rel. diff raw {diff['raw']:.2e}, "
        f"windowed {diff['windowed']:.2e}, ratios {diff['ratios']:.2e}; alarm rate "
        f"{check['alarm_rate']:.2f}, alarm disagreements {check['alarm_disagreements']} "
        f"({'ok' if check['within_tolerance'] else 'MISMATCH'})"
    )
    memory = report["memory"]
    rss = memory["rss_mb"]
    print(
        f"memory ({memory['updates']} updates, fresh process, torch imported: "
        f"{memory['torch_imported']}): RSS after load {rss['after_load']:.1f} MB, "
        f"after updates {rss['after_updates']:.1f} MB, growth {memory['growth_mb']:+.2f} MB "
        f"({memory['growth_after_first_tenth_mb']:+.2f} MB after the first tenth)"
    )
    first, last = memory["first_tenth"], memory["last_tenth"]
    drift = memory["drift_percent"]
    for name, key in (("wall-clock", ""), ("CPU time", "cpu_")):
        print(
            f"drift, {name}: first 10 % median {first[f'{key}median_us']:.1f} / p99 "
            f"{first[f'{key}p99_us']:.1f} us, last 10 % median {last[f'{key}median_us']:.1f} / "
            f"p99 {last[f'{key}p99_us']:.1f} us ({drift[f'{key}median']:+.1f} % / "
            f"{drift[f'{key}p99']:+.1f} %)"
        )
    print(
        f"descheduled (wall - CPU > 100 us): {100 * first['descheduled_fraction']:.2f} % of the "
        f"first 10 %, {100 * last['descheduled_fraction']:.2f} % of the last 10 %"
    )
    print(f"load average before {report['load_before']}, after {report['load_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitor", type=Path, help="existing artifact (default: synthesise)")
    parser.add_argument("--method", help="method to run (default: the artifact's default)")
    parser.add_argument("--samples", type=int, default=32, help="B, sampled chunks per update")
    parser.add_argument("--dim", type=int, default=128, help="D of synthetic embeddings")
    parser.add_argument("--horizon", type=int, default=16, help="H of synthetic chunks")
    parser.add_argument("--action-dim", type=int, default=5, help="A of synthetic chunks")
    parser.add_argument("--episodes", type=int, default=150, help="synthetic calibration episodes")
    parser.add_argument("--episode-length", type=int, default=30, help="updates between resets")
    parser.add_argument("--pool-episodes", type=int, default=20, help="pre-generated episodes")
    parser.add_argument("--latency-updates", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--paced-updates", type=int, default=200, help="updates at a control rate")
    parser.add_argument("--period-ms", type=float, default=100.0, help="control period (100 ms)")
    parser.add_argument("--part-calls", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=1_000_000, help="memory / drift run")
    parser.add_argument("--cpu", type=int, default=default_cpu(), help="core to pin to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/monitor.json"))
    parser.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paced_updates < 1 or not args.period_ms >= 0:
        parser.error("--paced-updates must be >= 1 and --period-ms >= 0")

    if args.memory_worker:
        print(json.dumps(memory_worker(args)))
        return

    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench_monitor_") as temp:
        if args.monitor is None:
            folder = Path(temp) / "artifact"
            policy = SyntheticPolicy.create(
                args.dim, args.horizon, args.action_dim, args.samples, args.seed
            )
            start = time.perf_counter()
            calibration = build_artifact(policy, folder, args.episodes, args.seed)
            print(f"calibrated a synthetic artifact in {time.perf_counter() - start:.1f} s")
            source = f"synthetic ({args.episodes} episodes, seed {args.seed})"
        else:
            folder = args.monitor
            calibration = json.loads((folder / "calibration.json").read_text())
            source = str(folder)
        report: dict[str, Any] = {
            "benchmark": "monitor",
            "artifact": source,
            "samples": args.samples,
            "horizon": calibration["horizon"],
            "action_dim": calibration["action_dim"],
            "embedding_dim": calibration["embedding_dim"],
            "episode_length": args.episode_length,
            "latency_updates": args.latency_updates,
            "warmup": args.warmup,
        }
        report.update(benchmark(args, folder, calibration))
        if args.method is None:
            args.method = report["method"]
        report["memory"] = run_memory_worker(args, folder)
    report["load_before"] = load_before
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["targets"] = {
        "median_ratio_max": 0.2,
        "p99_us_max": 200.0,
        "ratio_met": report["median_ratio_monitor_over_torch"] <= 0.2,
        "p99_met": report["latency"]["monitor"]["p99_us"] <= 200.0,
    }
    report["machine"] = machine_info()
    report["command"] = " ".join(["python", *sys.argv])
    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    if not report["parity"]["within_tolerance"]:
        sys.exit("the torch reference and Monitor.update disagree (see parity above)")


if __name__ == "__main__":
    main()
