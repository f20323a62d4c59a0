"""Demo-level perturbations: edits of a scripted expert's keyframes (``level = "demo"``).

They act through :meth:`Perturbation.on_keyframe`, so they need the bundled scripted expert as
the controller (``run_expert_episode(..., keyframe_hook=...)``).

The bundled experts replan every control step from the true simulator state, and their gates
(e.g. "descend only once the fingers are within 8 mm of the cube") would undo a plain keyframe
offset within a step or two: the arm would just hover next to the goal. So most kinds here edit
what the expert *believes*, not only the keyframe it returned: a second copy of the task's expert
(the "shadow") plans on a view of the env in which a few queries are biased (the object is
believed ``offset`` m away, the hole is believed turned by ``dyaw``, the distractor is believed to
be the object...), and its keyframe is executed. The offset keyframes are then followed through
consistently (descend, close, lift, place), so the failure develops physically: the fingers close
next to the cube, a misaligned peg jams in the socket, a block is pushed to the wrong pose. Kinds
that need no belief (``slip``, ``stuck``, ``wrong_sequence``) edit the expert's own keyframe.

Every kind calls :meth:`Perturbation.mark_onset` at the first step where the executed keyframe
differs from the unperturbed expert's.

Per-task notes (phase names are the experts'):

=================  ==================================================================
kind               pick_place / peg_insert / push
=================  ==================================================================
grasp_miss         grasp point beside the object / same / unsupported (no gripper)
slip               gripper opens in lift or carry / same / unsupported (no gripper)
translation        ``phase`` 0: object-relative keyframes (reach, grasp; push:
                   approach, push); 1: goal-relative ones (carry, place; peg: carry,
                   align, insert; push: the target)
rotation           grasp yaw / hole-alignment yaw / target yaw
no_rotation        hand keeps its initial yaw / same, peg never turned to the hole /
                   target yaw ignored (the paddle still turns by quarter turns)
wrong_sequence     place before carry (low carry into the tray wall) / insert before
                   carry (peg dragged low into the socket) / descend before being behind
                   the block (the paddle sweeps through the block instead of hopping)
wrong_object       the blue distractor is picked and placed / unsupported / unsupported
stuck              all tasks
=================  ==================================================================
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from robofail.failgen.perturbation import Param, Perturbation, register
from robofail.tasks.base import wrap_angle
from robofail.tasks.expert import Keyframe, ScriptedExpert

GRIPPER_TASKS = ("pick_place", "peg_insert")


# ----------------------------------------------------------------------------- helpers
class BeliefView:
    """A read-only view of a task env in which some queries are overridden.

    Methods and properties of the env's class run with ``self`` bound to the view, so an override
    of ``cube_pos`` also changes ``cube_in_tray`` and every other query built on it. Overrides
    apply only while :attr:`active` is true; otherwise the view answers like the env.
    """

    def __init__(self, env: Any, overrides: dict[str, Any]) -> None:
        object.__setattr__(self, "_env", env)
        object.__setattr__(self, "_overrides", overrides)
        object.__setattr__(self, "active", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "active":
            raise AttributeError(f"BeliefView is read-only (tried to set {name!r})")
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if self.active and name in self._overrides:
            return self._overrides[name]
        env = self._env
        static = inspect.getattr_static(type(env), name, None)
        if isinstance(static, property) and static.fget is not None:
            return static.fget(self)
        if inspect.isfunction(static):
            return types.MethodType(static, self)
        return getattr(env, name)

    @property
    def unwrapped(self) -> BeliefView:
        return self


def _same_keyframe(a: Keyframe, b: Keyframe) -> bool:
    """Whether two keyframes command the same thing (to within 0.1 mm, 1 mrad)."""
    if (a.yaw is None) != (b.yaw is None):
        return False
    if a.yaw is not None and abs(wrap_angle(a.yaw - b.yaw)) > 1e-3:
        return False
    return bool(np.allclose(a.pos, b.pos, atol=1e-4)) and abs(a.grip - b.grip) < 1e-6


def _object_grasped(env: Any) -> bool:
    """Whether the gripper truly holds the task's object (False on gripperless tasks)."""
    if env.task_name == "pick_place":
        return bool(env.cube_grasped())
    if env.task_name == "peg_insert":
        return bool(env.peg_grasped())
    return False


def _object_yaw(env: Any) -> float:
    """Yaw (rad) of the task's object."""
    if env.task_name == "pick_place":
        return float(env.cube_yaw())
    if env.task_name == "peg_insert":
        return float(env.peg_yaw())
    return float(env.block_yaw())


def _shifted(query: Callable[[], np.ndarray], offset: np.ndarray) -> Callable[[], np.ndarray]:
    """A position query (3,) m shifted by ``offset`` (3,) m."""
    return lambda: query() + offset


def _turned(query: Callable[[], float], dyaw: float) -> Callable[[], float]:
    """A yaw query (rad) turned by ``dyaw`` rad."""
    return lambda: query() + dyaw


class DemoPerturbation(Perturbation):
    """Base of the demo-level kinds: keeps the env, optionally a shadow expert planning on a
    :class:`BeliefView`, and marks the onset at the first edited keyframe."""

    level: ClassVar[str] = "demo"
    #: Tasks the kind applies to (None: all).
    tasks: ClassVar[tuple[str, ...] | None] = None
    #: Why it does not apply elsewhere.
    unsupported_why: ClassVar[str] = ""

    env: Any = None
    _shadow: ScriptedExpert | None = None
    _view: BeliefView | None = None

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        name = getattr(getattr(env, "unwrapped", env), "task_name", None)
        if name is None:
            return (
                f"{cls.kind} edits a bundled scripted expert's keyframes; "
                f"{type(env).__name__} is not a robofail task"
            )
        if cls.tasks is not None and name not in cls.tasks:
            return f"{cls.kind} does not apply to {name}: {cls.unsupported_why}"
        return ""

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state: the parameters, without the episode's env and shadow expert."""
        runtime = {"env", "_shadow", "_view", "_planner"}
        return {key: value for key, value in self.__dict__.items() if key not in runtime}

    # ------------------------------------------------------------------ subclass API
    def setup(self, env: Any, rng: np.random.Generator) -> None:
        """Per-episode set-up after ``env.reset`` (draw directions, reset counters...)."""

    def beliefs(self, env: Any) -> dict[str, Any] | None:
        """Overrides of env queries for the shadow expert, or None to use no shadow."""
        return None

    def belief_active(self, phase: str, step: int) -> bool:
        """Whether the belief overrides apply at control step ``step``; ``phase`` is the
        unperturbed expert's phase there."""
        return True

    def edit(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        """The keyframe to execute given the (shadow's, if any) phase and keyframe."""
        return keyframe

    # ------------------------------------------------------------------ hooks
    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        self.env = env
        self.setup(env, rng)
        overrides = self.beliefs(env)
        self._shadow = self._view = None
        if overrides is not None:
            from robofail.tasks import make_expert

            self._view = BeliefView(env, overrides)
            self._shadow = make_expert(self._view)

    def on_keyframe(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        planned_phase, planned = phase, keyframe
        if self._shadow is not None and self._view is not None:
            self._view.active = self.belief_active(phase, step)
            planned_phase, planned = self._shadow.plan()
        result = self.edit(planned_phase, planned, step)
        if not _same_keyframe(result, keyframe):
            self.mark_onset(step)
        return result


# ----------------------------------------------------------------------------- kinds
@register
class GraspMiss(DemoPerturbation):
    """The grasp point is beside the object: the fingers close on nothing (or clip the object),
    the expert notices, reopens and retries at the same wrong point, ``misses`` times."""

    kind = "grasp_miss"
    doc = "the grasp is aimed beside the object, so the fingers close on nothing; repeated"
    tasks = GRIPPER_TASKS
    unsupported_why = "the task has no gripper, so there is no grasp to miss"
    params: ClassVar[dict[str, Param]] = {
        "offset": Param(
            0.0,
            0.1,
            (0.03, 0.06),
            units="m",
            doc="horizontal distance of the aimed grasp point from the object's grasp point, "
            "across the fingers (along the hand's x axis, sign drawn per episode)",
        ),
        "misses": Param(
            1,
            20,
            (3, 8),
            integer=True,
            units="attempts",
            doc="grasp attempts aimed beside the object before the aim is right again",
        ),
    }

    def setup(self, env: Any, rng: np.random.Generator) -> None:
        yaw = env.ee_target_yaw + wrap_angle(_object_yaw(env) - env.ee_target_yaw, math.pi / 2)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        self._offset = self.offset * sign * np.array([math.cos(yaw), math.sin(yaw), 0.0])
        self._attempts = 0
        self._closing = False
        self._aiming = False

    def beliefs(self, env: Any) -> dict[str, Any]:
        query = "cube_pos" if env.task_name == "pick_place" else "peg_top"
        return {query: _shifted(getattr(env, query), self._offset)}

    def belief_active(self, phase: str, step: int) -> bool:
        # the aim goes wrong on the way down (the first grasp phase), not from the start
        self._aiming = self._aiming or phase == "grasp"
        return self._aiming and self._attempts < self.misses and not _object_grasped(self.env)

    def edit(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        if phase == "grasp" and keyframe.grip > 0:
            self._closing = True
        elif self._closing and keyframe.grip < 0:  # the expert reopens: one attempt missed
            self._closing = False
            self._attempts += 1
        return keyframe


@register
class Slip(DemoPerturbation):
    """The object slips out: ``release_after`` steps after every grasp the gripper opens (while
    lifting or carrying) and stays open ``open_steps`` steps, so the object falls free."""

    kind = "slip"
    doc = "the gripper opens a few steps after each grasp, dropping the object in lift or carry"
    tasks = GRIPPER_TASKS
    unsupported_why = "the task has no gripper, so nothing is held that could slip"
    params: ClassVar[dict[str, Param]] = {
        "release_after": Param(
            0,
            50,
            (2, 6),
            integer=True,
            units="steps",
            doc="control steps from the first step the object is held to the release",
        ),
        "open_steps": Param(
            1,
            30,
            (4, 8),
            integer=True,
            units="steps",
            doc="control steps the gripper is kept open after the release",
        ),
    }
    #: Expert phases in which the object is released.
    release_phases: ClassVar[tuple[str, ...]] = ("lift", "carry")

    def setup(self, env: Any, rng: np.random.Generator) -> None:
        self._held = 0
        self._open_left = 0

    def edit(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        if self._open_left > 0:
            self._open_left -= 1
            return replace(keyframe, grip=-1.0)
        if _object_grasped(self.env):
            self._held += 1
        else:
            self._held = 0
        if self._held > self.release_after and phase in self.release_phases:
            self._held = 0
            self._open_left = self.open_steps - 1
            return replace(keyframe, grip=-1.0)
        return keyframe


@register
class Translation(DemoPerturbation):
    """The keyframes of one phase group are offset by (dx, dy, dz): the expert aims at a point
    shifted from the object (``phase`` 0) or from the goal (``phase`` 1) and follows the shifted
    keyframes through."""

    kind = "translation"
    doc = "the keyframes relative to the object (phase 0) or to the goal (phase 1) are offset"
    params: ClassVar[dict[str, Param]] = {
        "dx": Param(-0.15, 0.15, (-0.08, 0.08), units="m", doc="offset along world x"),
        "dy": Param(-0.15, 0.15, (-0.08, 0.08), units="m", doc="offset along world y"),
        "dz": Param(-0.05, 0.1, (0.0, 0.02), units="m", doc="offset along world z (up)"),
        "phase": Param(
            0,
            1,
            (0, 1),
            integer=True,
            units="index",
            doc="0: the object-relative phases (pick_place, peg_insert: reach and grasp; "
            "push: approach and push, i.e. the block's position); 1: the goal-relative phases "
            "(pick_place: carry and place; peg_insert: carry, align and insert; push: the "
            "target's position)",
        ),
    }

    def beliefs(self, env: Any) -> dict[str, Any]:
        offset = np.array([self.dx, self.dy, self.dz])
        queries = {
            ("pick_place", 0): "cube_pos",
            ("pick_place", 1): "tray_pos",
            ("peg_insert", 0): "peg_top",
            ("peg_insert", 1): "hole_pos",
            ("push", 0): "block_pos",
            ("push", 1): "goal_pos",
        }
        query = queries[(env.task_name, int(self.phase))]
        return {query: _shifted(getattr(env, query), offset)}

    def belief_active(self, phase: str, step: int) -> bool:
        # the object-relative offset ends with the grasp (after it, keyframes follow the goal)
        return int(self.phase) == 1 or not _object_grasped(self.env)


@register
class Rotation(DemoPerturbation):
    """A yaw offset on the yaw keyframes: the grasp yaw (pick_place), the yaw the peg is turned
    to over the hole (peg_insert), the target yaw the block is pushed square to (push)."""

    kind = "rotation"
    doc = "a yaw offset on the grasp (pick_place) or alignment (peg_insert, push) yaw"
    params: ClassVar[dict[str, Param]] = {
        "dyaw": Param(
            -math.pi / 4,
            math.pi / 4,
            (0.15, 0.6),
            units="rad",
            doc="yaw added to the keyframes' yaw (the objects are square: +-pi/4 covers all)",
        ),
    }

    def beliefs(self, env: Any) -> dict[str, Any]:
        query = {"pick_place": "cube_yaw", "peg_insert": "hole_yaw", "push": "goal_yaw"}
        name = query[env.task_name]
        return {name: _turned(getattr(env, name), self.dyaw)}


@register
class NoRotation(DemoPerturbation):
    """The expert never turns the hand: grasps with the initial yaw, never turns the peg to the
    hole (peg_insert); on push it ignores the target's yaw and pushes along the world axes of the
    paddle's initial yaw (the paddle still turns by the quarter turns needed to face a side)."""

    kind = "no_rotation"
    doc = "the expert never rotates (yaw keyframes stay at the initial yaw)"
    params: ClassVar[dict[str, Param]] = {}

    def setup(self, env: Any, rng: np.random.Generator) -> None:
        self._yaw0 = float(env.ee_target_yaw)

    def beliefs(self, env: Any) -> dict[str, Any]:
        def fixed() -> float:
            return self._yaw0

        if env.task_name == "pick_place":
            return {"cube_yaw": fixed}
        if env.task_name == "peg_insert":
            return {"peg_yaw": fixed, "hole_yaw": fixed}
        return {"goal_yaw": fixed}

    def edit(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        if self.env.task_name in GRIPPER_TASKS and keyframe.yaw is not None:
            return replace(keyframe, yaw=self._yaw0)
        return keyframe


@register
class WrongSequence(DemoPerturbation):
    """Two phases in the wrong order: the lowering phase runs before the transfer phase.
    pick_place: the cube is lowered to its placing height before being carried (it is dragged
    low into the tray's wall); peg_insert: the peg is lowered to the insertion depth before being
    carried (dragged along the table into the socket); push: the paddle descends before it is
    behind the block (it sweeps through the block instead of hopping over it)."""

    kind = "wrong_sequence"
    doc = "the lowering phase comes before the transfer phase (place/insert before carry)"
    params: ClassVar[dict[str, Param]] = {
        "duration": Param(
            1,
            150,
            (30, 100),
            integer=True,
            units="steps",
            doc="control steps, from the first swapped keyframe, during which the order is wrong",
        ),
    }

    def setup(self, env: Any, rng: np.random.Generator) -> None:
        self._planner: ScriptedExpert | None = None
        if env.task_name == "push":
            from robofail.tasks import make_expert
            from robofail.tasks.push import HOP_Z

            def raised() -> np.ndarray:
                return np.array([*env.ee_pos()[:2], HOP_Z])

            # the push expert keeps no memory: a copy that believes the paddle is already up
            # tells where a hop would go when the real one only asks to rise first
            self._planner = make_expert(BeliefView(env, {"ee_pos": raised}))

    def edit(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        if self.onset_step >= 0 and step - self.onset_step >= self.duration:
            return keyframe
        env = self.env
        if env.task_name == "pick_place":
            return self._pick_place(phase, keyframe)
        if env.task_name == "peg_insert":
            return self._peg_insert(phase, keyframe)
        return self._push(phase, keyframe)

    def _pick_place(self, phase: str, keyframe: Keyframe) -> Keyframe:
        from robofail.tasks.pick_place import CUBE_HALF

        if phase not in ("lift", "carry"):
            return keyframe
        env = self.env
        tray, cube, ee = env.tray_pos(), env.cube_pos(), env.ee_pos()
        rest_z = tray[2] + 0.008 + CUBE_HALF + 0.004  # the expert's placing height
        return replace(keyframe, pos=np.array([tray[0], tray[1], rest_z]) + (ee - cube))

    def _peg_insert(self, phase: str, keyframe: Keyframe) -> Keyframe:
        from robofail.tasks.peg_insert import HOLE_DEPTH

        if phase not in ("lift", "carry", "align"):
            return keyframe
        env = self.env
        hole_top, bottom, ee = env.hole_top(), env.peg_bottom(), env.ee_pos()
        floor = hole_top[2] - HOLE_DEPTH
        goal = np.array([hole_top[0], hole_top[1], floor - 0.004]) + (ee - bottom)
        return replace(keyframe, pos=goal)

    def _push(self, phase: str, keyframe: Keyframe) -> Keyframe:
        from robofail.tasks.push import LOW_Z, PUSH_Z

        if phase not in ("approach", "align") or keyframe.pos[2] < LOW_Z:
            return keyframe
        ee = self.env.ee_pos()
        if self._planner is not None and np.allclose(keyframe.pos[:2], ee[:2], atol=1e-9):
            keyframe = self._planner.plan()[1]  # "rise first": where the hop would go
        return replace(keyframe, pos=np.array([*keyframe.pos[:2], PUSH_Z]))


@register
class WrongObject(DemoPerturbation):
    """From ``start_step`` on, the expert targets the blue distractor cube instead of the red
    one: it picks the distractor, places it in the tray and, believing the task done, retreats
    (dropping the red cube first if it already held it)."""

    kind = "wrong_object"
    doc = "the distractor is picked and placed instead of the object"
    tasks = ("pick_place",)
    unsupported_why = "the scene has no distractor object to mistake for the task's object"
    params: ClassVar[dict[str, Param]] = {
        "start_step": Param(
            0,
            99,
            (0, 10),
            integer=True,
            units="steps",
            doc="control step from which the distractor is targeted",
        ),
    }

    def beliefs(self, env: Any) -> dict[str, Any]:
        return {
            "cube_geom": env.model.geom("distractor").id,
            "cube_pos": lambda: env.body_pos("distractor"),
            "cube_yaw": lambda: env.body_yaw("distractor"),
        }

    def belief_active(self, phase: str, step: int) -> bool:
        return step >= self.start_step


@register
class Stuck(DemoPerturbation):
    """The arm holds still for ``duration`` steps from ``start_step``: the keyframe is the pose
    the end effector had when it stopped, with the gripper command it had then."""

    kind = "stuck"
    doc = "the arm holds still (keyframe = the pose where it stopped) for a while"
    params: ClassVar[dict[str, Param]] = {
        "start_step": Param(
            0, 99, (5, 25), integer=True, units="steps", doc="control step the arm stops at"
        ),
        "duration": Param(
            1, 150, (60, 100), integer=True, units="steps", doc="control steps it stays still"
        ),
    }

    def setup(self, env: Any, rng: np.random.Generator) -> None:
        self._hold: Keyframe | None = None
        self._last_grip = -1.0

    def edit(self, phase: str, keyframe: Keyframe, step: int) -> Keyframe:
        start, end = self.start_step, self.start_step + self.duration
        if not start <= step < end:
            self._last_grip = keyframe.grip
            return keyframe
        if self._hold is None:
            env = self.env
            self._hold = Keyframe(env.ee_pos(), float(env.ee_target_yaw), self._last_grip)
        return self._hold
