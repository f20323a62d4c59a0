"""The scripted experts solve their tasks, with and without executed-action noise, and replan
from perturbed states. The 200-seed figures of the acceptance criteria are the slow tests."""

import numpy as np
import pytest

from robofail.errors import InvalidInputError
from robofail.failgen.perturbation import make_perturbation
from robofail.failgen.wrappers import PerturbationWrapper
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


@pytest.mark.parametrize("task", TASK_NAMES)
def test_observation_expert_acts_as_the_privileged_one_without_faults(task):
    """Planning from the clean state observation succeeds where the privileged expert does,
    with its first action the same up to the observation's float32 rounding (later ones may
    part: push's paddle turns either way at a 90-degree tie, which rounding can flip)."""
    env = make_env(task)
    for index in range(4):
        privileged = run_expert_episode(env, seed=0, index=index)
        observed = run_expert_episode(env, seed=0, index=index, observation=True)
        assert observed.label.success and privileged.label.success
        np.testing.assert_allclose(observed.actions[0], privileged.actions[0], atol=1e-5)
    env.close()


def test_observation_expert_plans_with_what_the_observation_shows():
    """A bias on the observed state moves the observation expert's world (its pose queries
    read obs["state"]), not the privileged expert's; before any observation it refuses to
    act."""
    env = make_env("push")
    obs, _ = env.reset(seed=0)
    observed = make_expert(env, observation=True)
    with pytest.raises(RuntimeError, match="observe"):
        observed.act()
    shifted = obs["state"].copy()
    names = list(env.state_names)
    shifted[names.index("block_x")] += 0.03
    shifted[names.index("goal_err_y")] -= 0.02
    observed.observe({"state": shifted})
    np.testing.assert_allclose(observed.env.block_pos()[0], env.block_pos()[0] + 0.03, atol=1e-6)
    np.testing.assert_allclose(observed.env.goal_error(), env.goal_error() - [0, 0.02], atol=1e-6)
    assert observed.env.ee_target_yaw == env.ee_target_yaw  # the controller's own command
    with pytest.raises(InvalidInputError, match="state fields"):  # another task's state
        observed.observe({"state": shifted[:-1]})


def test_an_observation_bias_fails_the_observation_expert_not_the_privileged_one():
    """push under a 40 mm bias on every state entry (its success tolerance is 20 mm): the
    privileged expert, which reads the simulator, still succeeds; the observation expert, which
    sees what a recovery policy sees, does not."""
    fault = make_perturbation("obs_bias", magnitude=0.04, start=0)
    env = PerturbationWrapper(make_env("push"), fault, seed=7)
    privileged = [run_expert_episode(env, seed=0, index=i).label.success for i in range(3)]
    observed = [
        run_expert_episode(env, seed=0, index=i, observation=True).label.success for i in range(3)
    ]
    env.close()
    assert all(privileged) and not any(observed)
