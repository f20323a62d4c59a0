"""Camera faults reach an image policy through the generator, and the shipped camera spec."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from robofail.failgen.generator import run_perturbed_episode
from robofail.failgen.perturbation import make_perturbation
from robofail.failgen.spec import load_spec, shipped_spec_names
from robofail.tasks import make_env

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


def test_shipped_camera_fault_spec_perturbs_a_policy() -> None:
    assert "camera_faults" in shipped_spec_names("pick_place")
    spec = load_spec("camera_faults", "pick_place")
    assert spec.source == "policy" and spec.keep == "all"
    assert {entry.kind for entry in spec.entries} == CAMERA_KINDS
