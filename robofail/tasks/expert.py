"""Scripted experts: keyframe/phase controllers that replan from whatever state the env is in.

An expert looks at the privileged simulator state each control step, decides which phase the task
is in and which keyframe (end-effector target position, yaw, gripper command) that phase asks for,
and turns it into an action. Because the keyframe is recomputed from the state every step, the
expert rescues perturbed episodes (the recovery work relies on it). ``keyframe_hook`` lets the
failure generator edit keyframes (offsets, a dropped grasp...) without touching the expert.
A vision expert (``PickPlace``'s ``VisionPickPlaceExpert``) instead perceives its object in the
observation's camera image, handed to it by :meth:`ScriptedExpert.observe` before each action.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

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
