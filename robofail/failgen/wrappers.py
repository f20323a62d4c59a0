"""Apply a :class:`Perturbation` to any MuJoCo-based gymnasium env as a wrapper.

The wrapper calls the perturbation's hooks around the wrapped env's ``reset`` and ``step`` and
reports it in ``info["perturbation"]`` (``{"kind", params..., "onset_step"}``). The env only needs
``unwrapped.model`` and ``unwrapped.data`` (robofail's tasks and gymnasium's own MuJoCo envs both
have them). Model edits are undone on the next reset and on ``close``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robofail.errors import InvalidInputError
from robofail.failgen.perturbation import Perturbation


class PerturbationWrapper(gym.Wrapper):
    """Run ``env`` under ``perturbation``; ``seed`` seeds the perturbation's own random draws
    (noise, timing) for each episode together with the reset seed."""

    def __init__(self, env: gym.Env, perturbation: Perturbation, *, seed: int = 0) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not (hasattr(base, "model") and hasattr(base, "data")):
            raise InvalidInputError(
                f"{type(base).__name__} is not MuJoCo-based (no unwrapped.model/data); "
                "perturbation wrappers need a MuJoCo env"
            )
        reason = perturbation.unsupported_reason(base)
        if reason:
            raise InvalidInputError(
                f"perturbation {perturbation.kind!r} cannot act on {type(base).__name__}: {reason}"
            )
        self.perturbation = perturbation
        self.seed = int(seed)
        self.steps = 0
        self._edited = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        base = self.env.unwrapped
        if self._edited:
            self.perturbation.restore(base)
        self.perturbation.onset_step = -1
        self.steps = 0
        obs, info = self.env.reset(seed=seed, options=options)
        episode_seed = np.random.SeedSequence([self.seed, 0 if seed is None else int(seed), 3])
        self.perturbation.on_reset(base, np.random.default_rng(episode_seed))
        self._edited = True
        obs = self._current_obs(obs)
        return self.perturbation.on_observation(obs, 0), self._info(info)

    def _current_obs(self, obs: Any) -> Any:
        """After ``on_reset`` edited the state, the env's fresh observation if it can give one."""
        base = self.env.unwrapped
        if hasattr(base, "_observation"):  # robofail tasks
            return base._observation()
        if hasattr(base, "_get_obs"):  # gymnasium's MuJoCo envs
            return base._get_obs()
        return obs

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        base = self.env.unwrapped
        action = self.perturbation.on_action(base, np.asarray(action), self.steps)
        self.perturbation.before_physics(base, self.steps)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        obs = self.perturbation.on_observation(obs, self.steps)
        return obs, reward, terminated, truncated, self._info(info)

    def close(self) -> None:
        if self._edited:
            self.perturbation.restore(self.env.unwrapped)
            self._edited = False
        super().close()

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        p = self.perturbation
        return {**info, "perturbation": {**p.describe(), "onset_step": p.onset_step}}
