"""Recovery data from real generated failures, training, export and the runtime, end to end.

The failures come from the scripted expert under pick_place's failure spec (demo- and env-level
perturbations, no policy needed), so the fixture is a few seconds of simulation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robofail.data import open_dataset
from robofail.failgen.generator import generate, task_env
from robofail.recovery import RecoveryPolicy
from robofail.recovery.data import (
    EXPERTS,
    HISTORY,
    START_KINDS,
    RecoverySettings,
    collect_recoveries,
    restore,
    start_steps,
)
from robofail.recovery.train import load_recovery_model, recovery_pairs


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robofail.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Failures of the expert under pick_place's shipped failure spec (12 episodes tried)."""
    out = tmp_path_factory.mktemp("failures") / "failures"
    generate("pick_place", "failures", 12, out, seed=3, backend="inprocess", progress=False)
    return out


@pytest.fixture(scope="module")
def recovery(failures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recovery")
    data, model, onnx_file = out / "rec.h5", out / "model", out / "rec.onnx"
    made = run_cli(
        "recovery-data", "--task", "pick_place", "--failures", str(failures), "--out", str(data),
        "--workers", "2",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    trained = run_cli(
        "train-recovery", "--task", "pick_place", "--data", str(data), "--out", str(model),
        "--steps", "200",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    exported = run_cli("export", "--recovery", str(model), "--out", str(onnx_file))
    assert exported.returncode == 0, exported.stderr
    return out


def test_failures_restore_exactly_at_every_start(failures: Path) -> None:
    env = task_env("pick_place")
    with open_dataset(failures) as dataset:
        episodes = [e for e in dataset if not e.label.success]
    assert episodes
    for episode in episodes[:4]:
        for step, kind in start_steps(episode, RecoverySettings(after=(0.3, 0.6))):
            assert START_KINDS[kind] in ("onset", "after_onset")
            assert step < max(episode.label.failure_step, 0) or episode.label.failure_step < 0
            wrapped, obs = restore(env, episode, step)
            try:
                assert obs is not None, f"{episode.label.source} did not replay to step {step}"
                np.testing.assert_array_equal(obs["state"], episode.obs["state"][step])
            finally:
                if wrapped is not env:
                    wrapped.close()


def test_recoveries_are_verified_successes_from_labelled_starts(
    failures: Path, recovery: Path
) -> None:
    with open_dataset(failures) as dataset:
        failed = {l.source: l for l in dataset.labels() if not l.success}  # noqa: E741
    with open_dataset(recovery / "rec.h5") as dataset:
        info, labels = dataset.info, dataset.labels()
        episodes = list(dataset)
    assert info.extra["kind"] == "recovery" and set(info.obs_names) == {"state"}
    assert episodes and all(label.success for label in labels)
    for episode in episodes:
        source, step = episode.label.source.rsplit("@", 1)
        origin = failed[source]
        assert int(episode.extras["start_step"]) == int(step)
        assert info.extra["failure_types"][int(episode.extras["failure_type"])] == (
            origin.failure_type
        )
        assert episode.label.perturbation == origin.perturbation
        assert episode.label.seed == origin.seed


def test_both_experts_judge_and_only_the_teacher_is_trained_on(recovery: Path) -> None:
    """The data holds the privileged teacher's rescues and the observation expert's clean ones
    (each marked); training pairs come from the teacher's only."""
    with open_dataset(recovery / "rec.h5") as dataset:
        info, episodes = dataset.info, list(dataset)
    assert info.extra["experts"] == list(EXPERTS) and info.extra["teacher"] == "privileged"
    whose = [EXPERTS[int(episode.extras["expert"])] for episode in episodes]
    assert set(whose) == set(EXPERTS)
    taught = sum(e.length for e, w in zip(episodes, whose, strict=True) if w == "privileged")
    states, _, _, _ = recovery_pairs(recovery / "rec.h5", 4, [0, 1, 2])
    assert len(states) == taught < sum(e.length for e in episodes)


def test_exported_policy_matches_torch_on_recovery_states(recovery: Path) -> None:
    import torch

    net, config, _ = load_recovery_model(recovery / "model")
    states, chunks, _, _ = recovery_pairs(
        recovery / "rec.h5", config.horizon, [0, 1, 2], config.obs_horizon
    )
    assert config.obs_horizon == 8 and config.window_summary  # the CLI's defaults
    assert states.shape[1:] == (8, len(config.state_names))
    assert chunks.shape[1:] == (config.horizon, len(config.action_names))
    env = task_env("pick_place")
    policy = RecoveryPolicy.load(
        recovery / "rec.onnx",
        task="pick_place",
        state_names=list(env.state_names),
        action_names=list(env.action_names),
    )
    with torch.no_grad():
        expected = net(torch.as_tensor(states[:64])).numpy()
    actual = np.stack([policy.act(s) for s in states[:64]])
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)
    # tanh mapped to the action bounds: inside them up to float32 rounding
    assert np.abs(actual).max() <= 1.0 + 4 * np.finfo(np.float32).eps


def test_recovery_verbs_reject_bad_input_in_one_line(failures: Path, tmp_path: Path) -> None:
    cases = [
        (["recovery-data", "--task", "push", "--failures", str(failures), "--out",
          str(tmp_path / "r.h5")], "not 'push'"),
        (["recovery-data", "--task", "pick_place", "--failures", str(failures), "--out",
          str(tmp_path / "r.h5"), "--after", "1.5"], "--after"),
        (["train-recovery", "--data", str(failures), "--out", str(tmp_path / "m")],
         "not recovery data"),
        (["train-recovery", "--data", str(failures), "--obs-horizon", "1", "--window-summary",
          "--out", str(tmp_path / "m")], "--obs-horizon > 1"),
        (["export", "--recovery", str(tmp_path), "--out", str(tmp_path / "x.onnx")],
         "not a saved recovery policy"),
    ]  # fmt: skip
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "r.h5").exists() and not (tmp_path / "m").exists()


def test_dagger_round_labels_learner_states_and_trains_a_windowed_policy(
    failures: Path, recovery: Path, tmp_path: Path
) -> None:
    """The learner (the exported policy) acts from each start; what is kept is real: its steps
    replay from the start to the stored states, and a failed learner run is only kept with the
    expert's verified rescue from where its kept steps end."""
    dagger = tmp_path / "dagger.h5"
    learner = str(recovery / "rec.onnx")
    settings = RecoverySettings(after=(), noise=(0.0,), learner=learner, check_every=5)
    summary = collect_recoveries("pick_place", failures, dagger, settings=settings, workers=2)
    assert sum(summary.attempts.values()) > 0
    env = task_env("pick_place")
    with open_dataset(failures) as dataset:
        sources = {e.label.source: e for e in dataset if not e.label.success}
    with open_dataset(dagger) as dataset:
        assert dataset.info.extra["learner"] == str(recovery / "rec.onnx")
        episodes = list(dataset)
    assert episodes
    for episode in episodes:
        assert episode.extras["history"].shape == (HISTORY, episode.obs["state"].shape[1])
    learner_runs = [e for e in episodes if int(e.extras["learner_steps"]) > 0]
    assert all(int(e.extras["learner_steps"]) == e.length for e in learner_runs)
    for episode in learner_runs[:3]:  # replay the executed actions from the restored start
        source, step = episode.label.source.rsplit("@", 1)
        wrapped, obs = restore(env, sources[source], int(step))
        try:
            assert obs is not None
            np.testing.assert_array_equal(obs["state"], episode.obs["state"][0])
            for t, action in enumerate(episode.extras["executed_actions"]):
                np.testing.assert_array_equal(env.get_state(), episode.states[t])
                wrapped.step(action)
        finally:
            if wrapped is not env:
                wrapped.close()
    failed_prefixes = [e for e in learner_runs if not e.label.success]
    for prefix in failed_prefixes:  # each is followed by its verified rescue
        rescue = episodes[episodes.index(prefix) + 1]
        assert rescue.label.success and rescue.label.source == prefix.label.source
        assert int(rescue.extras["learner_steps"]) == 0
        np.testing.assert_array_equal(rescue.states[0], prefix.final_state)
    model, onnx_file = tmp_path / "windowed", tmp_path / "windowed.onnx"
    trained = run_cli(
        "train-recovery", "--task", "pick_place", "--data", str(recovery / "rec.h5"),
        str(dagger), "--obs-horizon", "4", "--window-summary", "--steps", "100", "--out",
        str(model),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    exported = run_cli("export", "--recovery", str(model), "--out", str(onnx_file))
    assert exported.returncode == 0, exported.stderr
    policy = RecoveryPolicy.load(onnx_file, task="pick_place")
    assert policy.obs_horizon == 4 and policy.act(episodes[0].extras["history"][-4:]).shape == (
        policy.horizon,
        len(policy.action_names),
    )
