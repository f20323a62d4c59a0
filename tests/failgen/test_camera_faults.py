"""Camera faults reach an image policy through the generator; the vision expert perceives the
cube in the camera image, so camera faults fail it; the shipped camera spec."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import mujoco
import numpy as np
import pytest

from robofail.data import open_dataset
from robofail.errors import InvalidInputError
from robofail.failgen.generator import generate, run_perturbed_episode
from robofail.failgen.perturbation import make_perturbation
from robofail.failgen.spec import load_spec, parse_spec, shipped_spec_names
from robofail.tasks import make_env
from robofail.tasks.pick_place import PickPlaceEnv, VisionPickPlaceExpert

CAMERA_KINDS = {"camera_occlusion", "camera_blur", "camera_brightness", "camera_shift"}


class RecordingPolicy:
    """A ChunkPolicy that holds still and records the image windows it is given."""

    horizon, exec_horizon, obs_horizon = 4, 2, 2
    action_names = ("dx", "dy", "dz", "dyaw", "grip")
    position_dims = (0, 1, 2)
    fingerprint = "recording"

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def embed(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.zeros(4, dtype=np.float32)

    def sample_chunks(self, obs: Mapping[str, np.ndarray], n: int, seed: int) -> np.ndarray:
        self.images.append(np.array(obs["image"]))
        return np.zeros((n, self.horizon, len(self.action_names)), dtype=np.float32)


def test_camera_fault_reaches_an_image_policy_from_its_start_step() -> None:
    env = make_env("pick_place", obs_image=True, image_size=(32, 40))
    fault = make_perturbation("camera_occlusion", fraction=0.25, start=3)
    policy = RecordingPolicy()
    episode = run_perturbed_episode(
        "pick_place", fault, seed=0, index=0, source="policy", policy=policy, samples=2, env=env
    )
    assert episode.label.onset_step == 3
    assert episode.label.perturbation["kind"] == "camera_occlusion"
    top, left, bottom, right = fault.rectangle(32, 40)
    frames = episode.obs["image"]
    covered = frames[:, top:bottom, left:right]
    assert covered[:3].any(axis=(1, 2, 3)).all()  # before the start: the scene
    assert not covered[3:].any()  # from the start on: black
    # every inference saw the stored (faulty) frames, newest last
    assert len(policy.images) == len(episode.extras["inference_steps"])
    for step, window in zip(episode.extras["inference_steps"], policy.images, strict=True):
        np.testing.assert_array_equal(window[-1], frames[step])


def test_shipped_camera_fault_spec_runs_the_vision_expert() -> None:
    assert "camera_faults" in shipped_spec_names("pick_place")
    spec = load_spec("camera_faults", "pick_place")
    assert spec.source == "vision_expert" and spec.keep == "failures"
    assert {entry.kind for entry in spec.entries} == CAMERA_KINDS
    # a fault that starts after the cube was seen cannot fail an expert that keeps its estimate
    starts = {entry.kind: entry.ranges["start"] for entry in spec.entries}
    assert starts["camera_blur"] == starts["camera_occlusion"] == (0, 0)


# ----------------------------------------------------------------------------- vision expert
@pytest.fixture(scope="module")
def image_env() -> PickPlaceEnv:
    env = make_env("pick_place", obs_image=True)
    yield env
    env.close()


def test_vision_expert_locates_the_cube_within_millimetres(image_env: PickPlaceEnv) -> None:
    expert = VisionPickPlaceExpert(image_env)
    for seed in range(4):
        obs, _ = image_env.reset(seed=seed)
        expert.reset()
        expert.observe(obs)
        assert expert.estimate is not None
        error = np.linalg.norm(expert.estimate[:2] - image_env.cube_pos()[:2])
        assert error < 0.005, f"seed {seed}: {1000 * error:.1f} mm"


def test_occluded_cube_is_not_found_and_a_seen_one_goes_stale(image_env: PickPlaceEnv) -> None:
    occlusion = make_perturbation("camera_occlusion", fraction=1.0, start=0)
    occlusion.on_reset(image_env, np.random.default_rng(0))
    obs, _ = image_env.reset(seed=7)
    expert = VisionPickPlaceExpert(image_env)
    expert.observe(occlusion.on_observation(obs, 0))
    assert expert.estimate is None
    phase, keyframe = expert.plan()  # never seen: hold still, open
    np.testing.assert_allclose(keyframe.pos, image_env.ee_pos())
    assert phase == "reach" and keyframe.grip == -1.0

    expert.observe(obs)
    seen = expert.estimate.copy()
    adr = image_env.model.joint("cube").qposadr[0]
    image_env.data.qpos[adr] += 0.06  # the cube moves 6 cm while the camera is covered
    mujoco.mj_forward(image_env.model, image_env.data)
    expert.observe(occlusion.on_observation(image_env._observation(), 1))
    np.testing.assert_array_equal(expert.estimate, seen)
    assert np.linalg.norm(expert.estimate[:2] - image_env.cube_pos()[:2]) > 0.05


def _vision_spec(*perturbations: dict) -> object:
    return parse_spec(
        {
            "task": "pick_place",
            "source": "vision_expert",
            "keep": "all",
            "perturbations": list(perturbations),
        }
    )


def test_a_camera_fault_fails_the_vision_expert_that_succeeds_on_clean_images(
    tmp_path: Path,
) -> None:
    run = {"seed": 0, "backend": "inprocess", "image": True, "progress": False}
    clean = generate("pick_place", _vision_spec(), 2, tmp_path / "clean", **run)
    assert clean.kinds["none"].succeeded == 2
    # the camera is bumped 3 px upwards at step 2: the estimate jumps ~4 cm away from the cube
    bump = {"pixels": 3, "direction": -math.pi / 2, "start": 2}
    faulty = _vision_spec({"kind": "camera_shift", "params": bump})
    summary = generate("pick_place", faulty, 1, tmp_path / "shift", **run)
    assert summary.kinds["camera_shift"].failed == 1
    with open_dataset(tmp_path / "shift") as dataset:
        (episode,) = list(dataset)
    label = episode.label
    assert not label.success and label.failure_type == "camera_shift"
    assert label.onset_step == 2
    # the fingers close beside the cube and retry for many inferences: no one-step failure
    assert label.failure_step - label.onset_step > 3 * 8


def test_vision_source_needs_a_task_with_one_and_images(tmp_path: Path) -> None:
    push = parse_spec({"task": "push", "source": "vision_expert"})
    with pytest.raises(InvalidInputError, match=r"no vision expert.*source: vision_expert"):
        generate("push", push, 1, tmp_path / "push", image=True, progress=False)
    with pytest.raises(InvalidInputError, match=r"source: vision_expert.*--image"):
        generate("pick_place", _vision_spec(), 1, tmp_path / "dark", progress=False)
    with pytest.raises(InvalidInputError, match=r"slip.*source: vision_expert"):
        _vision_spec({"kind": "slip"})
    assert not (tmp_path / "push").exists() and not (tmp_path / "dark").exists()
