"""The recovery policy network (torch) and its ONNX export.

An MLP maps the last ``obs_horizon`` states (K, oldest first, each standardised inside the model,
then flattened) and, optionally, a one-hot failure type to an action chunk of H actions: tanh in
[-1, 1], mapped to the action bounds inside the model. With K = 1 the input is the current state
(N, S); with K > 1 it is the window (N, K, S). A window lets the policy average out observation
noise, see through stale (dropped) frames and use how the scene responded to its last actions,
which a single faulted observation cannot show. It is deterministic on purpose: recovery runs
after an alarm, where the base policy's multimodality has already gone wrong, and a single
regression head exports to a few matrix products that run in tens of microseconds.

Training pairs come from simulator-verified recoveries (the scripted expert taking over from
failure states): state at step t -> the expert's next H actions (padded with the last).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from robofail import __version__
from robofail.errors import InvalidInputError
from robofail.onnx_graph import GraphBuilder
from robofail.recovery.runtime import RECOVERY_KIND, RECOVERY_SCHEMA


@dataclass(frozen=True)
class RecoveryConfig:
    """Shape of a recovery policy."""

    task: str
    state_names: list[str]
    action_names: list[str]
    action_low: list[float]
    action_high: list[float]
    failure_types: list[str] = field(default_factory=list)
    horizon: int = 8
    exec_horizon: int = 4
    hidden: int = 256
    layers: int = 3
    obs_horizon: int = 1
    """States per input (K): the newest and the K - 1 before it, oldest first."""
    window_summary: bool = False
    """With K > 1, the MLP sees the window's mean and its newest state (2 S numbers) instead of
    all K S of them: a noise filter built in (the mean of K noisy states has 1/sqrt(K) of their
    noise) that a small network need not learn from a few hundred recoveries."""


def state_windows(states: np.ndarray, history: np.ndarray | None, length: int) -> np.ndarray:
    """(T, S) states of an episode -> (T, length, S) windows, oldest first, as the controller
    keeps them: the ``length`` - 1 states before each step come from ``states`` and, before its
    first step, from ``history`` (P, S) (the observations that preceded it, oldest first);
    missing ones repeat the earliest available state (an episode's window starts filled with its
    first observation)."""
    states = np.asarray(states)
    before = length - 1
    past = states[:0]
    if history is not None and before > 0:
        past = np.asarray(history, dtype=states.dtype)[-before:]
    earliest = past[:1] if len(past) else states[:1]
    padded = np.concatenate([np.repeat(earliest, before - len(past), axis=0), past, states])
    return padded[np.arange(len(states))[:, None] + np.arange(length)[None]]


def chunk_targets(
    actions: np.ndarray, horizon: int, position_dims: tuple[int, ...] | list[int] = ()
) -> np.ndarray:
    """(T, A) actions -> (T, H, A): the next H actions from every step; past the end, a hold
    action (0 on ``position_dims``, the last value elsewhere, e.g. the gripper command)."""
    t = len(actions)
    hold = actions[-1].copy()
    hold[list(position_dims)] = 0.0
    padded = np.concatenate([actions, np.repeat(hold[None], horizon - 1, axis=0)])
    return padded[np.arange(t)[:, None] + np.arange(horizon)[None]]


def summary_matrix(config: RecoveryConfig) -> np.ndarray | None:
    """(K S, 2 S) matrix taking a flattened window (oldest first) to [its mean, its newest
    state], or None when the network sees the window whole (``window_summary`` off or K = 1).
    Linear, so the export folds it into the first layer."""
    k, s = config.obs_horizon, len(config.state_names)
    if not config.window_summary or k == 1:
        return None
    eye = np.eye(s)
    newest = np.zeros((k * s, s))
    newest[-s:] = eye
    return np.concatenate([np.tile(eye / k, (k, 1)), newest], axis=1)


def build_network(config: RecoveryConfig, state_mean, state_std, seed: int):
    """The torch module: standardise, flatten the window (or summarise it, see
    :func:`summary_matrix`), MLP, tanh, map to the action bounds; (N, S) or (N, K, S) in,
    (N, H, A) out."""
    import torch
    from torch import nn

    summary = summary_matrix(config)

    class RecoveryNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(seed)
            s, f = len(config.state_names), len(config.failure_types)
            a = len(config.action_names)
            features = s * config.obs_horizon if summary is None else summary.shape[1]
            sizes = [features + f] + [config.hidden] * config.layers + [config.horizon * a]
            layers: list[nn.Module] = []
            for i in range(len(sizes) - 1):
                layers.append(nn.Linear(sizes[i], sizes[i + 1]))
                if i < len(sizes) - 2:
                    layers.append(nn.ReLU())
            self.mlp = nn.Sequential(*layers)
            as_tensor = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
            self.register_buffer("state_mean", as_tensor(state_mean))
            self.register_buffer("state_std", as_tensor(state_std))
            self.register_buffer("action_low", as_tensor(config.action_low))
            self.register_buffer("action_high", as_tensor(config.action_high))
            self.summary = None if summary is None else as_tensor(summary)

        def forward(self, state, failure=None):
            x = ((state - self.state_mean) / self.state_std).reshape(len(state), -1)
            if self.summary is not None:
                x = x @ self.summary
            if failure is not None:
                x = torch.cat([x, failure], dim=1)
            y = torch.tanh(self.mlp(x)).reshape(len(state), config.horizon, -1)
            return self.action_low + (y + 1) * 0.5 * (self.action_high - self.action_low)

    return RecoveryNet()


def train_recovery(
    states: np.ndarray,
    targets: np.ndarray,
    config: RecoveryConfig,
    *,
    failure_types: list[str] | None = None,
    steps: int = 3000,
    batch: int = 256,
    seed: int = 0,
):
    """Fit the network on pairs: states (N, S) (or windows (N, K, S) for ``config.obs_horizon``
    K > 1), targets (N, H, A), failure types (N,) names.

    Returns:
        (network, final loss).
    """
    import torch

    states = np.asarray(states, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    if len(states) < 2 or len(states) != len(targets):
        raise InvalidInputError(
            f"recovery training needs >= 2 (state, chunk) pairs of equal count, got "
            f"{len(states)} states and {len(targets)} chunks"
        )
    expected = (config.horizon, len(config.action_names))
    window = input_shape(config)
    if targets.shape[1:] != expected or states.shape[1:] != window:
        raise InvalidInputError(
            f"pairs have shapes {states.shape} / {targets.shape}, the config expects "
            f"(N, {', '.join(map(str, window))}) / (N, {expected[0]}, {expected[1]})"
        )
    flat = states.reshape(-1, states.shape[-1])
    mean, std = flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-6)
    net = build_network(config, mean, std, seed)
    x = torch.as_tensor(states)
    y = torch.as_tensor(targets)
    onehot = None
    if config.failure_types:
        names = list(failure_types or [])
        unknown = sorted({n for n in names if n not in config.failure_types})
        if len(names) != len(states) or unknown:
            raise InvalidInputError(f"failure types must name each pair; unknown: {unknown}")
        onehot = torch.zeros(len(states), len(config.failure_types))
        onehot[torch.arange(len(states)), [config.failure_types.index(n) for n in names]] = 1
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    loss = torch.zeros(())
    for _ in range(steps):
        index = torch.randint(len(x), (min(batch, len(x)),), generator=generator)
        predicted = net(x[index], None if onehot is None else onehot[index])
        loss = ((predicted - y[index]) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return net.eval(), float(loss.detach())


def input_shape(config: RecoveryConfig) -> tuple[int, ...]:
    """Shape of one input state: (S,), or (K, S) for a window of K > 1 states."""
    s = len(config.state_names)
    return (s,) if config.obs_horizon == 1 else (config.obs_horizon, s)


def fingerprint(net) -> str:
    """16 hex digits of sha256 over the network's parameters and buffers."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().astype(np.float32).tobytes())
    return digest.hexdigest()[:16]


def export_onnx(net, config: RecoveryConfig):
    """The network as a self-contained, checked ``onnx.ModelProto`` with dynamic batch: inputs
    ``state`` (N, S), or (N, K, S) for a window of K > 1 states, [and ``failure`` (N, F)
    one-hot], output ``chunk`` (N, H, A); the config, fingerprint and versions in
    ``metadata_props``."""
    import torch

    s, a = len(config.state_names), len(config.action_names)
    shape = input_shape(config)
    weights = [
        (m.weight.detach().double().numpy().T, m.bias.detach().double().numpy())
        for m in net.mlp
        if isinstance(m, torch.nn.Linear)
    ]
    summary = summary_matrix(config)
    if summary is not None:  # fold the window summary into the first layer's state rows
        first, bias = weights[0]
        state_rows = summary.shape[1]
        weights[0] = (np.vstack([summary @ first[:state_rows], first[state_rows:]]), bias)
    g = GraphBuilder("state", shape if len(shape) > 1 else s)
    x = g.standardise(g.input, net.state_mean.numpy(), net.state_std.numpy())
    if len(shape) > 1:
        x = g.op("Reshape", x, g.const(np.array([-1, s * config.obs_horizon]), "flat"))
    if config.failure_types:
        failure = g.add_input("failure", len(config.failure_types))
        x = g.op("Concat", x, failure, axis=1)
    y = g.op("Tanh", g.mlp(x, weights))
    low, high = net.action_low.numpy(), net.action_high.numpy()
    scale = np.tile(0.5 * (high - low), config.horizon)
    offset = np.tile(low + 0.5 * (high - low), config.horizon)
    y = g.op("Add", g.op("Mul", y, g.const(scale, "scale")), g.const(offset, "offset"))
    chunk = g.op("Reshape", y, g.const(np.array([-1, config.horizon, a]), "shape"))
    metadata = {
        "robofail_kind": RECOVERY_KIND,
        "schema": RECOVERY_SCHEMA,
        "task": json.dumps(config.task),
        "state_names": json.dumps(config.state_names),
        "action_names": json.dumps(config.action_names),
        "failure_types": json.dumps(config.failure_types),
        "horizon": json.dumps(config.horizon),
        "exec_horizon": json.dumps(config.exec_horizon),
        "obs_horizon": json.dumps(config.obs_horizon),
        "fingerprint": json.dumps(fingerprint(net)),
        "config": json.dumps(asdict(config)),
        "robofail_version": __version__,
        "torch_version": torch.__version__,
    }
    return g.model(
        chunk, "chunk", metadata, output_shape=("N", config.horizon, a), graph_name="recovery"
    )
