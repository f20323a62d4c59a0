"""The reference policy: a conditional flow-matching model over action chunks (torch).

Observation window -> encoder -> embedding ``e`` (what the monitor sees) -> velocity field
``v(x_t, t, e)`` over flattened action chunks. Training regresses ``v`` onto ``x1 - x0`` along the
straight path ``x_t = (1 - t) x0 + t x1`` from Gaussian noise ``x0`` to a normalised expert chunk
``x1`` (rectified flow / conditional flow matching). Sampling integrates ``dx/dt = v`` from noise
with a few Euler steps; ``n`` samples for one observation are one batched pass per step.

Normalisation lives inside the model (buffers): states by the training data's mean and std,
actions by its min and max to [-1, 1], so a saved policy needs nothing else to run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robofail.errors import CorruptFileError, InvalidInputError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SCHEMA_VERSION = 1


@dataclass
class FlowPolicyConfig:
    """Shape and size of a flow-matching chunk policy."""

    task: str
    """Task (or dataset) name the policy was trained for."""
    state_names: list[str]
    """Names of the S state-observation fields."""
    action_names: list[str]
    """Names of the A action dims."""
    position_dims: list[int]
    """Indices of the action dims that are end-effector positions."""
    obs_horizon: int = 2
    """Observations per window."""
    horizon: int = 16
    """Actions per chunk (H)."""
    exec_horizon: int = 8
    """Actions executed per inference."""
    embed_dim: int = 128
    """Size D of the observation embedding."""
    hidden: int = 512
    """Width of the velocity network."""
    blocks: int = 3
    """Residual blocks of the velocity network."""
    time_features: int = 32
    """Sinusoidal features of the flow time t."""
    inference_steps: int = 8
    """Euler steps from noise to a chunk."""
    image_size: list[int] = field(default_factory=list)
    """[H, W] of the image observation when the policy sees images, else []."""

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def validate(self) -> None:
        if not 1 <= self.exec_horizon <= self.horizon:
            raise InvalidInputError(
                f"exec_horizon must be in [1, horizon={self.horizon}], got {self.exec_horizon}"
            )
        for name in ("obs_horizon", "horizon", "embed_dim", "hidden", "blocks", "inference_steps"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        bad = [d for d in self.position_dims if not 0 <= d < self.action_dim]
        if bad:
            raise InvalidInputError(f"position_dims {bad} outside 0..{self.action_dim - 1}")

    @classmethod
    def from_json(cls, data: dict) -> FlowPolicyConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(f"unknown policy config fields: {sorted(unknown)}")
        return cls(**data)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Mish())
    return nn.Sequential(*layers)


class ImageEncoder(nn.Module):
    """Small CNN: (B, 3, H, W) uint8-range floats -> (B, 64) features."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 5, stride=2, padding=2),
            nn.Mish(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.Mish(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.Mish(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images / 127.5 - 1.0)


class ResidualBlock(nn.Module):
    """LayerNorm -> Linear -> Mish -> Linear, added back, conditioned by FiLM on ``cond``."""

    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(cond_dim, 2 * width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).chunk(2, dim=-1)
        h = self.norm(x) * (1 + scale) + shift
        return x + self.fc2(nn.functional.mish(self.fc1(h)))


class FlowChunkModel(nn.Module):
    """Encoder + velocity field. Inputs are raw (unnormalised) observations and actions."""

    def __init__(self, config: FlowPolicyConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        s, a, h = config.state_dim, config.action_dim, config.horizon
        self.register_buffer("state_mean", torch.zeros(s))
        self.register_buffer("state_std", torch.ones(s))
        self.register_buffer("action_low", -torch.ones(a))
        self.register_buffer("action_high", torch.ones(a))
        self.image_encoder = ImageEncoder() if config.image_size else None
        encoder_in = config.obs_horizon * (s + (64 if config.image_size else 0))
        self.encoder = nn.Sequential(
            _mlp([encoder_in, 256, 256, config.embed_dim]), nn.LayerNorm(config.embed_dim)
        )
        cond_dim = config.embed_dim + config.time_features
        self.inp = nn.Linear(h * a, config.hidden)
        self.blocks = nn.ModuleList(
            ResidualBlock(config.hidden, cond_dim) for _ in range(config.blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(config.hidden), nn.Linear(config.hidden, h * a))

    def set_normalisation(self, states: np.ndarray, actions: np.ndarray) -> None:
        """Fit the normalisation from training data: states (N, S), actions (N, A)."""
        std = np.maximum(states.std(axis=0), 1e-3)
        low, high = actions.min(axis=0), actions.max(axis=0)
        span = np.maximum(high - low, 1e-3)
        mid = (high + low) / 2
        self.state_mean.copy_(torch.as_tensor(states.mean(axis=0), dtype=torch.float32))
        self.state_std.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.action_low.copy_(torch.as_tensor(mid - span / 2, dtype=torch.float32))
        self.action_high.copy_(torch.as_tensor(mid + span / 2, dtype=torch.float32))

    def embed(self, states: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """Embedding (B, D) of observation windows: states (B, obs_horizon, S), images
        (B, obs_horizon, H, W, 3) or None."""
        x = ((states - self.state_mean) / self.state_std).flatten(1)
        if self.image_encoder is not None:
            if images is None:
                raise InvalidInputError("this policy needs image observations ('image' key)")
            b, k = images.shape[:2]
            pixels = images.reshape(b * k, *images.shape[2:]).permute(0, 3, 1, 2).float()
            features = self.image_encoder(pixels).reshape(b, -1)
            x = torch.cat([x, features], dim=1)
        return self.encoder(x)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Velocity (B, H*A) at normalised chunks x (B, H*A), times t (B,), embeddings (B, D)."""
        half = self.config.time_features // 2
        freqs = torch.exp(torch.arange(half, device=x.device) * (-math.log(1000.0) / half))
        angles = 100.0 * t[:, None] * freqs[None]
        cond = torch.cat([embedding, angles.sin(), angles.cos()], dim=1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(h)

    def normalise_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return 2 * (actions - self.action_low) / (self.action_high - self.action_low) - 1

    def denormalise_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return (actions + 1) / 2 * (self.action_high - self.action_low) + self.action_low

    def loss(
        self, states: torch.Tensor, chunks: torch.Tensor, images: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Flow-matching loss of a batch: states (B, obs_horizon, S), chunks (B, H, A)."""
        x1 = self.normalise_actions(chunks).flatten(1)
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0], device=x1.device)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        predicted = self.velocity(xt, t, self.embed(states, images))
        return nn.functional.mse_loss(predicted, x1 - x0)

    @torch.no_grad()
    def sample(self, embedding: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Integrate the flow from ``noise`` (B, H*A) given embeddings (B, D); chunks (B, H, A)."""
        x = noise
        steps = self.config.inference_steps
        for k in range(steps):
            t = torch.full((x.shape[0],), k / steps, device=x.device)
            x = x + self.velocity(x, t, embedding) / steps
        chunks = x.reshape(-1, self.config.horizon, self.config.action_dim).clamp(-1.5, 1.5)
        return self.denormalise_actions(chunks)


class FlowChunkPolicy:
    """A trained :class:`FlowChunkModel` behind the :class:`ChunkPolicy` protocol (CPU, eval)."""

    def __init__(self, model: FlowChunkModel) -> None:
        self.model = model.eval()
        config = model.config
        self.config = config
        self.horizon = config.horizon
        self.exec_horizon = config.exec_horizon
        self.obs_horizon = config.obs_horizon
        self.action_names = list(config.action_names)
        self.position_dims = list(config.position_dims)
        self.fingerprint = fingerprint(model)

    def _tensors(self, obs) -> tuple[torch.Tensor, torch.Tensor | None]:
        states = np.asarray(obs["state"], dtype=np.float32)
        expected = (self.obs_horizon, self.config.state_dim)
        if states.shape != expected or not np.all(np.isfinite(states)):
            raise InvalidInputError(
                f"policy for {self.config.task}: obs['state'] must be a finite {expected} window "
                f"(obs_horizon x state fields), got shape {states.shape}"
            )
        images = None
        if self.config.image_size:
            if "image" not in obs:
                raise InvalidInputError("this policy needs image observations ('image' key)")
            images = torch.as_tensor(np.asarray(obs["image"]))[None]
        return torch.as_tensor(states)[None], images

    @torch.no_grad()
    def embed(self, obs) -> np.ndarray:
        """Embedding (D,) float32 of an observation window."""
        states, images = self._tensors(obs)
        return self.model.embed(states, images)[0].numpy()

    @torch.no_grad()
    def sample_chunks(self, obs, n: int, seed: int) -> np.ndarray:
        """``n`` chunks (n, H, A) float32 for one window, one batched pass per Euler step."""
        if n < 1:
            raise InvalidInputError(f"number of sampled chunks must be >= 1, got {n}")
        states, images = self._tensors(obs)
        embedding = self.model.embed(states, images).expand(n, -1)
        generator = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(n, self.horizon * self.config.action_dim, generator=generator)
        return self.model.sample(embedding, noise).numpy()

    def save(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` (with fingerprint) and ``model.safetensors`` to ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        tmp_weights = out / f".{WEIGHTS_FILE}.tmp"
        save_file(weights, str(tmp_weights))
        tmp_weights.replace(out / WEIGHTS_FILE)
        record = {
            "schema_version": SCHEMA_VERSION,
            "kind": "flow_chunk_policy",
            "fingerprint": self.fingerprint,
            "config": asdict(self.config),
        }
        tmp_config = out / f".{CONFIG_FILE}.tmp"
        tmp_config.write_text(json.dumps(record, indent=2))
        tmp_config.replace(out / CONFIG_FILE)
        return out

    @classmethod
    def load(cls, policy_dir: str | Path) -> FlowChunkPolicy:
        """Load a policy saved by :meth:`save`; refuses weights that do not fit the config."""
        folder = Path(policy_dir)
        config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise InvalidInputError(
                    f"{path} not found: {folder} is not a saved policy (train one with "
                    "`robofail train-policy`)"
                )
        try:
            record = json.loads(config_path.read_text())
            kind = record.get("kind")
            if kind != "flow_chunk_policy":
                what = (
                    "holds a recovery policy"
                    if kind == "robofail_recovery_model"
                    else f"has a {CONFIG_FILE} of another kind ({kind!r})"
                )
                raise InvalidInputError(
                    f"{folder} {what}, not a base policy: pass the folder `robofail train-policy` "
                    "wrote"
                )
            config = FlowPolicyConfig.from_json(record["config"])
        except (
            UnicodeDecodeError,
            json.JSONDecodeError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            raise CorruptFileError(f"{config_path}: not a policy config ({exc})") from None
        if record.get("schema_version") != SCHEMA_VERSION:
            raise CorruptFileError(
                f"{config_path}: schema version {record.get('schema_version')}, "
                f"this robofail reads {SCHEMA_VERSION}; re-train or upgrade"
            )
        model = FlowChunkModel(config)
        try:
            weights = load_file(str(weights_path))
        except Exception as exc:  # safetensors raises its own error types
            raise CorruptFileError(f"{weights_path}: not a safetensors file ({exc})") from None
        expected = model.state_dict()
        mismatched = sorted(
            name
            for name in set(expected) | set(weights)
            if name not in weights
            or name not in expected
            or weights[name].shape != expected[name].shape
        )
        if mismatched:
            raise InvalidInputError(
                f"{weights_path}: weights do not fit the config in {config_path} "
                f"(mismatched: {', '.join(mismatched[:5])}); were they saved for another policy?"
            )
        model.load_state_dict(weights)
        policy = cls(model)
        if record.get("fingerprint") not in (None, policy.fingerprint):
            raise CorruptFileError(
                f"{folder}: fingerprint in {CONFIG_FILE} does not match the weights "
                "(files from two different policies?)"
            )
        return policy


def fingerprint(model: FlowChunkModel) -> str:
    """sha256 (hex, first 16 chars) of the config JSON and every weight's bytes, in name order."""
    digest = hashlib.sha256(json.dumps(asdict(model.config), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
