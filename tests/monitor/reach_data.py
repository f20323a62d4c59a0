"""Monitored rollouts of a small numpy chunk policy on PointReach (an env robofail did not write).

The policy plans a straight path to the goal it observes and samples chunks around it; its
embedding is the observation with a fixed random feature map of it. Failures are real: a wrapper
moves the goal out of the reachable box (the env's own success check then never fires), which
also moves the observation out of the embedding's training range.
"""

import gymnasium as gym
import numpy as np

from robofail.data import write_episodes
from robofail.monitor.wrappers import monitored_rollout
from robofail.policy.rollout import rollout_info
from tests.policy.point_env import PointReach, expert_action


class ReachChunkPolicy:
    horizon = 8
    exec_horizon = 4
    obs_horizon = 1
    action_names = ("vx", "vy")
    position_dims = (0, 1)
    fingerprint = "reach-test-policy"

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.weights = rng.normal(size=(4, 12)) * 0.5
        self.bias = rng.normal(size=12) * 0.5

    def embed(self, obs):
        """(16,): the state itself and 12 smooth random features of it."""
        state = obs["state"][-1].astype(np.float64)
        return np.r_[state, np.tanh(state @ self.weights + self.bias)].astype(np.float32)

    def sample_chunks(self, obs, n, seed):
        state = obs["state"][-1].astype(np.float64)
        rng = np.random.default_rng(seed)
        chunk = np.empty((self.horizon, 2))
        pos = state[:2].copy()
        for h in range(self.horizon):
            chunk[h] = expert_action(np.concatenate([pos, state[2:]]))
            pos = pos + 0.1 * chunk[h]
        noise = rng.normal(0.0, 0.05, size=(n, self.horizon, 2))
        return np.clip(chunk[None] + noise, -1, 1).astype(np.float32)


class UnreachableGoal(gym.Wrapper):
    """Moves the goal to ``goal`` (outside the box the point can reach) after reset."""

    def __init__(self, env, goal=(2.5, -2.5)):
        super().__init__(env)
        self.goal = np.asarray(goal, dtype=float)

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        self.env.unwrapped.goal = self.goal.copy()
        return self.env.unwrapped._obs(), info


def make_env(failing: bool = False) -> gym.Env:
    env = gym.wrappers.TimeLimit(PointReach(), max_episode_steps=40)
    return UnreachableGoal(env) if failing else env


def record(path, n, *, seed, failing=False, monitor=None):
    """Write ``n`` rollouts (seeds seed..seed+n-1) to ``path``; returns the episodes."""
    policy = ReachChunkPolicy()
    env = make_env(failing)
    episodes = [
        monitored_rollout(env, policy, monitor, seed=seed + i, samples=16) for i in range(n)
    ]
    info = rollout_info(make_env(), policy, task="point_reach", seed=seed)
    write_episodes(path, episodes, info)
    return episodes
