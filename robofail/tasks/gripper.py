"""Tasks that use the parallel-jaw gripper of ``sims/gripper.xml``.

Action (5,): ``dx, dy, dz`` (end-effector delta position, 1 = ``motion.max_step`` m),
``dyaw`` (1 = ``motion.max_yaw_step`` rad) and ``grip`` (-1 open ... +1 closed).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from robofail.tasks.base import MocapTaskEnv

GRIPPER_ACTION_NAMES = ("dx", "dy", "dz", "dyaw", "grip")
#: State fields every gripper task starts its observation with.
GRIPPER_STATE_NAMES = (
    "ee_x",
    "ee_y",
    "ee_z",
    "ee_vx",
    "ee_vy",
    "ee_vz",
    "ee_yaw_cos",
    "ee_yaw_sin",
    "gripper_opening",
)


class GripperTaskEnv(MocapTaskEnv):
    """A :class:`MocapTaskEnv` whose end effector is the parallel-jaw gripper."""

    action_names: ClassVar[tuple[str, ...]] = GRIPPER_ACTION_NAMES

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        model = self.model
        self._finger_geoms = (model.geom("finger_left").id, model.geom("finger_right").id)
        self._finger_qpos = (
            model.joint("finger_left").qposadr[0],
            model.joint("finger_right").qposadr[0],
        )
        self._grip_site = model.site("grip").id

    def _split_action(self, action: np.ndarray) -> tuple[np.ndarray, float, float | None]:
        return action[0:3], float(action[3]), float(action[4])

    def compose_action(self, delta_pos: np.ndarray, delta_yaw: float, grip: float) -> np.ndarray:
        return np.array([*delta_pos, delta_yaw, grip], dtype=np.float32)

    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._grip_site].copy()

    def ee_yaw(self) -> float:
        """Yaw (rad) of the hand."""
        return self.body_yaw("hand")

    def gripper_opening(self) -> float:
        """Distance (m) between the finger pads' inner faces, ~0 closed ... 0.09 open."""
        q = self.data.qpos
        return float(q[self._finger_qpos[0]] + q[self._finger_qpos[1]])

    def is_grasping(self, geom_id: int) -> bool:
        """True when both finger pads touch geom ``geom_id``."""
        left, right = self._finger_geoms
        return self.in_contact(left, geom_id) and self.in_contact(right, geom_id)

    def touches_fingers(self, geom_id: int) -> bool:
        """True when either finger pad touches geom ``geom_id``."""
        left, right = self._finger_geoms
        return self.in_contact(left, geom_id) or self.in_contact(right, geom_id)

    def _gripper_state(self) -> list[float]:
        """Values of ``GRIPPER_STATE_NAMES`` for the current state."""
        vel = self.data.qvel[0:3]  # the hand's free joint comes first: world linear velocity
        yaw = self.ee_yaw()
        return [*self.ee_pos(), *vel, np.cos(yaw), np.sin(yaw), self.gripper_opening()]
