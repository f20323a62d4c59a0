"""The scripted experts solve their tasks, with and without executed-action noise, and replan
from perturbed states. The 200-seed figures of the acceptance criteria are the slow tests."""

import numpy as np
import pytest

from robofail.tasks import TASKS, make_env, make_expert
from robofail.tasks.demos import run_expert_episode

TASK_NAMES = list(TASKS)


def success_rate(task: str, seeds: range, noise: float) -> float:
    env = make_env(task)
    results = [
        run_expert_episode(env, seed=0, index=i, action_noise=noise).label.success for i in seeds
    ]
    env.close()
    return float(np.mean(results))


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_succeeds_nominally(task):
    assert success_rate(task, range(20), 0.0) >= 0.95


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_succeeds_under_action_noise(task):
    assert success_rate(task, range(20), 0.2) >= 0.85


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_replans_after_a_random_detour(task):
    """Drive the arm randomly for a while, then hand over to the expert from that state."""
    env = make_env(task)
    rescued = 0
    for seed in range(6):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(8):
            env.step(rng.uniform(-1, 1, env.action_space.shape))
        expert = make_expert(env)
        for _ in range(env.max_episode_steps - 8):
            _, _, terminated, truncated, info = env.step(expert.act())
            if terminated or truncated:
                break
        rescued += info["success"]
    assert rescued >= 5


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_acceptance_200_seeds(task):
    assert success_rate(task, range(200), 0.0) >= 0.98
    assert success_rate(task, range(200), 0.2) >= 0.90
