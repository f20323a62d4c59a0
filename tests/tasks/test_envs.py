"""The bundled envs honour the gymnasium contract, are deterministic and replay exactly."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robofail.errors import InvalidInputError, UnknownNameError
from robofail.tasks import TASKS, get_task, make_env
from robofail.tasks.demos import run_expert_episode

TASK_NAMES = list(TASKS)


@pytest.fixture(scope="module", params=TASK_NAMES)
def env(request):
    env = make_env(request.param)
    yield env
    env.close()


@pytest.mark.parametrize("task", TASK_NAMES)
def test_check_env_passes_through_gymnasium_make(task):
    env = gym.make(get_task(task).env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_check_env_with_image_observations():
    env = make_env("pick_place", obs_image=True, image_size=(64, 80))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 80, 3) and obs["image"].dtype == np.uint8
    assert obs["image"].std() > 5  # a real picture, not a blank buffer
    env.close()


def test_render_returns_a_frame():
    env = make_env("pick_place", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()


def test_same_seed_same_actions_give_identical_observations(env):
    rng = np.random.default_rng(7)
    actions = rng.uniform(-1, 1, size=(15, *env.action_space.shape)).astype(np.float32)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=123)
        trace = [obs["state"].tobytes()]
        for action in actions:
            obs, *_ = env.step(action)
            trace.append(obs["state"].tobytes())
        runs.append(trace)
    assert runs[0] == runs[1]
    first, _ = env.reset(seed=124)
    assert first["state"].tobytes() != runs[0][0]


def test_observation_matches_documented_names(env):
    obs, _ = env.reset(seed=0)
    assert obs["state"].shape == (len(env.state_names),)
    assert obs["state"].dtype == np.float32
    assert len(set(env.state_names)) == len(env.state_names)
    assert env.action_space.shape == (len(env.action_names),)


def test_replaying_stored_states_reproduces_observations(env):
    episode = run_expert_episode(env, seed=3, index=0, action_noise=0.2)
    for t in range(episode.length):
        obs = env.set_state(episode.states[t])
        assert obs["state"].tobytes() == episode.obs["state"][t].tobytes(), f"step {t}"


def test_set_state_then_step_continues_exactly(env):
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(env.action_space.sample())
    saved = env.get_state()
    actions = rng.uniform(-1, 1, size=(6, *env.action_space.shape))
    first = [env.step(a)[0]["state"] for a in actions]
    env.set_state(saved)
    second = [env.step(a)[0]["state"] for a in actions]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))


def test_bad_actions_name_the_env_and_shape(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"robofail/.*-v0.*shape") as wrong_shape:
        env.step(np.zeros(len(env.action_names) + 1, dtype=np.float32))
    assert isinstance(wrong_shape.value, InvalidInputError)
    bad = np.zeros(len(env.action_names), dtype=np.float32)
    bad[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env.step(bad)


def test_bad_state_is_refused(env):
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match="state"):
        env.set_state(np.zeros(3))


def test_unknown_task_lists_valid_names():
    with pytest.raises(UnknownNameError, match="pick_place, push, peg_insert"):
        get_task("stack_blocks")


def test_phases_are_named_and_reported(env):
    _, info = env.reset(seed=0)
    assert info["phase"] == env.phase_names[info["phase_index"]]
    assert len(env.phase_names) >= 3
