"""PegInsert: grasp a square peg standing on the table and insert it into a tight square socket.

Scene (``sims/peg_insert.xml``): peg 0.026 x 0.026 x 0.11 m (0.04 kg); socket = four box walls
on the table around a 0.028 x 0.028 m hole (2 mm total clearance, 1 mm a side), 0.040 m deep
(the table top is its floor), with a 45-degree, 5 mm chamfer along the inner top edges. The
socket is a mocap body, so its pose is part of the simulator state.

Nominal initial conditions (uniform draws, metres / radians, table top at z = 0):
    gripper  x, y in [-0.05, 0.05], z = 0.20, yaw = 0, open
    peg      upright, x in [-0.12, 0.12], y in [-0.18, -0.05], yaw in [-pi/4, pi/4]
    socket   x in [-0.12, 0.12], y in [0.11, 0.18], yaw in [-pi/4, pi/4]
Success: the peg is inserted (its bottom face centre within ``INSERT_TOLERANCE`` = 0.01 m of
the hole floor, i.e. >= 0.03 m deep, and within the hole in x and y), upright (tilt < 0.2 rad)
and released (no finger touches it).
Failure (ends the episode): the peg left the table (z < -0.05) or fell over (tilt > 45 degrees
while no finger touches it). A jammed peg is not a failure: the expert backs up and retries.
Phases: reach, grasp, lift, carry, align, insert, release.
Episode limit: 100 control steps (10 s). The expert needs 29 on average nominally (max 35 over
seeds 0-199) and 40 with executed-action noise of std 0.2 on the position dims (max 76).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from robofail.tasks.base import wrap_angle
from robofail.tasks.expert import Keyframe, ObservationExpert, ObservedScene, ScriptedExpert
from robofail.tasks.gripper import GRIPPER_STATE_NAMES, GripperTaskEnv

PEG_HALF_SIDE = 0.013
PEG_HALF_LENGTH = 0.055
HOLE_HALF_SIDE = 0.014
HOLE_DEPTH = 0.040
CHAMFER = 0.005
#: Peg bottom (m) at most this far above the hole floor counts as inserted.
INSERT_TOLERANCE = 0.010
#: Height (m) of the peg bottom above the hole top while carrying.
CARRY_CLEARANCE = 0.03
MAX_UPRIGHT_TILT = 0.2
FALLEN_TILT = math.pi / 4


def _symmetric_yaw_features(yaw: float) -> tuple[float, float]:
    """cos/sin of 4 * yaw: a square section looks the same every 90 degrees."""
    return math.cos(4 * yaw), math.sin(4 * yaw)


class PegInsertEnv(GripperTaskEnv):
    """``robofail/PegInsert-v0``. See the module docstring for the task definition.

    State fields: the gripper's (``GRIPPER_STATE_NAMES``), then the peg's centre (m), the
    cos/sin of 4 x its yaw, its tilt from upright (rad), its centre relative to the grip point
    (m) and its yaw relative to the hand (rad, modulo 90 degrees), the socket's position (m,
    x, y) and cos/sin of 4 x its yaw, the hole-top centre minus the peg-bottom centre (m) and
    the yaw the peg still has to turn to fit the hole (rad, modulo 90 degrees).
    """

    xml_file = "peg_insert.xml"
    task_name = "peg_insert"
    policy_exec_horizon = 2
    object_body = "peg"
    state_names: ClassVar[tuple[str, ...]] = (
        *GRIPPER_STATE_NAMES,
        "peg_x",
        "peg_y",
        "peg_z",
        "peg_yaw4_cos",
        "peg_yaw4_sin",
        "peg_tilt",
        "peg_rel_x",
        "peg_rel_y",
        "peg_rel_z",
        "peg_rel_yaw",
        "hole_x",
        "hole_y",
        "hole_yaw4_cos",
        "hole_yaw4_sin",
        "peg_to_hole_x",
        "peg_to_hole_y",
        "peg_to_hole_z",
        "peg_to_hole_yaw",
    )
    phase_names: ClassVar[tuple[str, ...]] = (
        "reach",
        "grasp",
        "lift",
        "carry",
        "align",
        "insert",
        "release",
    )
    max_episode_steps: ClassVar[int] = 100

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.peg_geom = self.model.geom("peg").id
        self._peg_qpos = self.model.joint("peg").qposadr[0]
        self._peg_body = self.model.body("peg").id
        self._peg_bottom = self.model.site("peg_bottom").id
        self._peg_top = self.model.site("peg_top").id
        self._socket_mocap = self.model.body("socket").mocapid[0]

    # ----------------------------------------------------------------- initial conditions
    def _sample_initial_conditions(self, rng: np.random.Generator) -> None:
        ee = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), 0.20])
        self.place_end_effector(ee, 0.0)
        peg_xy = (rng.uniform(-0.12, 0.12), rng.uniform(-0.18, -0.05))
        peg_yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        adr = self._peg_qpos
        self.data.qpos[adr : adr + 3] = [*peg_xy, PEG_HALF_LENGTH]
        self.data.qpos[adr + 3 : adr + 7] = [math.cos(peg_yaw / 2), 0, 0, math.sin(peg_yaw / 2)]
        hole_yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        self.data.mocap_pos[self._socket_mocap] = [
            rng.uniform(-0.12, 0.12),
            rng.uniform(0.11, 0.18),
            0.0,
        ]
        self.data.mocap_quat[self._socket_mocap] = [
            math.cos(hole_yaw / 2),
            0.0,
            0.0,
            math.sin(hole_yaw / 2),
        ]
        self._set_gripper(-1.0)
        self.data.qpos[self._finger_qpos[0]] = self.data.qpos[self._finger_qpos[1]] = 0.045

    # ----------------------------------------------------------------- queries
    def peg_pos(self) -> np.ndarray:
        """Centre (3,) m of the peg."""
        return self.data.xpos[self._peg_body].copy()

    def peg_bottom(self) -> np.ndarray:
        """Centre (3,) m of the peg's bottom face."""
        return self.data.site_xpos[self._peg_bottom].copy()

    def peg_top(self) -> np.ndarray:
        """Centre (3,) m of the peg's top face."""
        return self.data.site_xpos[self._peg_top].copy()

    def peg_axis(self) -> np.ndarray:
        """Unit vector (3,) along the peg's long axis (bottom to top), world frame."""
        return self.data.xmat[self._peg_body].reshape(3, 3)[:, 2].copy()

    def peg_tilt(self) -> float:
        """Angle (rad) between the peg's long axis and the vertical."""
        return math.acos(max(-1.0, min(1.0, float(self.data.xmat[self._peg_body][8]))))

    def peg_yaw(self) -> float:
        """Yaw (rad) of the peg's x axis projected on the table."""
        mat = self.data.xmat[self._peg_body]
        return math.atan2(float(mat[3]), float(mat[0]))

    def hole_pos(self) -> np.ndarray:
        """Centre (3,) m of the hole floor (the socket's origin)."""
        return self.data.mocap_pos[self._socket_mocap].copy()

    def hole_top(self) -> np.ndarray:
        """Centre (3,) m of the hole's mouth (where the chamfer begins)."""
        return self.hole_pos() + np.array([0.0, 0.0, HOLE_DEPTH])

    def hole_yaw(self) -> float:
        """Yaw (rad) of the socket."""
        w, _, _, z = self.data.mocap_quat[self._socket_mocap]
        return 2.0 * math.atan2(float(z), float(w))

    def peg_in_hole_frame(self) -> np.ndarray:
        """Peg-bottom centre (3,) m in the socket's frame (origin at the hole floor centre)."""
        offset = self.peg_bottom() - self.hole_pos()
        yaw = self.hole_yaw()
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([c * offset[0] + s * offset[1], -s * offset[0] + c * offset[1], offset[2]])

    def peg_grasped(self) -> bool:
        """True when both finger pads touch the peg."""
        return self.is_grasping(self.peg_geom)

    def peg_inserted(self) -> bool:
        """True when the peg's bottom is within ``INSERT_TOLERANCE`` of the hole floor, inside the
        hole, and the peg is upright."""
        local = self.peg_in_hole_frame()
        return bool(
            local[2] < INSERT_TOLERANCE
            and np.all(np.abs(local[:2]) < HOLE_HALF_SIDE)
            and self.peg_tilt() < MAX_UPRIGHT_TILT
        )

    # ----------------------------------------------------------------- task definition
    def _state_vector(self) -> np.ndarray:
        ee, ee_yaw = self.ee_pos(), self.ee_yaw()
        peg, peg_yaw = self.peg_pos(), self.peg_yaw()
        hole, hole_yaw = self.hole_pos(), self.hole_yaw()
        return np.array(
            [
                *self._gripper_state(),
                *peg,
                *_symmetric_yaw_features(peg_yaw),
                self.peg_tilt(),
                *(peg - ee),
                wrap_angle(peg_yaw - ee_yaw, math.pi / 2),
                *hole[:2],
                *_symmetric_yaw_features(hole_yaw),
                *(self.hole_top() - self.peg_bottom()),
                wrap_angle(hole_yaw - peg_yaw, math.pi / 2),
            ]
        )

    def is_success(self) -> bool:
        return self.peg_inserted() and not self.touches_fingers(self.peg_geom)

    def is_failure(self) -> bool:
        if self.peg_pos()[2] < -0.05:
            return True
        return self.peg_tilt() > FALLEN_TILT and not self.touches_fingers(self.peg_geom)

    def phase_index(self) -> int:
        bottom, ee, hole_top = self.peg_bottom(), self.ee_pos(), self.hole_top()
        to_hole = float(np.linalg.norm(bottom[:2] - hole_top[:2]))
        if self.peg_inserted():
            name = "release"
        elif self.peg_grasped():
            if to_hole < HOLE_HALF_SIDE + CHAMFER and bottom[2] < hole_top[2] + CHAMFER + 0.005:
                name = "insert"
            elif to_hole < 0.01:
                name = "align"
            elif bottom[2] < hole_top[2] + CARRY_CLEARANCE - 0.02 and to_hole > 0.05:
                name = "lift"
            else:
                name = "carry"
        else:
            top = self.peg_top()
            near = np.linalg.norm(top[:2] - ee[:2]) < 0.015 and ee[2] < top[2]
            name = "grasp" if near else "reach"
        return self.phase_names.index(name)


class PegInsertExpert(ScriptedExpert):
    """Reach above the peg with the fingers across two faces, descend around its upper part,
    close, lift, carry the peg's bottom above the hole, turn it to the hole's yaw (modulo 90
    degrees), line it up using the *peg's* measured position (it may sit off-centre or tilted in
    the grasp), descend; when the peg stops going down above the inserted depth (jammed), back up
    and retry; when inserted, open. Every keyframe is recomputed from the state, so a dropped
    (still upright) peg is simply grasped again."""

    #: Grip point (m) below the peg's top face when grasping.
    grasp_depth: float = 0.034
    #: Peg-bottom xy error (m) and yaw error (rad) under which the expert starts descending.
    xy_capture: float = 0.004
    yaw_tolerance: float = 0.04
    #: Largest descent (m) commanded per control step while inserting.
    insert_step: float = 0.012
    #: Control steps without 1.5 mm of downward progress that count as a jam.
    jam_steps: int = 3
    #: Control steps spent backing up after a jam.
    backoff_steps: int = 2

    def reset(self) -> None:
        self._closed_steps = 0
        self._reopen_steps = 0
        self._backoff_steps = 0
        self._descent_z: list[float] = []

    def plan(self) -> tuple[str, Keyframe]:
        env: PegInsertEnv = self.env
        ee = env.ee_pos()
        if env.peg_inserted():
            self._closed_steps = 0
            if env.touches_fingers(env.peg_geom):  # open in place
                return "release", Keyframe(ee, None, -1.0)
            return "release", Keyframe(ee + np.array([0.0, 0.0, 0.03]), None, -1.0)
        if self._closed_steps >= 2 and self._holding():
            self._closed_steps = 2
            return self._transport(ee)
        self._descent_z.clear()
        self._backoff_steps = 0
        return self._grasp(ee)

    def _holding(self) -> bool:
        """Whether the closed gripper holds the peg; tolerates one pad's contact flickering."""
        env: PegInsertEnv = self.env
        if env.peg_grasped():
            return True
        closed_on_peg = env.gripper_opening() < 2 * PEG_HALF_SIDE + 0.004
        return closed_on_peg and env.touches_fingers(env.peg_geom)

    def _grasp(self, ee: np.ndarray) -> tuple[str, Keyframe]:
        env: PegInsertEnv = self.env
        top = env.peg_top()
        grasp_yaw = env.ee_yaw() + wrap_angle(env.peg_yaw() - env.ee_yaw(), math.pi / 2)
        xy_error = float(np.linalg.norm(top[:2] - ee[:2]))
        yaw_error = abs(wrap_angle(grasp_yaw - env.ee_target_yaw))
        above_z = top[2] + 0.05
        if self._closed_steps > 8:  # closed on nothing: open, rise, try again
            self._closed_steps, self._reopen_steps = 0, 4
        if self._reopen_steps > 0:
            self._reopen_steps -= 1
            return "reach", Keyframe(np.array([top[0], top[1], above_z]), grasp_yaw, -1.0)
        target = np.array([top[0], top[1], top[2] - self.grasp_depth])
        if self._closed_steps == 0:
            if ee[2] < top[2] + 0.02 and xy_error > 0.015:  # too low to move sideways: rise
                return "reach", Keyframe(np.array([ee[0], ee[1], above_z]), grasp_yaw, -1.0)
            if xy_error > 0.01 or yaw_error > 0.1:  # line up, descending no further
                goal = np.array([top[0], top[1], min(max(ee[2], target[2]), above_z)])
                return "reach", Keyframe(goal, grasp_yaw, -1.0)
        if ee[2] > target[2] + 0.004 and self._closed_steps == 0:
            return "grasp", Keyframe(target, grasp_yaw, -1.0)
        self._closed_steps += 1
        return "grasp", Keyframe(target, grasp_yaw, 1.0)

    def _transport(self, ee: np.ndarray) -> tuple[str, Keyframe]:
        env: PegInsertEnv = self.env
        bottom, top, hole_top = env.peg_bottom(), env.peg_top(), env.hole_top()
        offset = ee - bottom  # keep the hand where it holds the peg
        yaw_goal = env.ee_yaw() + wrap_angle(env.hole_yaw() - env.peg_yaw(), math.pi / 2)
        yaw_error = abs(wrap_angle(yaw_goal - env.ee_target_yaw))
        xy_error = float(np.linalg.norm(hole_top[:2] - bottom[:2]))
        height = bottom[2] - hole_top[2]  # peg bottom above the hole's mouth (m)
        carry_z = hole_top[2] + CARRY_CLEARANCE
        approach_z = hole_top[2] + CHAMFER + 0.004
        in_hole = height < -0.002 and xy_error < HOLE_HALF_SIDE

        if not in_hole and xy_error > 0.03 and bottom[2] < carry_z - 0.02:
            self._descent_z.clear()
            return "lift", Keyframe(ee + np.array([0.0, 0.0, carry_z - bottom[2]]), None, 1.0)
        if self._backoff_steps > 0:  # jammed: back up above the mouth, realign, retry
            self._backoff_steps -= 1
            goal = np.array([hole_top[0], hole_top[1], approach_z + 0.005])
            return "insert", Keyframe(goal + offset, yaw_goal, 1.0)
        # in the hole the walls hold the bottom: put the top over the hole to keep the peg upright
        xy = ee[:2] + hole_top[:2] - top[:2] if in_hole else hole_top[:2] + offset[:2]
        if not in_hole and (xy_error > self.xy_capture or yaw_error > self.yaw_tolerance):
            self._descent_z.clear()
            if xy_error > 0.012:
                goal_z = max(carry_z, bottom[2]) if xy_error > 0.03 else approach_z
                name = "carry"
            else:
                goal_z = approach_z
                name = "align"
            return name, Keyframe(np.array([*xy, goal_z + offset[2]]), yaw_goal, 1.0)
        # insert: descend towards slightly below the floor, watching for a jam
        self._descent_z.append(float(bottom[2]))
        if len(self._descent_z) > self.jam_steps and (
            self._descent_z[-self.jam_steps - 1] - bottom[2] < 0.0015
        ):
            self._descent_z.clear()
            self._backoff_steps = self.backoff_steps
        floor = hole_top[2] - HOLE_DEPTH
        z = max(floor - 0.004, bottom[2] - self.insert_step)
        return "insert", Keyframe(np.array([*xy, z + offset[2]]), yaw_goal, 1.0)


class ObservedPegInsert(ObservedScene):
    """PegInsert as its state observation shows it (see :class:`ObservationPegInsertExpert`)."""

    def ee_pos(self) -> np.ndarray:
        return self.fields("ee_x", "ee_y", "ee_z")

    def ee_yaw(self) -> float:
        return self.angle("ee_yaw_cos", "ee_yaw_sin")

    def gripper_opening(self) -> float:
        return float(self.fields("gripper_opening")[0])

    def peg_yaw(self) -> float:
        """Modulo 90 degrees (all the expert uses)."""
        return self.angle("peg_yaw4_cos", "peg_yaw4_sin", 4)

    def peg_tilt(self) -> float:
        return float(self.fields("peg_tilt")[0])

    def hole_pos(self) -> np.ndarray:
        """Observed x, y; z = 0 (the socket stands on the table; not in the state)."""
        return np.array([*self.fields("hole_x", "hole_y"), 0.0])

    def hole_yaw(self) -> float:
        """Modulo 90 degrees (the square hole is the same every 90 degrees)."""
        return self.angle("hole_yaw4_cos", "hole_yaw4_sin", 4)

    def peg_bottom(self) -> np.ndarray:
        """The hole's mouth minus the observed mouth-to-peg-bottom offset (3,) m."""
        return self.hole_top() - self.fields("peg_to_hole_x", "peg_to_hole_y", "peg_to_hole_z")

    def peg_top(self) -> np.ndarray:
        """The peg-bottom estimate mirrored through the observed peg centre (3,) m."""
        return 2.0 * self.fields("peg_x", "peg_y", "peg_z") - self.peg_bottom()

    hole_top = PegInsertEnv.hole_top
    peg_in_hole_frame = PegInsertEnv.peg_in_hole_frame
    peg_inserted = PegInsertEnv.peg_inserted  # on the observed peg, hole and tilt


class ObservationPegInsertExpert(ObservationExpert, PegInsertExpert):
    """:class:`PegInsertExpert` planning from the state observation the controller sees.

    From ``obs["state"]`` (faults included; see :class:`ObservedPegInsert`): the hand's position
    (``ee_x/y/z``) and yaw (``ee_yaw_cos/sin``), the gripper opening, the peg's yaw modulo 90
    degrees (``peg_yaw4_cos/sin``) and tilt, the socket's position (``hole_x/y``; z = 0) and
    yaw modulo 90 degrees (``hole_yaw4_cos/sin``); the peg's bottom is the hole's mouth minus
    the observed ``peg_to_hole_x/y/z``, its top that point mirrored through the observed peg
    centre (``peg_x/y/z``); whether the peg is inserted follows from these. Actions are steps
    from the observed hand position. From the simulator: the finger contact tests
    (``peg_grasped``, ``touches_fingers``: tactile signals the state does not carry) and the
    hand's commanded yaw (``ee_target_yaw``, the controller's own command). With no observation
    fault it acts as the privileged expert (up to the float32 rounding of the observation).
    """

    scene_type = ObservedPegInsert
