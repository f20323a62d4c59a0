"""train-policy and rollout from the command line, on a bundled task and on a user's own env."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from robofail.data import DatasetInfo, Episode, EpisodeLabel, write_episodes
from tests.policy.point_env import PointReach, expert_action

SMALL = ["--epochs", "3", "--horizon", "8", "--exec-horizon", "4", "--batch-size", "64"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robofail.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_bundled_task_train_then_rollout(tmp_path):
    demos, policy, rollouts = tmp_path / "d.h5", tmp_path / "policy", tmp_path / "r.h5"
    assert run_cli("demos", "--task", "push", "-n", "3", "--out", str(demos)).returncode == 0
    trained = run_cli(
        "train-policy", "--task", "push", "--demos", str(demos), "--out", str(policy), *SMALL
    )
    assert trained.returncode == 0, trained.stderr
    for name in ("config.json", "model.safetensors", "loss_curve.png", "train_log.json"):
        assert (policy / name).is_file()
    fingerprint = json.loads((policy / "config.json").read_text())["fingerprint"]
    result = run_cli(
        "rollout", "--task", "push", "--policy", str(policy), "-n", "2", "--samples", "4",
        "--out", str(rollouts), "--workers", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with h5py.File(rollouts, "r") as f:
        assert fingerprint in f["data"].attrs["env_args"].decode()
        demo = f["data/demo_0"]
        k = demo["extras/inference_steps"].shape[0]
        assert demo["extras/sampled_chunks"].shape == (k, 4, 8, 4)


def test_train_policy_refuses_demos_of_another_task(tmp_path):
    demos = tmp_path / "d.h5"
    assert run_cli("demos", "--task", "push", "-n", "1", "--out", str(demos)).returncode == 0
    result = run_cli(
        "train-policy", "--task", "pick_place", "--demos", str(demos), "--out", str(tmp_path / "p")
    )
    assert result.returncode == 2 and "holds demos of task 'push'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [None, b"not hdf5 at all"])
def test_train_policy_missing_or_corrupt_demos(tmp_path, content):
    demos = tmp_path / "d.h5"
    if content is not None:
        demos.write_bytes(content)
    result = run_cli("train-policy", "--demos", str(demos), "--out", str(tmp_path / "p"))
    assert result.returncode == 2 and "d.h5" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p").exists()


def user_env_dataset(path, n=30):
    """What a user does: record their own env's episodes through the store's writer."""
    env = PointReach()
    episodes = []
    for i in range(n):
        obs, _ = env.reset(seed=i)
        observations, actions = [], []
        for _ in range(40):
            action = expert_action(obs)
            observations.append(obs)
            actions.append(action)
            obs, _, done, _, info = env.step(action)
            if done:
                break
        steps = len(actions)
        episodes.append(
            Episode(
                obs={"state": np.stack(observations)},
                actions=np.stack(actions),
                rewards=np.zeros(steps, np.float32),
                dones=np.arange(steps) == steps - 1,
                states=np.zeros((steps, 0)),
                phases=np.zeros(steps, np.int8),
                final_state=np.zeros(0),
                label=EpisodeLabel(success=info["is_success"], seed=i),
            )
        )
    info = DatasetInfo(
        task="point_reach",
        env_id="PointReach-v0",
        obs_names={"state": ["x", "y", "goal_x", "goal_y"]},
        action_names=["vx", "vy"],
        phase_names=["run"],
        control_hz=10.0,
    )
    write_episodes(path, episodes, info)


def test_users_own_env_end_to_end(tmp_path):
    demos, policy, rollouts = tmp_path / "d.h5", tmp_path / "policy", tmp_path / "r.h5"
    user_env_dataset(demos)
    trained = run_cli(
        "train-policy", "--demos", str(demos), "--out", str(policy), "--position-dims", "0,1",
        "--epochs", "40", "--horizon", "8", "--exec-horizon", "4", "--batch-size", "64",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    result = run_cli(
        "rollout", "--env", "tests.policy.point_env:PointReach-v0", "--env-kwargs",
        '{"step_size": 0.1}', "--policy", str(policy), "-n", "6", "--samples", "8",
        "--out", str(rollouts),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with h5py.File(rollouts, "r") as f:
        successes = [bool(f["data"][d].attrs["success"]) for d in f["data"]]
    assert sum(successes) >= 3, successes  # a real policy, learned from the user's data


def test_rollout_with_a_policy_for_another_task_is_refused(tmp_path):
    demos, policy = tmp_path / "d.h5", tmp_path / "policy"
    assert run_cli("demos", "--task", "push", "-n", "1", "--out", str(demos)).returncode == 0
    trained = run_cli("train-policy", "--demos", str(demos), "--out", str(policy), *SMALL)
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "r.h5"
    result = run_cli(
        "rollout", "--task", "pick_place", "--policy", str(policy), "-n", "1", "--out", str(out)
    )
    assert result.returncode == 2 and "trained for 'push'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
