"""Environment-level perturbations on real MuJoCo: on a gymnasium env robofail did not write and
on the bundled tasks with the scripted expert as controller."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robofail.errors import InvalidInputError
from robofail.failgen import env_level
from robofail.failgen.perturbation import REGISTRY, Perturbation
from robofail.failgen.wrappers import PerturbationWrapper
from robofail.tasks import make_env
from robofail.tasks.demos import run_expert_episode

ENV_KINDS = sorted(k for k, cls in REGISTRY.items() if cls.level == "env")
MODEL_EDITS = ("mass", "friction", "size", "actuator_gain")


def make(kind: str, **values: float) -> Perturbation:
    """A perturbation with the given values, the others at the middle of their default range."""
    cls = REGISTRY[kind]
    mid = {
        name: param.default[0] + (param.default[1] - param.default[0]) / 2
        for name, param in cls.params.items()
    }
    mid = {n: round(v) if cls.params[n].integer else v for n, v in mid.items()}
    return cls(**{**mid, **values})


def model_arrays(model) -> dict[str, np.ndarray]:
    """A copy of every array field of an MjModel."""
    return {
        name: np.array(getattr(model, name), copy=True) for name in env_level._model_arrays(model)
    }


def assert_same_model(model, snapshot: dict[str, np.ndarray]) -> None:
    changed = [n for n, v in snapshot.items() if not np.array_equal(v, getattr(model, n))]
    assert not changed, f"model fields not restored: {changed}"


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch) -> None:
    """MuJoCo writes its compiler warnings (HalfCheetah's scene uses the deprecated
    ``settotalmass``) to MUJOCO_LOG.TXT in the working directory: keep it out of the checkout."""
    monkeypatch.chdir(tmp_path)


def gym_make(env_id: str) -> gym.Env:
    """``gym.make`` of one of gymnasium's own MuJoCo envs."""
    return gym.make(env_id)


def trajectory(env: gym.Env, seed: int, steps: int = 25) -> np.ndarray:
    """Observations (steps + 1, ...) under a fixed random action sequence."""
    rng = np.random.default_rng(123)
    obs, _ = env.reset(seed=seed)
    out = [np.asarray(obs).copy()]
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-0.5, 0.5, env.action_space.shape).astype(np.float32))
        out.append(np.asarray(obs).copy())
    return np.stack(out)


# ----------------------------------------------------------------------------- foreign env
FOREIGN = [
    ("InvertedPendulum-v5", "mass", {"scale": 4.0}),
    ("HalfCheetah-v5", "friction", {"scale": 0.05}),
    ("InvertedPendulum-v5", "push", {"force": 3.0, "step": 2, "duration": 3}),
    ("InvertedPendulum-v5", "action_noise", {"std": 0.5, "start": 0}),
    ("InvertedPendulum-v5", "obs_noise", {"std": 0.05, "start": 0}),
]


@pytest.mark.parametrize(("env_id", "kind", "values"), FOREIGN)
def test_foreign_env_behaviour_changes_and_model_restores(env_id, kind, values):
    env = gym_make(env_id)
    nominal = model_arrays(env.unwrapped.model)
    plain = trajectory(env, seed=3)
    wrapped = PerturbationWrapper(env, make(kind, **values), seed=0)
    perturbed = trajectory(wrapped, seed=3)
    assert perturbed.shape == plain.shape and perturbed.dtype == plain.dtype  # same obs type
    assert not np.allclose(perturbed, plain)
    assert 0 <= wrapped.perturbation.onset_step <= 2
    # the next reset restores before re-applying: the edit does not compound
    again = trajectory(wrapped, seed=3)
    np.testing.assert_array_equal(again, perturbed)
    wrapped.close()
    assert_same_model(env.unwrapped.model, nominal)
    np.testing.assert_array_equal(trajectory(env, seed=3), plain)


def test_foreign_default_body_and_explicit_target():
    env = gym_make("InvertedPendulum-v5").unwrapped
    assert env.model.body(env_level.default_target_body(env)).name == "pole"
    p = make("mass", scale=2.0)
    p.target_body = "cart"
    mass = env.model.body_mass.copy()
    p.on_reset(env, np.random.default_rng(0))
    cart = env.model.body("cart").id
    assert env.model.body_mass[cart] == 2.0 * mass[cart]
    p.restore(env)
    np.testing.assert_array_equal(env.model.body_mass, mass)
    p.target_body = "no_such_body"
    with pytest.raises(InvalidInputError, match="no_such_body"):
        p.on_reset(env, np.random.default_rng(0))


def test_foreign_env_unsupported_kinds_are_refused():
    env = gym_make("InvertedPendulum-v5")
    for kind in ("camera_blur", "distractor", "init_pose"):
        assert REGISTRY[kind].unsupported_reason(env.unwrapped)
        with pytest.raises(InvalidInputError, match=kind):
            PerturbationWrapper(env, make(kind), seed=0)


# ----------------------------------------------------------------------------- bundled tasks
@pytest.fixture(scope="module")
def envs():
    made = {task: make_env(task) for task in ("pick_place", "push", "peg_insert")}
    yield made
    for env in made.values():
        env.close()


#: kind, task, mid-range values where the scripted expert fails on most seeds
EXPERT_FAILURES = [
    ("init_pose", "peg_insert", {"distance": 0.35}),
    ("mass", "pick_place", {"scale": 100.0}),
    ("friction", "peg_insert", {"scale": 0.01}),
    ("size", "peg_insert", {"scale": 1.3}),
    ("actuator_gain", "peg_insert", {"scale": 0.01}),
    ("action_delay", "peg_insert", {"steps": 5}),
    ("action_noise", "peg_insert", {"std": 0.9, "start": 5}),
    ("push", "push", {"force": 1.0, "step": 8, "duration": 5}),
    ("distractor", "peg_insert", {"distance": 0.08, "lateral": 0.0}),
]
SEEDS = (0, 1, 2)


def test_unperturbed_expert_succeeds(envs):
    for task in ("push", "peg_insert"):
        assert all(run_expert_episode(envs[task], seed=0, index=i).label.success for i in SEEDS)


@pytest.mark.parametrize(("kind", "task", "values"), EXPERT_FAILURES)
def test_perturbation_makes_the_expert_fail(envs, kind, task, values):
    env = envs[task]
    nominal = model_arrays(env.model)
    failures = 0
    for i in SEEDS:
        wrapped = PerturbationWrapper(env, make(kind, **values), seed=0)
        episode = run_expert_episode(wrapped, seed=0, index=i)
        p = wrapped.perturbation
        failures += not episode.label.success
        assert p.onset_step >= 0
        info = wrapped._info({})["perturbation"]
        assert info["kind"] == kind and info["onset_step"] == p.onset_step
        wrapped.close()
        assert_same_model(env.model, nominal)
    assert failures >= 2, f"{kind} on {task}: {failures} failures of {len(SEEDS)}"


@pytest.mark.parametrize("kind", (*MODEL_EDITS, "distractor", "push"))
def test_restore_is_bit_identical(envs, kind):
    env = envs["peg_insert"]
    nominal = model_arrays(env.model)
    p = make(kind, **({"step": 0} if kind == "push" else {}))
    p.on_reset(env, np.random.default_rng(0))
    p.before_physics(env, 0)
    if kind != "distractor":
        assert any(not np.array_equal(v, getattr(env.model, n)) for n, v in nominal.items()) or (
            kind == "push" and env.data.xfrc_applied.any()
        )
    p.restore(env)
    p.restore(env)  # idempotent
    assert_same_model(env.model, nominal)
    assert not env.data.xfrc_applied.any()
    obstacle = env.model.body("obstacle")
    np.testing.assert_array_equal(env.data.mocap_pos[obstacle.mocapid[0]], obstacle.pos)


def test_size_keeps_the_object_on_the_table(envs):
    env = envs["peg_insert"]
    env.reset(seed=0)
    bottom = env.peg_bottom()[2]
    p = make("size", scale=1.4)
    p.on_reset(env, np.random.default_rng(0))
    assert env.peg_bottom()[2] == pytest.approx(bottom, abs=1e-9)
    assert env.model.geom("peg").size[0] == pytest.approx(0.013 * 1.4)
    p.restore(env)


def test_distractor_stands_between_object_and_goal(envs):
    env = envs["pick_place"]
    wrapped = PerturbationWrapper(env, make("distractor", distance=0.08, lateral=0.0), seed=0)
    wrapped.reset(seed=4)
    wall, cube, tray = env.body_pos("obstacle"), env.cube_pos(), env.tray_pos()
    # 0.08 m along the path, or further on (1 cm at a time) where it would overlap a body
    assert 0.08 - 1e-9 <= np.linalg.norm(wall[:2] - cube[:2]) <= 0.28
    assert not env_level._touches(env.model, env.data, env.model.body("obstacle").id)
    assert np.dot(wall[:2] - cube[:2], tray[:2] - cube[:2]) > 0
    assert wall[2] == pytest.approx(0.06, abs=1e-6)  # standing on the table
    wrapped.close()
    obstacle = env.model.body("obstacle")
    np.testing.assert_array_equal(env.data.mocap_pos[obstacle.mocapid[0]], obstacle.pos)


def test_init_pose_leaves_the_nominal_box(envs):
    env = envs["push"]
    wrapped = PerturbationWrapper(env, make("init_pose", distance=0.3, yaw=0.0), seed=0)
    for seed in range(5):
        env.reset(seed=seed)
        nominal = env.block_pos()
        wrapped.reset(seed=seed)
        moved = env.block_pos()
        assert np.linalg.norm(moved[:2]) > np.linalg.norm(nominal[:2])
        assert np.all(np.abs(moved[:2]) <= 0.5) and moved[2] == pytest.approx(nominal[2])
    wrapped.close()


@pytest.mark.parametrize(
    "kind", ["action_noise", "obs_noise", "obs_bias", "obs_dropout", "push", "init_pose"]
)
def test_same_seeds_same_episode(envs, kind):
    env = envs["push"]

    def run(wrapper_seed: int) -> np.ndarray:
        wrapped = PerturbationWrapper(env, make(kind, **_early(kind)), seed=wrapper_seed)
        episode = run_expert_episode(wrapped, seed=0, index=1)
        wrapped.close()
        return np.concatenate([episode.obs["state"].ravel(), episode.states.ravel()])

    first = run(0)
    assert first.tobytes() == run(0).tobytes()
    if kind not in ("push", "obs_bias"):  # push has no random draw; bias has few sign choices
        assert first.tobytes() != run(1).tobytes()


def _early(kind: str) -> dict[str, float]:
    return (
        {"step": 2}
        if kind == "push"
        else ({"start": 1} if "start" in REGISTRY[kind].params else {})
    )


def test_observation_faults_leave_the_simulation_alone(envs):
    env = envs["pick_place"]
    plain = run_expert_episode(env, seed=0, index=2)
    for kind in ("obs_noise", "obs_bias", "obs_dropout"):
        wrapped = PerturbationWrapper(env, make(kind, start=3), seed=0)
        episode = run_expert_episode(wrapped, seed=0, index=2)
        np.testing.assert_array_equal(episode.states, plain.states)  # the expert reads the sim
        assert not np.array_equal(episode.obs["state"], plain.obs["state"])
        np.testing.assert_array_equal(episode.obs["state"][:3], plain.obs["state"][:3])
        assert wrapped.perturbation.onset_step >= 3
        wrapped.close()


@pytest.mark.parametrize("task", ["pick_place", "push", "peg_insert"])
def test_observation_faults_spec_is_the_sensing_part_of_policy_failures(task):
    from robofail.failgen.spec import load_spec, shipped_spec_names

    assert "observation_faults" in shipped_spec_names(task)
    sensing = load_spec("observation_faults", task)
    kinds = {entry.kind for entry in sensing.entries}
    assert kinds == {"obs_noise", "obs_bias", "obs_dropout"}
    assert kinds <= {entry.kind for entry in load_spec("policy_failures", task).entries}
    assert sensing.source == "policy" and sensing.task == task


def test_obs_dropout_holds_the_previous_observation():
    p = make("obs_dropout", prob=1.0, start=2)
    p.on_reset(None, np.random.default_rng(0))
    frames = [{"state": np.full(3, float(i), np.float32)} for i in range(5)]
    seen = [p.on_observation(f, i)["state"][0] for i, f in enumerate(frames)]
    assert seen == [0.0, 1.0, 1.0, 1.0, 1.0] and p.onset_step == 2
    q = make("obs_noise", std=0.1, start=0)
    q.on_reset(None, np.random.default_rng(0))
    out = q.on_observation(np.zeros(4), 0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.any()


# ----------------------------------------------------------------------------- camera faults
@pytest.fixture(scope="module")
def image_obs():
    env = make_env("pick_place", obs_image=True, image_size=(64, 80))
    obs, _ = env.reset(seed=0)
    yield env, obs
    env.close()


def _fault(kind: str, env, obs: dict, **values: float) -> dict:
    p = make(kind, start=0, **values)
    p.on_reset(env, np.random.default_rng(5))
    out = p.on_observation(obs, 0)
    assert p.onset_step == 0 and out["image"].shape == obs["image"].shape
    assert out["image"].dtype == np.uint8
    np.testing.assert_array_equal(out["state"], obs["state"])
    return out, p


def test_camera_occlusion_fills_a_rectangle(image_obs):
    env, obs = image_obs
    out, p = _fault("camera_occlusion", env, obs, fraction=0.25)
    top, left, bottom, right = p.rectangle(64, 80)
    assert (bottom - top) * (right - left) == pytest.approx(0.25 * 64 * 80, rel=0.05)
    assert not out["image"][top:bottom, left:right].any()
    mask = np.ones((64, 80), bool)
    mask[top:bottom, left:right] = False
    np.testing.assert_array_equal(out["image"][mask], obs["image"][mask])


def test_camera_blur_removes_high_frequencies(image_obs):
    env, obs = image_obs
    out, _ = _fault("camera_blur", env, obs, sigma=2.0)

    def high_frequency(img: np.ndarray) -> float:
        gray = img.astype(np.float64).mean(axis=2)
        lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1]
        return float(np.var(lap - gray[1:-1, :-2] - gray[1:-1, 2:]))

    assert high_frequency(out["image"]) < 0.3 * high_frequency(obs["image"])


def test_camera_brightness_and_shift(image_obs):
    env, obs = image_obs
    dark, _ = _fault("camera_brightness", env, obs, scale=0.5)
    np.testing.assert_allclose(dark["image"], np.round(obs["image"] * 0.5), atol=1)
    shifted, _ = _fault("camera_shift", env, obs, pixels=6.0, direction=0.0)  # 6 px right
    np.testing.assert_array_equal(shifted["image"][:, 6:], obs["image"][:, :-6])
    assert not shifted["image"][:, :6].any()


def test_camera_faults_need_images(envs):
    for kind in ("camera_occlusion", "camera_blur", "camera_brightness", "camera_shift"):
        assert "image" in REGISTRY[kind].unsupported_reason(envs["pick_place"])
    assert REGISTRY["actuator_gain"].unsupported_reason(envs["push"])


# ----------------------------------------------------------------------------- validation
def test_every_env_kind_is_registered_with_documented_params():
    expected = {
        "init_pose",
        "mass",
        "friction",
        "size",
        "actuator_gain",
        "action_delay",
        "action_noise",
        "obs_noise",
        "obs_bias",
        "obs_dropout",
        "push",
        "distractor",
        "camera_occlusion",
        "camera_blur",
        "camera_brightness",
        "camera_shift",
    }
    assert expected <= set(ENV_KINDS)
    for kind in expected:
        cls = REGISTRY[kind]
        assert cls.doc and cls.__doc__ and cls.params
        for param in cls.params.values():
            assert param.low <= param.default[0] <= param.default[1] <= param.high
            assert param.units and param.doc


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("mass", {"scale": 0.0}),
        ("friction", {"scale": -1.0}),
        ("action_delay", {"steps": 2.5}),
        ("action_noise", {"std": float("nan"), "start": 0}),
        ("camera_occlusion", {"fraction": 1.5, "start": 0}),
        ("push", {"force": 1.0, "direction": 4.0, "step": 0, "duration": 1}),
    ],
)
def test_out_of_range_params_are_rejected(kind, values):
    with pytest.raises(InvalidInputError, match=kind):
        REGISTRY[kind](**values)
