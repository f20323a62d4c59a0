"""Demo-level perturbations on the real MuJoCo tasks: each kind makes the scripted expert fail on
seeds where it succeeds unperturbed, marks its onset, validates its parameters and says where it
does not apply."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from robofail.errors import InvalidInputError
from robofail.failgen import demo_level
from robofail.failgen.perturbation import REGISTRY
from robofail.failgen.wrappers import PerturbationWrapper
from robofail.tasks import make_env
from robofail.tasks.demos import run_expert_episode

KINDS = (
    "grasp_miss",
    "slip",
    "translation",
    "rotation",
    "no_rotation",
    "wrong_sequence",
    "wrong_object",
    "stuck",
)
SEEDS = range(6)

#: kind -> (task, mid-range parameter values) where it is tested.
CASES = {
    "grasp_miss": ("pick_place", {"offset": 0.045, "misses": 6}),
    "slip": ("peg_insert", {"release_after": 4, "open_steps": 6}),
    "translation": ("peg_insert", {"dx": 0.03, "dy": -0.02, "dz": 0.01, "phase": 1}),
    "rotation": ("push", {"dyaw": 0.4}),
    "no_rotation": ("push", {}),
    "wrong_sequence": ("peg_insert", {"duration": 65}),
    "wrong_object": ("pick_place", {"start_step": 5}),
    "stuck": ("pick_place", {"start_step": 15, "duration": 80}),
}


def run(task: str, perturbation, index: int):
    """One expert episode of ``task`` (seed 0, ``index``) under ``perturbation`` (or none)."""
    env = make_env(task)
    if perturbation is None:
        return run_expert_episode(env, seed=0, index=index)
    wrapped = PerturbationWrapper(env, perturbation, seed=0)
    return run_expert_episode(
        wrapped,
        seed=0,
        index=index,
        keyframe_hook=lambda phase, kf: perturbation.on_keyframe(phase, kf, wrapped.steps),
    )


@functools.cache
def nominal_success(task: str) -> tuple[bool, ...]:
    return tuple(run(task, None, i).label.success for i in SEEDS)


def test_all_kinds_registered_with_documented_params():
    for kind in KINDS:
        cls = REGISTRY[kind]
        assert cls.level == "demo" and cls.doc
        assert issubclass(cls, demo_level.DemoPerturbation)
        for name, param in cls.params.items():
            assert param.units and param.doc, f"{kind}.{name}"
            assert param.low <= param.default[0] <= param.default[1] <= param.high


@pytest.mark.parametrize("kind", KINDS)
def test_kind_makes_the_expert_fail(kind):
    task, values = CASES[kind]
    assert all(nominal_success(task)), f"the unperturbed expert fails on {task}"
    outcomes = []
    for i in SEEDS:
        p = REGISTRY[kind](**values)
        ep = run(task, p, i)
        outcomes.append(ep.label.success)
        if not ep.label.success:
            assert 0 <= p.onset_step < ep.label.failure_step, (kind, i)
    failures = outcomes.count(False)
    assert failures >= 4, f"{kind} on {task}: only {failures}/6 failures"


@pytest.mark.parametrize("task", ["pick_place", "push", "peg_insert"])
def test_zero_offset_changes_nothing(task):
    """The shadow expert on an unbiased belief plans exactly what the expert plans."""
    p = REGISTRY["translation"](dx=0.0, dy=0.0, dz=0.0, phase=1)
    for i in range(2):
        nominal, perturbed = run(task, None, i), run(task, p, i)
        assert p.onset_step == -1
        np.testing.assert_array_equal(nominal.actions, perturbed.actions)


def test_onset_is_when_the_arm_stops():
    p = REGISTRY["stuck"](start_step=7, duration=50)
    run("pick_place", p, 0)
    assert p.onset_step == 7


def test_out_of_range_and_unknown_parameters_are_rejected():
    with pytest.raises(InvalidInputError, match="release_after"):
        REGISTRY["slip"](release_after=-1, open_steps=4)
    with pytest.raises(InvalidInputError, match="offset"):
        REGISTRY["grasp_miss"](offset=0.5, misses=3)
    with pytest.raises(InvalidInputError, match="misses"):
        REGISTRY["grasp_miss"](offset=0.05, misses=2.5)
    with pytest.raises(InvalidInputError, match="dyaw"):
        REGISTRY["rotation"](dyaw=float("nan"))
    with pytest.raises(InvalidInputError, match="speed"):
        REGISTRY["stuck"](start_step=3, duration=10, speed=1.0)
    with pytest.raises(InvalidInputError, match="duration"):
        REGISTRY["stuck"](start_step=3)


def test_unsupported_reasons():
    push, peg, pick = make_env("push"), make_env("peg_insert"), make_env("pick_place")
    for kind in ("grasp_miss", "slip", "wrong_object"):
        reason = REGISTRY[kind].unsupported_reason(push)
        assert reason.startswith(f"{kind} does not apply to push")
        assert "gripper" in reason or "distractor" in reason
    assert "distractor" in REGISTRY["wrong_object"].unsupported_reason(peg)
    for kind in KINDS:
        assert REGISTRY[kind].unsupported_reason(pick) == ""
    for kind in ("translation", "rotation", "no_rotation", "wrong_sequence", "stuck"):
        assert REGISTRY[kind].unsupported_reason(push) == ""
    assert REGISTRY["slip"].unsupported_reason(object()) != ""


def test_belief_view_overrides_propagate_and_switch_off():
    env = make_env("pick_place")
    env.reset(seed=3)
    shift = np.array([0.3, 0.0, 0.0])
    view = demo_level.BeliefView(env, {"tray_pos": lambda: env.tray_pos() + shift})
    assert np.allclose(view.tray_pos(), env.tray_pos() + shift)
    assert view.unwrapped is view and view.data is env.data
    view.active = False
    assert np.allclose(view.tray_pos(), env.tray_pos())
    with pytest.raises(AttributeError):
        view.data = None
