"""Recovery policy: torch vs onnxruntime parity on real inputs, metadata checks, bad files."""

import numpy as np
import onnx
import pytest
import torch

from robofail.errors import CorruptFileError, IncompatibleArtifactError, InvalidInputError
from robofail.recovery import RecoveryPolicy
from robofail.recovery.model import (
    RecoveryConfig,
    chunk_targets,
    export_onnx,
    state_windows,
    summary_matrix,
    train_recovery,
)
from robofail.tasks import make_env, make_expert


def expert_pairs(task: str, episodes: int, horizon: int, obs_horizon: int = 1):
    """(state, next-H expert actions) pairs from real expert episodes of a bundled task; states
    are (K, S) windows for ``obs_horizon`` K > 1."""
    env = make_env(task)
    states, targets = [], []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        expert = make_expert(env)
        episode_states, actions = [], []
        for _ in range(60):
            action = expert.act()
            episode_states.append(obs["state"])
            actions.append(action)
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        if obs_horizon > 1:
            episode_states = state_windows(np.array(episode_states), None, obs_horizon)
        states.extend(episode_states)
        targets.extend(chunk_targets(np.array(actions), horizon))
    return env, np.array(states, np.float32), np.array(targets, np.float32)


@pytest.fixture(
    scope="module",
    params=[
        (False, 1, False),
        (True, 1, False),
        (False, 4, False),
        (False, 4, True),
        (True, 4, True),
    ],
    ids=["plain", "failure-conditioned", "windowed", "window-summary", "conditioned-summary"],
)
def exported(request, tmp_path_factory):
    conditioned, obs_horizon, summary = request.param
    env, states, targets = expert_pairs("push", 4, horizon=8, obs_horizon=obs_horizon)
    types = ["slip", "push"] if conditioned else []
    config = RecoveryConfig(
        task="push",
        state_names=list(env.state_names),
        action_names=list(env.action_names),
        action_low=env.action_space.low.tolist(),
        action_high=env.action_space.high.tolist(),
        failure_types=types,
        hidden=64,
        obs_horizon=obs_horizon,
        window_summary=summary,
    )
    names = [types[i % 2] for i in range(len(states))] if types else None
    net, _ = train_recovery(states, targets, config, failure_types=names, steps=200)
    path = tmp_path_factory.mktemp("rec") / "recovery.onnx"
    onnx.save(export_onnx(net, config), path)
    return net, config, path, states


def test_onnx_matches_torch_within_1e_5(exported):
    net, config, path, states = exported
    policy = RecoveryPolicy.load(path, task="push", state_names=config.state_names)
    for i in range(0, len(states), 7):
        failure = config.failure_types[i % 2] if config.failure_types else None
        onehot = None
        if failure is not None:
            onehot = torch.zeros(1, len(config.failure_types))
            onehot[0, config.failure_types.index(failure)] = 1
        with torch.no_grad():
            expected = net(torch.as_tensor(states[i : i + 1]), onehot)[0].numpy()
        np.testing.assert_allclose(policy.act(states[i], failure), expected, atol=1e-5)


def test_dynamic_batch_and_checked_model(exported):
    import onnxruntime as ort

    _, config, path, states = exported
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"state": states[:5]}
    if config.failure_types:
        feeds["failure"] = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
    (chunk,) = session.run(None, feeds)
    assert chunk.shape == (5, 8, len(config.action_names))


def test_metadata_mismatch_and_bad_input_are_refused(exported, tmp_path):
    _, config, path, states = exported
    with pytest.raises(IncompatibleArtifactError, match="task"):
        RecoveryPolicy.load(path, task="pick_place")
    with pytest.raises(IncompatibleArtifactError, match="state_names"):
        RecoveryPolicy.load(path, state_names=config.state_names[::-1])
    policy = RecoveryPolicy.load(path)
    with pytest.raises(InvalidInputError, match="shape"):
        policy.act(states[0][..., :-1])
    if config.obs_horizon > 1:  # a windowed model wants the window, not one state
        with pytest.raises(InvalidInputError, match="last 4 states"):
            policy.act(states[0][-1])
    with pytest.raises(InvalidInputError, match="NaN"):
        policy.act(np.full_like(states[0], np.nan))
    if config.failure_types:
        with pytest.raises(InvalidInputError, match="unknown failure type"):
            policy.act(states[0], "meteor")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptFileError, match="not a valid ONNX model"):
        RecoveryPolicy.load(broken)
    with pytest.raises(CorruptFileError, match="not found"):
        RecoveryPolicy.load(tmp_path / "missing.onnx")


def test_state_windows_continue_from_the_history_and_pad_with_the_earliest_state():
    states = np.arange(8, dtype=np.float32).reshape(4, 2)
    history = -np.arange(1, 7, dtype=np.float32)[::-1].reshape(3, 2)  # 3 states before the start
    windows = state_windows(states, history, 3)
    assert windows.shape == (4, 3, 2)
    np.testing.assert_array_equal(windows[0], [history[1], history[2], states[0]])
    np.testing.assert_array_equal(windows[3], states[1:4])
    padded = state_windows(states, None, 3)  # no history: the first state repeats
    np.testing.assert_array_equal(padded[0], [states[0]] * 3)
    np.testing.assert_array_equal(padded[1], [states[0], states[0], states[1]])
    np.testing.assert_array_equal(state_windows(states, history, 1)[:, 0], states)


def test_window_summary_is_the_mean_and_the_newest_state_and_is_only_used_with_a_window():
    def config(k, summary=True):
        return RecoveryConfig("push", ["a", "b"], ["u"], [-1.0], [1.0], obs_horizon=k,
                              window_summary=summary)  # fmt: skip

    window = np.array([[1.0, 10.0], [2.0, 20.0], [6.0, 30.0]])  # (K=3, S=2), oldest first
    summary = window.reshape(-1) @ summary_matrix(config(3))
    np.testing.assert_allclose(summary, [3.0, 20.0, 6.0, 30.0])
    assert summary_matrix(config(1)) is None and summary_matrix(config(3, False)) is None


def test_a_noisy_window_is_averaged_before_the_network_sees_it():
    """Two windows with the same mean and newest state give the same chunk, whatever the
    states between: the summarised network cannot latch onto one noisy sample."""
    env = make_env("push")
    names = list(env.state_names)
    k, s, a = 4, len(names), len(env.action_names)
    config = RecoveryConfig("push", names, list(env.action_names), [-1.0] * a, [1.0] * a,
                            hidden=32, obs_horizon=k, window_summary=True)  # fmt: skip
    rng = np.random.default_rng(0)
    states = rng.normal(size=(64, k, s)).astype(np.float32)
    net, _ = train_recovery(states, rng.uniform(-1, 1, (64, 8, a)), config, steps=20)
    first = rng.normal(size=(k, s)).astype(np.float32)
    second = first.copy()
    shift = rng.normal(size=s).astype(np.float32)
    second[0] += shift
    second[1] -= shift  # same mean, same newest state
    with torch.no_grad():
        out = net(torch.as_tensor(np.stack([first, second])))
    np.testing.assert_allclose(out[0].numpy(), out[1].numpy(), atol=1e-5)
