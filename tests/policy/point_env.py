"""A small gymnasium env that robofail did not write: a point mass that must reach a goal.

Box observation (x, y, goal_x, goal_y), action (vx, vy) in [-1, 1], success in
``info["is_success"]``. Importing this module registers ``PointReach-v0``.
"""

from typing import ClassVar

import gymnasium as gym
import numpy as np


class PointReach(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, step_size: float = 0.1):
        self.step_size = step_size
        self.observation_space = gym.spaces.Box(-2.0, 2.0, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        self.goal = self.np_random.uniform(-1, 1, 2)
        return self._obs(), {"is_success": False}

    def _obs(self):
        return np.concatenate([self.pos, self.goal]).astype(np.float32)

    def step(self, action):
        self.pos = np.clip(self.pos + self.step_size * np.clip(action, -1, 1), -1.5, 1.5)
        success = bool(np.linalg.norm(self.pos - self.goal) < 0.1)
        return self._obs(), float(success), success, False, {"is_success": success}


if "PointReach-v0" not in gym.registry:
    gym.register("PointReach-v0", entry_point=PointReach, max_episode_steps=40)


def expert_action(obs: np.ndarray) -> np.ndarray:
    """Head for the goal at full speed, slowing inside the last step."""
    delta = (obs[2:] - obs[:2]) / 0.1
    return np.clip(delta, -1, 1).astype(np.float32)
