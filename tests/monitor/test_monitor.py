"""Calibration, the streaming monitor and evaluation on real rollouts of a chunk policy on an env
robofail did not write (PointReach), with real files, real ONNX models and onnxruntime."""

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from robofail.errors import (
    CorruptFileError,
    IncompatibleArtifactError,
    InvalidInputError,
    UnknownNameError,
)
from robofail.monitor import Monitor
from robofail.monitor.artifact import METHOD_NAMES
from robofail.monitor.calibrate import CalibrationSettings, calibrate
from robofail.monitor.episodes import load_episodes
from robofail.monitor.evaluate import evaluate
from robofail.monitor.rules import trace
from robofail.monitor.scores import build_score
from tests.monitor.reach_data import ReachChunkPolicy, make_env, record

SETTINGS = CalibrationSettings(alpha=0.1, training_steps=200, windows=(1, 2), seed=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reach")
    record(folder / "calib.h5", 160, seed=0)
    record(folder / "val_fail.h5", 24, seed=5000, failing=True)
    record(folder / "test_ok.h5", 200, seed=10_000)
    record(folder / "test_fail.h5", 40, seed=20_000, failing=True)
    return folder


@pytest.fixture(scope="module")
def artifact(data):
    rollouts, _ = load_episodes([str(data / "calib.h5")])
    failures, _ = load_episodes([str(data / "val_fail.h5")])
    out = data / "calib"
    calibrate(
        rollouts,
        out,
        position_dims=[0, 1],
        policy_fingerprint=ReachChunkPolicy.fingerprint,
        validation_failures=failures,
        settings=SETTINGS,
    )
    return out


def test_artifact_holds_every_method_and_onnx_scores(artifact):
    calibration = json.loads((artifact / "calibration.json").read_text())
    assert set(calibration["methods"]) == set(METHOD_NAMES)
    assert calibration["default_method"] == "robofail"
    assert calibration["policy_fingerprint"] == ReachChunkPolicy.fingerprint
    assert calibration["n_episodes"] == {
        "fit": 48, "threshold": 64, "validation": 48, "validation_failures": 24,
    }  # fmt: skip
    for name in ("rnd", "mahalanobis", "pca_kmeans", "logpzo"):
        assert (artifact / f"{name}.onnx").is_file()
    assert calibration["methods"]["fiper_and"]["combine"] == "all"


def test_streaming_monitor_matches_offline_evaluation(artifact, data):
    episodes, _ = load_episodes([str(data / "test_ok.h5"), str(data / "test_fail.h5")])
    calibration = json.loads((artifact / "calibration.json").read_text())
    for method in ("robofail", "fiper_and", "stac"):
        monitor = Monitor.load(artifact, method=method)
        rule = monitor.rule
        scores = {name: build_score(calibration["scores"][name], artifact) for name in rule.scores}
        for episode in episodes[::10]:
            raw = {n: s.episode(episode.embeddings, episode.chunks) for n, s in scores.items()}
            offline = trace(rule, raw)
            monitor.reset()
            inputs = zip(episode.embeddings, episode.chunks, strict=True)
            verdicts = [monitor.update(e, c) for e, c in inputs]
            assert [v.alarm for v in verdicts] == offline.alarms.tolist()
            streamed = np.array([[v.windowed[n] for n in rule.scores] for v in verdicts])
            np.testing.assert_array_equal(streamed, offline.windowed)  # same code path


def test_false_alarms_on_fresh_successes_stay_within_the_conformal_bound(artifact, data):
    episodes, _ = load_episodes([str(data / "test_ok.h5")])
    result = evaluate(artifact, episodes).result
    n = result["methods"]["robofail"]["n_success"]
    bound = SETTINGS.alpha + 2 * math.sqrt(SETTINGS.alpha * (1 - SETTINGS.alpha) / n)
    for name, metrics in result["methods"].items():
        assert metrics["false_alarm_rate"] <= bound, name


def test_unreachable_goal_failures_are_caught_early(artifact, data):
    episodes, _ = load_episodes([str(data / "test_ok.h5"), str(data / "test_fail.h5")])
    metrics = evaluate(artifact, episodes).result["methods"]["robofail"]
    assert metrics["n_failure"] == 40
    assert metrics["tpr"] >= 0.9 and metrics["balanced_accuracy"] >= 0.85
    assert metrics["lead_time_steps"] > 0
    assert metrics["roc_auc"] > 0.9


def test_too_few_rollouts_says_how_many_are_needed(data, tmp_path):
    rollouts, _ = load_episodes([str(data / "calib.h5")])
    with pytest.raises(InvalidInputError, match=r"record at least \d+ successful rollouts"):
        calibrate(
            rollouts[:20], tmp_path / "c", position_dims=[0, 1], policy_fingerprint="x",
            settings=CalibrationSettings(alpha=0.01),
        )  # fmt: skip
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "embedding, chunks, message",
    [
        (np.zeros(15, np.float32), np.zeros((16, 8, 2), np.float32), r"embedding: expected shape"),
        (np.zeros(16, np.int64), np.zeros((16, 8, 2), np.float32), "floating-point"),
        (np.full(16, np.nan, np.float32), np.zeros((16, 8, 2), np.float32), "NaN or inf"),
        (np.zeros(16, np.float32), np.full((16, 8, 2), np.inf, np.float32), "NaN or inf"),
        (np.zeros(16, np.float32), np.zeros((16, 8, 3), np.float32), r"chunks: expected shape"),
        (np.zeros(16, np.float32), np.zeros((1, 8, 2), np.float32), "B >= 2"),
        (np.zeros(16, np.float32), [[0.0]], "numpy array"),
    ],
)
def test_update_refuses_input_it_cannot_score(artifact, embedding, chunks, message):
    monitor = Monitor.load(artifact)
    monitor.reset()
    with pytest.raises(InvalidInputError, match=message):
        monitor.update(embedding, chunks)


def test_update_before_reset_is_an_error(artifact):
    with pytest.raises(InvalidInputError, match="before reset"):
        Monitor.load(artifact).update(np.zeros(16, np.float32), np.zeros((4, 8, 2), np.float32))


def _copy(artifact, tmp_path):
    copy = tmp_path / "calib"
    shutil.copytree(artifact, copy)
    return copy


def test_mismatched_or_corrupt_artifacts_are_refused(artifact, tmp_path):
    with pytest.raises(IncompatibleArtifactError, match="calibrated for policy"):
        Monitor.load(artifact, policy_fingerprint="another-policy")
    with pytest.raises(UnknownNameError, match="no method 'nope'"):
        Monitor.load(artifact, method="nope")
    copy = _copy(artifact, tmp_path)
    calibration = json.loads((copy / "calibration.json").read_text())
    (copy / "calibration.json").write_text(json.dumps({**calibration, "schema_version": 99}))
    with pytest.raises(IncompatibleArtifactError, match="schema version 99"):
        Monitor.load(copy)
    (copy / "calibration.json").write_text('{"kind": "robofail_calibration", "schema')
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        Monitor.load(copy)
    (copy / "calibration.json").write_text(json.dumps(calibration))
    (copy / "rnd.onnx").write_bytes((copy / "rnd.onnx").read_bytes()[:-50])
    with pytest.raises(CorruptFileError, match="changed since calibration"):
        Monitor.load(copy)
    with pytest.raises(CorruptFileError, match="not a calibration artifact"):
        Monitor.load(tmp_path / "missing")


def test_monitor_wrapper_reports_verdicts_in_info(artifact):
    from robofail.monitor.wrappers import MonitorWrapper

    env = MonitorWrapper(make_env(failing=True), ReachChunkPolicy(), Monitor.load(artifact))
    _, info = env.reset(seed=3)
    verdicts = [info["robofail"]]
    for _ in range(20):
        _, _, terminated, truncated, info = env.step(env.next_action())
        verdicts.append(info["robofail"])
        if terminated or truncated:
            break
    inferred = [v for v in verdicts if v is not None]
    assert [v["step"] for v in inferred] == list(range(len(inferred)))
    assert verdicts[1] is None and inferred[-1]["alarm"]


def test_runtime_imports_no_torch_mujoco_or_gymnasium(artifact):
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "mujoco", "gymnasium", "h5py", "cv2", "onnx"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from robofail.monitor import Monitor
monitor = Monitor.load({str(artifact)!r})
monitor.reset()
verdict = monitor.update(np.zeros(16, np.float32), np.zeros((8, 8, 2), np.float32))
print("ok", verdict.alarm)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
