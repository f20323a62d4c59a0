"""The supervisor on PointReach (an env robofail did not write) with a real monitor and a real
exported recovery policy: switches on alarms, logs them, survives a broken recovery."""

import logging

import numpy as np
import onnx
import pytest

from robofail.monitor import Monitor
from robofail.monitor.calibrate import CalibrationSettings, calibrate
from robofail.monitor.episodes import load_episodes
from robofail.recovery import RecoveryPolicy
from robofail.recovery.model import RecoveryConfig, chunk_targets, export_onnx, train_recovery
from robofail.recovery.supervisor import CALM_INFERENCES, MAX_RECOVERY_STEPS, Supervisor
from tests.monitor.reach_data import ReachChunkPolicy, UnreachableGoal, make_env, record
from tests.policy.point_env import expert_action


def recovery_model(path, state_dim=4, obs_horizon=1):
    """A recovery policy trained on the point env's expert (state -> next 4 expert actions); a
    windowed one (``obs_horizon`` > 1) sees the state repeated (what matters here is its input
    shape)."""
    rng = np.random.default_rng(0)
    states = rng.uniform(-1.5, 1.5, size=(400, 4)).astype(np.float32)
    targets = []
    for state in states:
        pos, actions = state[:2].copy(), []
        for _ in range(4):
            actions.append(expert_action(np.r_[pos, state[2:]]))
            pos = pos + 0.1 * actions[-1]
        targets.append(chunk_targets(np.array(actions), 4))
    targets = np.array(targets)[:, 0]
    config = RecoveryConfig(
        task="point_reach", state_names=[f"s{i}" for i in range(state_dim)],
        action_names=["vx", "vy"], action_low=[-1, -1], action_high=[1, 1],
        horizon=4, exec_horizon=2, hidden=64, obs_horizon=obs_horizon,
    )  # fmt: skip
    inputs = states[:, :state_dim]
    if obs_horizon > 1:
        inputs = np.repeat(inputs[:, None], obs_horizon, axis=1)
    net, _ = train_recovery(inputs, targets, config, steps=300)
    onnx.save(export_onnx(net, config), path)
    return RecoveryPolicy.load(path)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("supervisor")
    record(folder / "calib.h5", 140, seed=0)
    record(folder / "fail.h5", 16, seed=9000, failing=True)
    rollouts, _ = load_episodes([str(folder / "calib.h5")])
    failures, _ = load_episodes([str(folder / "fail.h5")])
    calibrate(
        rollouts, folder / "calib", position_dims=[0, 1],
        policy_fingerprint=ReachChunkPolicy.fingerprint, validation_failures=failures,
        settings=CalibrationSettings(alpha=0.1, training_steps=200, windows=(1,),
                                     methods=("robofail",)),
    )  # fmt: skip
    return folder, Monitor.load(folder / "calib"), recovery_model(folder / "rec.onnx")


def run(supervisor, env, seed, steps=40):
    obs, _ = env.reset(seed=seed)
    supervisor.reset()
    for _ in range(steps):
        action = supervisor.act({"state": np.asarray(obs, np.float32)})
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break


def test_alarm_switches_to_recovery_and_back_with_a_log(parts, caplog):
    _, monitor, recovery = parts
    supervisor = Supervisor(ReachChunkPolicy(), monitor, recovery, max_recovery_steps=6)
    with caplog.at_level(logging.INFO, logger="robofail.supervisor"):
        run(supervisor, make_env(failing=True), seed=1)
    assert [s.to for s in supervisor.switches[:2]] == ["recovery", "base"]
    first, back = supervisor.switches[:2]
    assert "alarm" in first.reason and back.step - first.step <= 6
    assert "switch to recovery" in caplog.text
    assert not supervisor.errors


def test_nominal_episodes_mostly_stay_with_the_base_policy(parts):
    _, monitor, recovery = parts
    supervisor = Supervisor(ReachChunkPolicy(), monitor, recovery)
    switched = 0
    for seed in range(20):
        run(supervisor, make_env(), seed=20_000 + seed)
        switched += bool(supervisor.switches)
    assert switched <= 5


def test_a_broken_recovery_is_logged_and_the_base_policy_takes_over(parts, caplog):
    folder, monitor, _ = parts
    wrong = recovery_model(folder / "wrong.onnx", state_dim=3)  # expects 3 state values
    supervisor = Supervisor(ReachChunkPolicy(), monitor, wrong)
    with caplog.at_level(logging.ERROR, logger="robofail.supervisor"):
        run(supervisor, make_env(failing=True), seed=2)
    assert supervisor.errors and "InvalidInputError" in supervisor.errors[0]
    assert "recovery failed" in caplog.text
    assert any(s.reason == "recovery error" for s in supervisor.switches)


class Recording:
    """A real recovery policy that remembers what it was given."""

    def __init__(self, recovery):
        self.recovery, self.inputs = recovery, []
        self.action_names, self.exec_horizon = recovery.action_names, recovery.exec_horizon
        self.obs_horizon, self.source = recovery.obs_horizon, recovery.source

    def act(self, state, failure_type=None):
        self.inputs.append(state.copy())
        return self.recovery.act(state, failure_type)


def test_a_windowed_recovery_gets_the_last_states_oldest_first(parts):
    folder, monitor, _ = parts
    recovery = Recording(recovery_model(folder / "windowed.onnx", obs_horizon=3))
    supervisor = Supervisor(ReachChunkPolicy(), monitor, recovery, max_recovery_steps=6)
    env, seen = make_env(failing=True), []
    obs, _ = env.reset(seed=1)
    supervisor.reset()
    for _ in range(40):
        seen.append(np.asarray(obs, np.float32))
        calls = len(recovery.inputs)
        action = supervisor.act({"state": seen[-1]})
        if len(recovery.inputs) > calls:  # the recovery ran on this step's window
            expected = [seen[max(0, len(seen) - 3 + k)] for k in range(3)]
            np.testing.assert_array_equal(recovery.inputs[-1], expected)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    assert recovery.inputs and not supervisor.errors
    assert all(window.shape == (3, 4) for window in recovery.inputs)


class TransientFault(UnreachableGoal):
    """The goal is out of reach for the first ``steps`` steps, then back where it was: the
    monitor alarms, then calms."""

    def __init__(self, env, steps=8):
        super().__init__(env)
        self.steps = steps

    def reset(self, **kwargs):
        self.count = 0
        _, info = self.env.reset(**kwargs)
        self.true_goal = self.env.unwrapped.goal.copy()
        self.env.unwrapped.goal = self.goal.copy()
        return self.env.unwrapped._obs(), info

    def step(self, action):
        self.count += 1
        if self.count == self.steps:
            self.env.unwrapped.goal = self.true_goal
        return self.env.step(action)


@pytest.mark.parametrize("calm", [1, 3])
def test_recovery_hands_back_only_after_calm_inferences_quiet_verdicts(parts, calm):
    _, monitor, recovery = parts
    policy = ReachChunkPolicy()
    supervisor = Supervisor(
        policy, monitor, recovery, max_recovery_steps=1000, calm_inferences=calm
    )
    handbacks = []
    for seed in range(6):
        run(supervisor, TransientFault(make_env()), seed=seed)
        switches = supervisor.switches
        handbacks += [
            (back.step - start.step, back.reason)
            for start, back in zip(switches[::2], switches[1::2], strict=False)
        ]
    assert handbacks, "no episode handed control back"
    for steps, reason in handbacks:
        assert reason == f"monitor calm for {calm} inferences"
        assert steps >= calm * policy.exec_horizon


def test_the_command_line_defaults_are_the_supervisors():
    from robofail.cli import build_parser

    args = build_parser().parse_args(
        ["closed-loop", "--task", "t", "--policy", "p", "--monitor", "m", "--recovery", "r",
         "--spec", "s", "-n", "1"]
    )  # fmt: skip
    assert (args.max_recovery_steps, args.calm_inferences) == (MAX_RECOVERY_STEPS, CALM_INFERENCES)
