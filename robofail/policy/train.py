"""Train the reference flow-matching chunk policy on a stored dataset (any task, any env).

One function, :func:`train_flow_policy`, top to bottom: build (observation window, action chunk)
pairs from the successful episodes, fit the normalisation, regress the flow-matching velocity with
AdamW and a cosine schedule, keep an exponential moving average (EMA) of the weights, and return
the EMA policy with its loss curve.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from robofail.data import DatasetInfo, Episode
from robofail.errors import InvalidInputError
from robofail.figures import save_png
from robofail.policy.flow import FlowChunkModel, FlowChunkPolicy, FlowPolicyConfig


@dataclass
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 300
    """Passes over the (window, chunk) pairs."""
    batch_size: int = 256
    """Pairs per gradient step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, cosine decay to 0 after a short warm-up)."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    ema_decay: float = 0.999
    """Decay of the weight EMA that becomes the saved policy."""
    seed: int = 0
    """Seed of the weight init, batch order and flow noise."""
    threads: int = 0
    """torch CPU threads (0: leave torch's default)."""


@dataclass
class TrainResult:
    """What training produced."""

    policy: FlowChunkPolicy
    losses: list[float] = field(default_factory=list)
    """Mean loss per epoch."""
    seconds: float = 0.0
    """Wall time of the optimisation."""
    pairs: int = 0
    """Training (window, chunk) pairs."""
    episodes: int = 0
    """Successful episodes used."""


def chunk_pairs(
    episodes: Sequence[Episode], *, obs_horizon: int, horizon: int, position_dims: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(window, chunk) training pairs from episodes.

    Windows take the ``obs_horizon`` states ending at step t (padded with the first state);
    chunks take actions t .. t+H-1, padded past the episode's end with a hold action (0 on the
    position dims, the last value elsewhere).

    Returns:
        states (P, obs_horizon, S) float32, chunks (P, H, A) float32, images
        (P, obs_horizon, h, w, 3) uint8 or None when the episodes have no images.
    """
    all_states, all_chunks, all_images = [], [], []
    for episode in episodes:
        states, actions = episode.obs["state"], episode.actions
        steps = len(actions)
        hold = actions[-1].copy()
        hold[list(position_dims)] = 0.0
        padded = np.concatenate([actions, np.repeat(hold[None], horizon - 1, axis=0)])
        window_index = np.clip(np.arange(steps)[:, None] + np.arange(1 - obs_horizon, 1), 0, None)
        chunk_index = np.arange(steps)[:, None] + np.arange(horizon)
        all_states.append(states[window_index])
        all_chunks.append(padded[chunk_index])
        if "image" in episode.obs:
            all_images.append(episode.obs["image"][window_index])
    images = np.concatenate(all_images) if all_images else None
    return (
        np.concatenate(all_states).astype(np.float32),
        np.concatenate(all_chunks).astype(np.float32),
        images,
    )


def policy_config_for(
    info: DatasetInfo, position_dims: Sequence[int], **overrides
) -> FlowPolicyConfig:
    """A :class:`FlowPolicyConfig` matching a dataset's observation and action names."""
    return FlowPolicyConfig(
        task=info.task,
        state_names=list(info.obs_names["state"]),
        action_names=list(info.action_names),
        position_dims=list(position_dims),
        **overrides,
    )


def train_flow_policy(
    episodes: Sequence[Episode],
    config: FlowPolicyConfig,
    train: TrainConfig,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train a :class:`FlowChunkPolicy` on the successful ``episodes``.

    Raises:
        InvalidInputError: no successful episode, or episodes that do not match ``config``.
    """
    successes = [e for e in episodes if e.label.success]
    if not successes:
        raise InvalidInputError("no successful episode to learn from; collect demos first")
    for e in successes:
        if e.obs["state"].shape[1] != config.state_dim or e.actions.shape[1] != config.action_dim:
            raise InvalidInputError(
                f"episode shapes state {e.obs['state'].shape[1:]} / action {e.actions.shape[1:]} "
                f"do not match the policy's {config.state_dim} state fields / "
                f"{config.action_dim} actions"
            )
    if config.image_size and "image" not in successes[0].obs:
        raise InvalidInputError("an image policy needs a dataset recorded with images (--image)")
    if train.threads:
        torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    states, chunks, images = chunk_pairs(
        successes,
        obs_horizon=config.obs_horizon,
        horizon=config.horizon,
        position_dims=config.position_dims,
    )
    if not config.image_size:
        images = None
    model = FlowChunkModel(config)
    model.set_normalisation(
        np.concatenate([e.obs["state"] for e in successes]),
        np.concatenate([e.actions for e in successes]),
    )
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)

    states_t, chunks_t = torch.as_tensor(states), torch.as_tensor(chunks)
    images_t = torch.as_tensor(images) if images is not None else None
    n_pairs = len(states_t)
    batch = min(train.batch_size, n_pairs)
    steps_per_epoch = max(1, n_pairs // batch)
    total_steps = train.epochs * steps_per_epoch
    warmup = min(500, total_steps // 10)
    optimiser = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: (
            min(1.0, (s + 1) / max(1, warmup))
            * 0.5
            * (1 + np.cos(np.pi * min(1.0, s / max(1, total_steps))))
        ),
    )
    generator = torch.Generator().manual_seed(train.seed)
    losses: list[float] = []
    bar = _progress(train.epochs, progress)
    start = time.perf_counter()
    step = 0
    for _ in range(train.epochs):
        order = torch.randperm(n_pairs, generator=generator)
        epoch_loss = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            loss = model.loss(
                states_t[idx], chunks_t[idx], None if images_t is None else images_t[idx]
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            decay = min(train.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                    p_ema.lerp_(p, 1 - decay)
            epoch_loss += loss.item()
        losses.append(epoch_loss / steps_per_epoch)
        if bar is not None:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    return TrainResult(
        policy=FlowChunkPolicy(ema),
        losses=losses,
        seconds=time.perf_counter() - start,
        pairs=n_pairs,
        episodes=len(successes),
    )


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="train policy", unit="epoch")


def save_loss_curve(losses: Sequence[float], path: str | Path) -> Path:
    """Plot the per-epoch loss (log scale) to a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("flow-matching loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    save_png(fig, path, "loss_curve", dpi=120)
    plt.close(fig)
    return path
