"""Push: push a square block to a target pose (position and yaw) with a flat paddle; no gripper.

The end effector is a flat paddle (0.08 m wide, 0.012 m thick, 0.03 m high) that pushes with
its face; it can lift (``dz``) to hop over the block and reposition. The block is 0.05 x 0.05 m,
0.04 m high, 0.15 kg; its yaw matters modulo 90 degrees (square symmetry). The target pose is a
mocap body, so the randomised goal is part of the simulator state.

Action (4,): ``dx, dy, dz`` (paddle delta position, 1 = ``motion.max_step`` m) and ``dyaw``
(1 = ``motion.max_yaw_step`` rad).

Nominal initial conditions (uniform draws, metres / radians, table top at z = 0):
    paddle   x, y in [-0.05, 0.05], bottom edge at z = 0.12, yaw = 0
    block    x, y in [-0.12, 0.12], yaw in [-pi/4, pi/4) (all yaws, modulo 90 degrees)
    target   0.10 ... 0.20 m from the block in a uniform direction, redrawn until
             |x|, |y| <= 0.18; yaw in [-pi/4, pi/4)
Success: the block's centre is within 0.02 m of the target (in x-y), its yaw within 8 degrees
of the target's modulo 90 degrees, it lies flat (tilt < 10 degrees) and it is nearly at rest
(speed < 0.05 m/s).
Failure: the block left the table (z < -0.05) or tipped over (tilt > 30 degrees).
Phases: approach (moving the paddle to a pre-push pose), push (the paddle is low and at the
block), align (the position is within tolerance, the yaw is not), done (position and yaw within
tolerance).
Episode limit: 120 control steps (12 s); the expert needs ~34 on average (~39 with executed-action
noise of std 0.2), at most ~63 nominally and ~81 with that noise.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from robofail.tasks.base import MocapTaskEnv, quat_yaw, wrap_angle, yaw_quat
from robofail.tasks.expert import Keyframe, ObservationExpert, ObservedScene, ScriptedExpert

BLOCK_HALF = 0.025  # half side (m)
BLOCK_HALF_HEIGHT = 0.02  # (m)
PADDLE_HALF_THICKNESS = 0.006  # (m)
POS_TOL = 0.02  # success: block-to-target distance (m)
YAW_TOL = math.radians(8.0)  # success: yaw error modulo 90 degrees (rad)
FLAT_TILT = math.radians(10.0)  # success: the block counts as lying flat below this tilt
REST_SPEED = 0.05  # success: block speed (m/s)
TIPPED_TILT = math.radians(30.0)  # failure: tipped over beyond this tilt


def _yaw4(yaw: float) -> tuple[float, float]:
    """cos/sin of 4 * yaw: a square block looks the same every 90 degrees."""
    return math.cos(4 * yaw), math.sin(4 * yaw)


class PushEnv(MocapTaskEnv):
    """``robofail/Push-v0``. See the module docstring for the task definition."""

    xml_file = "push.xml"
    task_name = "push"
    policy_exec_horizon = 2
    object_body = "block"
    action_names: ClassVar[tuple[str, ...]] = ("dx", "dy", "dz", "dyaw")
    position_action_dims: ClassVar[tuple[int, ...]] = (0, 1, 2)
    state_names: ClassVar[tuple[str, ...]] = (
        "paddle_x",
        "paddle_y",
        "paddle_z",
        "paddle_vx",
        "paddle_vy",
        "paddle_vz",
        "paddle_yaw_cos",
        "paddle_yaw_sin",
        "block_x",
        "block_y",
        "block_z",
        "block_yaw4_cos",
        "block_yaw4_sin",
        "block_vx",
        "block_vy",
        "block_rel_x",
        "block_rel_y",
        "block_rel_z",
        "block_rel_yaw",
        "goal_x",
        "goal_y",
        "goal_yaw4_cos",
        "goal_yaw4_sin",
        "goal_err_x",
        "goal_err_y",
        "goal_err_yaw",
    )
    """State fields: paddle reference point (bottom-edge centre) position (m) and velocity
    (m/s), paddle yaw; block centre, cos/sin of 4 x block yaw, block velocity; block minus paddle
    position, block yaw minus paddle yaw wrapped to [-pi/4, pi/4); target position and yaw
    features; target minus block position expressed in the target's frame (m); target yaw minus
    block yaw wrapped to [-pi/4, pi/4) (rad)."""
    phase_names: ClassVar[tuple[str, ...]] = ("approach", "push", "align", "done")
    max_episode_steps: ClassVar[int] = 120
    workspace: ClassVar[tuple[tuple[float, float, float], tuple[float, float, float]]] = (
        (-0.35, -0.35, 0.002),
        (0.35, 0.35, 0.30),
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        model = self.model
        self.block_geom = model.geom("block").id
        self._block_body = model.body("block").id
        self._block_qpos = model.joint("block").qposadr[0]
        self._block_qvel = model.joint("block").dofadr[0]
        self._goal_mocap = model.body("goal").mocapid[0]
        self._paddle_site = model.site("paddle_ref").id
        self._paddle_body = model.body("paddle").id

    # ----------------------------------------------------------------- initial conditions
    def _sample_initial_conditions(self, rng: np.random.Generator) -> None:
        ee = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), 0.12])
        self.place_end_effector(ee, 0.0)
        block = rng.uniform(-0.12, 0.12, size=2)
        block_yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        while True:
            distance = rng.uniform(0.10, 0.20)
            heading = rng.uniform(-math.pi, math.pi)
            goal = block + distance * np.array([math.cos(heading), math.sin(heading)])
            if np.all(np.abs(goal) <= 0.18):
                break
        goal_yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        adr = self._block_qpos
        self.data.qpos[adr : adr + 3] = [block[0], block[1], BLOCK_HALF_HEIGHT]
        self.data.qpos[adr + 3 : adr + 7] = yaw_quat(block_yaw)
        self.data.mocap_pos[self._goal_mocap] = [goal[0], goal[1], BLOCK_HALF_HEIGHT]
        self.data.mocap_quat[self._goal_mocap] = yaw_quat(goal_yaw)

    # ----------------------------------------------------------------- action
    def _split_action(self, action: np.ndarray) -> tuple[np.ndarray, float, float | None]:
        return action[0:3], float(action[3]), None

    def compose_action(
        self, delta_pos: np.ndarray, delta_yaw: float, grip: float = 0.0
    ) -> np.ndarray:
        """(4,) float32 action; ``grip`` is ignored (the paddle has no gripper)."""
        return np.array([*delta_pos, delta_yaw], dtype=np.float32)

    # ----------------------------------------------------------------- queries
    def ee_pos(self) -> np.ndarray:
        """Position (3,) m of the paddle's reference point, the centre of its bottom edge."""
        return self.data.site_xpos[self._paddle_site].copy()

    def ee_yaw(self) -> float:
        """Yaw (rad) of the paddle; its face normal is (cos, sin) of it (either sign)."""
        return quat_yaw(self.data.xquat[self._paddle_body])

    def block_pos(self) -> np.ndarray:
        """Block centre (3,) m."""
        return self.data.xpos[self._block_body].copy()

    def block_yaw(self) -> float:
        """Block yaw (rad); meaningful modulo pi/2."""
        return quat_yaw(self.data.xquat[self._block_body])

    def block_tilt(self) -> float:
        """Angle (rad) between the block's up axis and the world's."""
        up = float(self.data.xmat[self._block_body][8])
        return math.acos(max(-1.0, min(1.0, up)))

    def block_speed(self) -> float:
        """Linear speed (m/s) of the block."""
        v = self.data.qvel[self._block_qvel : self._block_qvel + 3]
        return math.sqrt(float(v @ v))

    def goal_pos(self) -> np.ndarray:
        """Target position (3,) m (block-centre height)."""
        return self.data.mocap_pos[self._goal_mocap].copy()

    def goal_yaw(self) -> float:
        """Target yaw (rad); meaningful modulo pi/2."""
        return quat_yaw(self.data.mocap_quat[self._goal_mocap])

    def goal_error(self) -> np.ndarray:
        """Target minus block position (2,) m, in the target's frame (x along its yaw)."""
        dx, dy = self.goal_pos()[:2] - self.block_pos()[:2]
        c, s = math.cos(self.goal_yaw()), math.sin(self.goal_yaw())
        return np.array([c * dx + s * dy, -s * dx + c * dy])

    def yaw_error(self) -> float:
        """Target yaw minus block yaw (rad), wrapped to [-pi/4, pi/4)."""
        return wrap_angle(self.goal_yaw() - self.block_yaw(), math.pi / 2)

    def pose_reached(self) -> bool:
        """Block position and yaw within the success tolerances (ignoring flatness and speed)."""
        dist = float(np.linalg.norm(self.goal_pos()[:2] - self.block_pos()[:2]))
        return dist < POS_TOL and abs(self.yaw_error()) < YAW_TOL

    # ----------------------------------------------------------------- task definition
    def _state_vector(self) -> np.ndarray:
        ee, ee_yaw = self.ee_pos(), self.ee_yaw()
        block, block_yaw = self.block_pos(), self.block_yaw()
        block_vel = self.data.qvel[self._block_qvel : self._block_qvel + 2]
        goal, goal_yaw = self.goal_pos(), self.goal_yaw()
        return np.array(
            [
                *ee,
                *self.data.qvel[0:3],  # the paddle's free joint comes first: world velocity
                math.cos(ee_yaw),
                math.sin(ee_yaw),
                *block,
                *_yaw4(block_yaw),
                *block_vel,
                *(block - ee),
                wrap_angle(block_yaw - ee_yaw, math.pi / 2),
                *goal[:2],
                *_yaw4(goal_yaw),
                *self.goal_error(),
                self.yaw_error(),
            ]
        )

    def is_success(self) -> bool:
        return (
            self.pose_reached()
            and self.block_tilt() < FLAT_TILT
            and self.block_speed() < REST_SPEED
        )

    def is_failure(self) -> bool:
        return bool(self.block_pos()[2] < -0.05 or self.block_tilt() > TIPPED_TILT)

    def phase_index(self) -> int:
        block, ee = self.block_pos(), self.ee_pos()
        dist = float(np.linalg.norm(self.goal_pos()[:2] - block[:2]))
        if self.pose_reached():
            name = "done"
        elif dist < POS_TOL:
            name = "align"
        elif ee[2] < LOW_Z and np.linalg.norm(ee[:2] - block[:2]) < 0.07:
            name = "push"
        else:
            name = "approach"
        return self.phase_names.index(name)


# ----------------------------------------------------------------------------- expert
PUSH_Z = 0.003  # paddle bottom height while pushing (m)
HOP_Z = 0.08  # paddle bottom height while moving over the block (m)
LOW_Z = 0.055  # below this the paddle may hit the block (block top is at 0.04)
SQUARE_Z = 0.022  # the paddle pushes only with its bottom edge below this (m)
PRE_PUSH = 0.065  # paddle centre behind the block centre at the pre-push pose (m)
CONTACT = BLOCK_HALF + PADDLE_HALF_THICKNESS  # paddle centre behind block centre when flush (m)
START_TOL = 0.008  # start a push along an axis when its error exceeds this (m)
DONE_TOL = 0.003  # a push along an axis ends when its remaining error is below this (m)
ALIGN_YAW = math.radians(3.0)  # yaw error the expert aligns away (rad)
ALIGN_PUSH = 0.03  # an aligning push aims this far past the target (m)
SWITCH_COST = 0.5  # choosing a push: error (m) worth 1 m less paddle travel to the pre-push pose
PUSH_SPEED = 0.5  # action magnitude cap while pushing
FACE_LATERAL = 0.03  # the paddle is at a face while this close to the block's centre line (m)


class PushExpert(ScriptedExpert):
    """Manhattan pushes along the target frame's axes with the paddle flush against a block
    face: a wide flat paddle turns the block until a face lies against it, so pushing along the
    target's axes also aligns the block's yaw (modulo 90 degrees).

    The expert is Markov: every decision is a function of the current simulator state only (it
    keeps no memory between steps), so the same state always gives the same action. Each step:

    * Push direction (one of the four target-frame directions). If the paddle is low and flush
      behind the block for a direction (``_engaged``), it keeps pushing along it while the error
      left along it exceeds ``DONE_TOL``; otherwise a new push needs an error above
      ``START_TOL`` (hysteresis through the paddle's pose). A new push goes along the direction
      with the largest error less ``SWITCH_COST`` times the paddle's distance to its pre-push
      pose, so a paddle on its way to a pre-push pose keeps heading there.
    * Yaw. When the position is within ``START_TOL`` on both axes but the yaw is not within
      ``ALIGN_YAW``, the push goes from the nearest face (or the face the paddle is flush
      against) towards a point ``ALIGN_PUSH`` beyond the target: the flush push turns the block
      square, and once the yaw is aligned the ordinary position logic pushes it back.
    * Motion for the chosen direction: hop over the block to the pre-push pose behind it when
      needed, descend, push with the paddle centred on the block's line, slowing down near the
      end of the push.
    """

    def reset(self) -> None:
        self._speed = 1.0  # scratch: action magnitude cap of the current step, set by plan()

    def plan(self) -> tuple[str, Keyframe]:
        env: PushEnv = self.env
        self._speed = 1.0
        block, ee = env.block_pos(), env.ee_pos()
        goal_yaw = env.goal_yaw()
        axes = np.array(
            [[math.cos(goal_yaw), math.sin(goal_yaw)], [-math.sin(goal_yaw), math.cos(goal_yaw)]]
        )
        error = env.goal_error()
        k, extra = self._choose_direction(error, block, ee, axes)
        if k is None:
            # pose reached: lift clear of the block and let it settle
            return "done", Keyframe(np.array([ee[0], ee[1], max(ee[2], LOW_Z)]), None)
        label = "align" if extra else None
        d = _direction(k, axes)
        face_yaw = math.atan2(d[1], d[0])
        cur_yaw = env.ee_target_yaw
        paddle_yaw = cur_yaw + wrap_angle(face_yaw - cur_yaw, math.pi)
        along, lateral, yaw_err = self._face_coordinates(d, block, ee)
        low = ee[2] < LOW_Z
        at_face = low and _at_face(along, lateral, yaw_err)
        if at_face and ee[2] < SQUARE_Z:
            remaining = _remaining(k, error) + extra
            gap = -along - CONTACT  # ~0 once the paddle touches the block
            # slow down over the last centimetres so that the block does not slide past the goal
            slow = float(np.clip(0.1 + remaining / 0.04, 0.15, PUSH_SPEED))
            self._speed = PUSH_SPEED if gap > 0.008 else slow
            xy = block[:2] + d * (remaining - CONTACT)
            return label or "push", Keyframe(np.array([*xy, PUSH_Z]), paddle_yaw)
        pre = block[:2] - d * PRE_PUSH
        if low and along < -0.05 and yaw_err < 0.25:  # behind the block: slide over
            return label or "approach", Keyframe(np.array([*pre, PUSH_Z]), paddle_yaw)
        if at_face:  # too high to push squarely: back off before descending (never onto it)
            return label or "approach", Keyframe(np.array([*pre, ee[2]]), paddle_yaw)
        if low:  # rise before moving across
            return label or "approach", Keyframe(np.array([ee[0], ee[1], HOP_Z]), None)
        if np.linalg.norm(ee[:2] - pre) < 0.02 and yaw_err < 0.12:
            return label or "approach", Keyframe(np.array([*pre, PUSH_Z]), paddle_yaw)
        return label or "approach", Keyframe(np.array([*pre, HOP_Z]), paddle_yaw)

    def _choose_direction(
        self, error: np.ndarray, block: np.ndarray, ee: np.ndarray, axes: np.ndarray
    ) -> tuple[int | None, float]:
        """(push direction index, see ``_direction``, or None when nothing is left to do; extra
        distance (m) to push past the target, non-zero for an aligning push)."""
        yaw_off = abs(self.env.yaw_error()) > ALIGN_YAW
        k = self._engaged(block, ee, axes)
        if k is not None:
            remaining = _remaining(k, error)
            if remaining > DONE_TOL:
                return k, 0.0
            if (
                yaw_off
                and abs(error[1 - k // 2]) <= START_TOL
                and remaining + ALIGN_PUSH > DONE_TOL
            ):
                return k, ALIGN_PUSH
        distances = [
            float(np.linalg.norm(ee[:2] - (block[:2] - _direction(j, axes) * PRE_PUSH)))
            for j in range(4)
        ]
        candidates = [j for j in range(4) if _remaining(j, error) > START_TOL]
        if candidates:
            return max(
                candidates, key=lambda j: _remaining(j, error) - SWITCH_COST * distances[j]
            ), 0.0
        if not yaw_off:
            return None, 0.0
        # position fine, yaw not: push past the target from the nearest pre-push pose
        return int(np.argmin(distances)), ALIGN_PUSH

    def _engaged(self, block: np.ndarray, ee: np.ndarray, axes: np.ndarray) -> int | None:
        """The direction whose push the paddle is committed to: low, square and centred behind
        the block's face for it (between the pre-push pose and contact); None if none."""
        if ee[2] >= LOW_Z:
            return None
        for k in range(4):
            if _at_face(*self._face_coordinates(_direction(k, axes), block, ee)):
                return k
        return None

    def _face_coordinates(
        self, d: np.ndarray, block: np.ndarray, ee: np.ndarray
    ) -> tuple[float, float, float]:
        """The paddle relative to the block for a push along unit ``d`` (2,): (along (m, < 0
        behind the block), lateral offset (m), paddle yaw error (rad) modulo pi)."""
        rel = ee[:2] - block[:2]
        along = float(rel @ d)
        lateral = float(rel @ np.array([-d[1], d[0]]))
        yaw_err = abs(wrap_angle(math.atan2(d[1], d[0]) - self.env.ee_yaw(), math.pi))
        return along, lateral, yaw_err

    def action_towards(self, keyframe: Keyframe) -> np.ndarray:
        """Action (4,) float32 towards ``keyframe``. Unlike the base class, a position step too
        long for one action is scaled down as a whole (keeping its direction, which matters
        while pushing), to at most ``PUSH_SPEED`` while pushing."""
        env = self.env
        lim = env.motion
        delta = (keyframe.pos - env.ee_pos()) * self.gain / lim.max_step
        peak = float(np.max(np.abs(delta)))
        if peak > self._speed:
            delta *= self._speed / peak
        dyaw = 0.0
        if keyframe.yaw is not None:
            dyaw = wrap_angle(keyframe.yaw - env.ee_target_yaw) * self.gain / lim.max_yaw_step
        return env.compose_action(delta, float(np.clip(dyaw, -1.0, 1.0)), keyframe.grip)


def _direction(k: int, axes: np.ndarray) -> np.ndarray:
    """Unit vector (2,) of push direction ``k``: 0: +x, 1: -x, 2: +y, 3: -y of the target frame
    (``axes`` (2, 2): the target frame's x and y axes in the world)."""
    return axes[k // 2] * (1.0 if k % 2 == 0 else -1.0)


def _at_face(along: float, lateral: float, yaw_err: float) -> bool:
    """Whether a (low) paddle at these face coordinates (see ``PushExpert._face_coordinates``)
    is square behind the face, between the pre-push pose and contact."""
    return yaw_err < 0.15 and -0.09 < along < -0.02 and abs(lateral) < FACE_LATERAL


def _remaining(direction: int, error: np.ndarray) -> float:
    """Error (m) left along push ``direction`` (index, see ``_direction``)."""
    return float(error[direction // 2] * (1.0 if direction % 2 == 0 else -1.0))


class ObservedPush(ObservedScene):
    """Push as its state observation shows it (see :class:`ObservationPushExpert`)."""

    def ee_pos(self) -> np.ndarray:
        return self.fields("paddle_x", "paddle_y", "paddle_z")

    def ee_yaw(self) -> float:
        return self.angle("paddle_yaw_cos", "paddle_yaw_sin")

    def block_pos(self) -> np.ndarray:
        return self.fields("block_x", "block_y", "block_z")

    def goal_yaw(self) -> float:
        """Modulo 90 degrees (the expert's push axes are the same every 90 degrees)."""
        return self.angle("goal_yaw4_cos", "goal_yaw4_sin", 4)

    def goal_error(self) -> np.ndarray:
        """Target minus block position (2,) m in the target's frame, as observed."""
        return self.fields("goal_err_x", "goal_err_y")

    def yaw_error(self) -> float:
        return float(self.fields("goal_err_yaw")[0])


class ObservationPushExpert(ObservationExpert, PushExpert):
    """:class:`PushExpert` planning from the state observation the controller sees.

    Everything it plans with comes from ``obs["state"]`` (faults included; see
    :class:`ObservedPush`): the paddle's position (``paddle_x/y/z``) and yaw
    (``paddle_yaw_cos/sin``), the block's position (``block_x/y/z``), the target's yaw modulo 90
    degrees (``goal_yaw4_cos/sin``), the position error in the target's frame
    (``goal_err_x/y``) and the yaw error (``goal_err_yaw``). Actions are steps from the observed
    paddle position. From the simulator: only the paddle's commanded yaw (``ee_target_yaw``,
    the controller's own command). With no observation fault it acts as the privileged expert
    (up to the float32 rounding of the observation).
    """

    scene_type = ObservedPush
