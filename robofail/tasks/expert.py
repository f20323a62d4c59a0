"""Scripted experts: keyframe/phase controllers that replan from whatever state the env is in.

An expert looks at the privileged simulator state each control step, decides which phase the task
is in and which keyframe (end-effector target position, yaw, gripper command) that phase asks for,
and turns it into an action. Because the keyframe is recomputed from the state every step, the
expert rescues perturbed episodes (the recovery work relies on it). ``keyframe_hook`` lets the
failure generator edit keyframes (offsets, a dropped grasp...) without touching the expert.
A vision expert (``PickPlace``'s ``VisionPickPlaceExpert``) instead perceives its object in the
observation's camera image, handed to it by :meth:`ScriptedExpert.observe` before each action.
An *observation* expert (:class:`ObservationExpert`, one per bundled task) plans the same way but
reads the poses it plans with from the state observation the controller sees (faults included)
instead of from the simulator: it tells which failures can be recovered from what the
controller observes, not only from the simulator's ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from robofail.errors import InvalidInputError
from robofail.tasks.base import MocapTaskEnv, wrap_angle


@dataclass(frozen=True)
class Keyframe:
    """An end-effector goal.

    Attributes:
        pos: (3,) target position of the end-effector reference point (m, world frame).
        yaw: target yaw (rad), or None to keep the current yaw.
        grip: gripper command in [-1, 1] (-1 open, +1 closed); ignored by gripperless tasks.
    """

    pos: np.ndarray
    yaw: float | None = None
    grip: float = -1.0

    def moved(self, offset: np.ndarray) -> Keyframe:
        """The same keyframe shifted by ``offset`` (3,) m."""
        return replace(self, pos=self.pos + offset)


#: ``hook(phase_name, keyframe) -> keyframe`` applied to every keyframe the expert produces.
KeyframeHook = Callable[[str, Keyframe], Keyframe]


class ScriptedExpert:
    """Base class of the bundled experts. Subclasses implement :meth:`plan`."""

    #: Fraction of the remaining distance commanded per step (< 1 avoids overshoot).
    gain: float = 1.0

    def __init__(self, env: MocapTaskEnv, *, keyframe_hook: KeyframeHook | None = None) -> None:
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        self.keyframe_hook = keyframe_hook
        self.reset()

    def reset(self) -> None:
        """Forget per-episode memory; call after ``env.reset`` or ``env.set_state``."""

    def observe(self, obs: Mapping[str, np.ndarray]) -> None:
        """The observation the controller sees before this step's :meth:`act` (after any
        observation fault). The privileged experts read the simulator and ignore it; vision
        experts perceive the scene in ``obs["image"]``."""

    def plan(self) -> tuple[str, Keyframe]:
        """(phase name, keyframe) for the current simulator state."""
        raise NotImplementedError

    def act(self) -> np.ndarray:
        """The expert's action (A,) float32 in [-1, 1] for the current simulator state."""
        phase, keyframe = self.plan()
        if self.keyframe_hook is not None:
            keyframe = self.keyframe_hook(phase, keyframe)
        return self.action_towards(keyframe)

    def action_towards(self, keyframe: Keyframe) -> np.ndarray:
        """Action that moves the end-effector reference point towards ``keyframe``."""
        env = self.env
        lim = env.motion
        delta = (keyframe.pos - env.ee_pos()) * self.gain / lim.max_step
        dyaw = 0.0
        if keyframe.yaw is not None:
            dyaw = wrap_angle(keyframe.yaw - env.ee_target_yaw) * self.gain / lim.max_yaw_step
        return env.compose_action(
            np.clip(delta, -1.0, 1.0), float(np.clip(dyaw, -1, 1)), keyframe.grip
        )


class ObservedScene:
    """The scene as the controller's state observation shows it, for an observation expert.

    Subclasses (one per task) define the pose queries their expert plans with (``ee_pos``,
    ``cube_pos``, ...) from the named fields of the last state observation, with the env's own
    names and units, so the privileged expert's code runs unchanged on top. Every other
    attribute (contact tests, the commanded yaw ``ee_target_yaw``, ``motion``,
    ``compose_action``...) is the simulator env's: each task's observation expert lists which
    quantities come from where.
    """

    def __init__(self, env: MocapTaskEnv) -> None:
        self.sim = env
        self._index = {name: i for i, name in enumerate(env.state_names)}
        self._state: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "sim":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.sim, name)

    def update(self, state: np.ndarray) -> None:
        """Take ``state`` (S,) (the env's ``state_names`` order) as the current observation."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (len(self._index),):
            raise InvalidInputError(
                f"state observation of shape {state.shape}; {self.sim.task_name} has "
                f"{len(self._index)} state fields: pass obs['state'] of this task's env"
            )
        self._state = state

    def fields(self, *names: str) -> np.ndarray:
        """The observed values (len(names),) of the named state fields, in their units."""
        if self._state is None:
            raise RuntimeError("no observation yet: call the expert's observe(obs) before act()")
        return self._state[[self._index[name] for name in names]]

    def angle(self, cos_name: str, sin_name: str, multiple: int = 1) -> float:
        """The angle (rad) whose ``multiple`` times has the observed cos/sin fields (a 4x
        feature gives the yaw modulo 90 degrees, in (-pi/4, pi/4])."""
        c, s = self.fields(cos_name, sin_name)
        return float(np.arctan2(s, c)) / multiple


class ObservationExpert(ScriptedExpert):
    """Mixin that makes a task's privileged expert plan from the state observation: its ``env``
    becomes the task's :class:`ObservedScene` (``scene_type``), updated by :meth:`observe` before
    every action. Use as ``class X(ObservationExpert, TaskExpert)`` with ``scene_type`` set."""

    scene_type: ClassVar[type[ObservedScene]]

    def __init__(self, env: MocapTaskEnv, *, keyframe_hook: KeyframeHook | None = None) -> None:
        super().__init__(env, keyframe_hook=keyframe_hook)
        self.env = self.scene_type(self.env)

    def observe(self, obs: Mapping[str, np.ndarray]) -> None:
        """Plan the next action with ``obs["state"]`` (faults included)."""
        self.env.update(obs["state"])
