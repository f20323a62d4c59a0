"""The shared base of the bundled tasks: a MuJoCo scene with an end effector driven through a mocap
weld, stepped at a fixed control rate with a smoothed mocap motion inside each control step.

A control step (``1 / control_hz`` seconds) is ``n_substeps`` physics steps. The action's position
part asks the end effector to move by up to ``max_step`` metres; the mocap target follows that goal
with bounded velocity and acceleration, updated every ``substeps_per_segment`` physics steps, so a
grasped object never sees a jump in the commanded pose. The mocap velocity is kept in
``data.userdata`` so the full integration state (``mjSTATE_INTEGRATION``) replays a step exactly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import mujoco
import numpy as np

from robofail.errors import InvalidInputError

STATE_SIG = mujoco.mjtState.mjSTATE_INTEGRATION


def sims_dir() -> Path:
    """Folder holding the bundled MJCF scenes: ``robofail/sims`` in an installed wheel, the
    repository's ``sims/`` in a source checkout or editable install."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "sims"
    return installed if installed.is_dir() else package.parent / "sims"


@dataclass(frozen=True)
class MotionLimits:
    """Limits of the smoothed end-effector motion.

    Attributes:
        max_step: distance (m) an action of 1 asks the end effector to move in one control step.
        max_speed: speed limit of the mocap target (m/s).
        max_accel: acceleration limit of the mocap target (m/s^2).
        max_yaw_step: yaw change (rad) an action of 1 asks for in one control step.
        max_yaw_speed: yaw rate limit (rad/s).
        max_yaw_accel: yaw acceleration limit (rad/s^2).
    """

    max_step: float = 0.03
    max_speed: float = 0.36
    max_accel: float = 4.0
    max_yaw_step: float = 0.25
    max_yaw_speed: float = 3.0
    max_yaw_accel: float = 40.0


def yaw_quat(yaw: float) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation by ``yaw`` radians about +z; shape (4,)."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def quat_yaw(quat: np.ndarray) -> float:
    """Yaw (rad, about +z) of a (w, x, y, z) quaternion; shape (4,) -> float."""
    w, x, y, z = quat
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(angle: float, period: float = 2 * math.pi) -> float:
    """Angle wrapped into [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2


class MocapTaskEnv(gym.Env):
    """Base gymnasium env of a bundled task. Subclasses define the scene, the initial-condition
    distribution, the observation, the predicates and the phases.

    Observation: ``{"state": (S,) float32}`` with field names ``state_names``, plus
    ``"image": (H, W, 3) uint8`` when ``obs_image=True``.
    Action: ``(A,) float32`` in [-1, 1] with names ``action_names``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    #: MJCF file name inside ``sims/``.
    xml_file: ClassVar[str]
    #: Short task name used by the CLI (``pick_place``...).
    task_name: ClassVar[str]
    #: Names of the action dimensions.
    action_names: ClassVar[tuple[str, ...]]
    #: Names of the state-observation fields.
    state_names: ClassVar[tuple[str, ...]]
    #: Names of the task's phases; per-step phase indices refer to this tuple.
    phase_names: ClassVar[tuple[str, ...]]
    #: Indices of the action dims that are end-effector positions (for action-chunk entropy).
    position_action_dims: ClassVar[tuple[int, ...]] = (0, 1, 2)
    #: Control rate (Hz) and physics steps per control step.
    control_hz: ClassVar[float] = 10.0
    substeps_per_segment: ClassVar[int] = 5
    #: Actions of each 16-step chunk the reference policy executes before re-planning on this
    #: task (fewer = more closed-loop; contact-rich tasks need it).
    policy_exec_horizon: ClassVar[int] = 8
    #: Episode time limit in control steps.
    max_episode_steps: ClassVar[int] = 100
    motion: ClassVar[MotionLimits] = MotionLimits()
    #: Axis-aligned box (m) the end-effector target is kept in: ((xmin, ymin, zmin), (xmax, ...)).
    workspace: ClassVar[tuple[tuple[float, float, float], tuple[float, float, float]]] = (
        (-0.35, -0.35, 0.0),
        (0.35, 0.35, 0.35),
    )
    #: Name of the body the task manipulates (perturbations of mass, friction, pushes act on it).
    object_body: ClassVar[str]
    #: Name of the mocap body the end effector follows.
    mocap_body: ClassVar[str] = "ee_target"

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        obs_image: bool = False,
        image_size: tuple[int, int] = (96, 96),
        camera: str = "front",
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise InvalidInputError(
                f"{self.spec_id}: render_mode must be None or 'rgb_array', got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.obs_image = bool(obs_image)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.camera = camera
        self.model = mujoco.MjModel.from_xml_path(str(sims_dir() / self.xml_file))
        self.data = mujoco.MjData(self.model)
        self._mocap_id = int(self.model.body(self.mocap_body).mocapid[0])
        self.n_substeps = round(1.0 / (self.control_hz * self.model.opt.timestep))
        if self.n_substeps % self.substeps_per_segment:
            raise ValueError(f"{self.spec_id}: substeps must divide evenly into segments")
        self._n_segments = self.n_substeps // self.substeps_per_segment
        self._segment_dt = self.substeps_per_segment * self.model.opt.timestep
        self._ws_low = np.array(self.workspace[0])
        self._ws_high = np.array(self.workspace[1])
        self._renderer: mujoco.Renderer | None = None
        self._frame_renderer: mujoco.Renderer | None = None
        self.steps = 0

        n_act = len(self.action_names)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        spaces: dict[str, gym.Space] = {
            "state": gym.spaces.Box(
                -np.inf, np.inf, shape=(len(self.state_names),), dtype=np.float32
            )
        }
        if self.obs_image:
            h, w = self.image_size
            spaces["image"] = gym.spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

    # ----------------------------------------------------------------- subclass hooks
    def _sample_initial_conditions(self, rng: np.random.Generator) -> None:
        """Write a nominal initial configuration into ``self.data`` (before ``mj_forward``)."""
        raise NotImplementedError

    def _state_vector(self) -> np.ndarray:
        """The state observation, (S,) float64 in the order of ``state_names``."""
        raise NotImplementedError

    def _split_action(self, action: np.ndarray) -> tuple[np.ndarray, float, float | None]:
        """Split a clipped action into (delta position (3,) in [-1, 1], delta yaw in [-1, 1],
        gripper command in [-1, 1] or None when the task has no gripper)."""
        raise NotImplementedError

    def compose_action(self, delta_pos: np.ndarray, delta_yaw: float, grip: float) -> np.ndarray:
        """Inverse of :meth:`_split_action`: (A,) float32 action from its parts in [-1, 1]."""
        raise NotImplementedError

    def ee_pos(self) -> np.ndarray:
        """Position (3,) m of the end-effector reference point (between the fingertips)."""
        raise NotImplementedError

    def is_success(self) -> bool:
        """The task's success predicate on the current simulator state."""
        raise NotImplementedError

    def is_failure(self) -> bool:
        """The task's failure predicate (an unrecoverable state) on the current simulator state."""
        return False

    def phase_index(self) -> int:
        """Index into ``phase_names`` of the phase the current state is in."""
        raise NotImplementedError

    # ----------------------------------------------------------------- gymnasium API
    @property
    def spec_id(self) -> str:
        """The gymnasium id of this task (``robofail/PickPlace-v0``...)."""
        from robofail.tasks import get_task

        return get_task(self.task_name).env_id

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset to a draw from the task's nominal initial-condition distribution.

        Same ``seed`` -> bit-identical initial state.
        """
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self._sample_initial_conditions(self.np_random)
        mujoco.mj_forward(self.model, self.data)
        self.steps = 0
        return self._observation(), self._info()

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one action for one control step (``n_substeps`` physics steps)."""
        action = self._check_action(action)
        dpos, dyaw, grip = self._split_action(np.clip(action, -1.0, 1.0))
        if grip is not None:
            self._set_gripper(grip)
        self._move_mocap(dpos * self.motion.max_step, dyaw * self.motion.max_yaw_step)
        self.steps += 1
        success = self.is_success()
        failure = (not success) and self.is_failure()
        truncated = self.steps >= self.max_episode_steps and not (success or failure)
        return self._observation(), float(success), success or failure, truncated, self._info()

    def render(self) -> np.ndarray | None:
        """RGB frame (480, 640, 3) uint8 from the env's camera if ``render_mode='rgb_array'``."""
        if self.render_mode != "rgb_array":
            return None
        if self._frame_renderer is None:
            self._frame_renderer = mujoco.Renderer(self.model, 480, 640)
        self._frame_renderer.update_scene(self.data, camera=self.camera)
        return self._frame_renderer.render()

    def close(self) -> None:
        for renderer in (self._renderer, self._frame_renderer):
            if renderer is not None:
                renderer.close()
        self._renderer = self._frame_renderer = None

    # ----------------------------------------------------------------- state and replay
    @property
    def state_size(self) -> int:
        """Length N of the full simulator state vector."""
        return mujoco.mj_stateSize(self.model, STATE_SIG)

    def get_state(self) -> np.ndarray:
        """The full simulator state (``mjSTATE_INTEGRATION``: time, qpos, qvel, act, controls,
        mocap poses, userdata, warm start), (N,) float64. Setting it back replays exactly."""
        state = np.empty(self.state_size)
        mujoco.mj_getState(self.model, self.data, state, STATE_SIG)
        return state

    def set_state(self, state: np.ndarray, *, steps: int | None = None) -> dict[str, np.ndarray]:
        """Restore a state from :meth:`get_state` and return the observation at it.

        Args:
            state: (N,) float64 full simulator state.
            steps: control steps already taken in the episode (for the time limit); kept if None.
        """
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_size,) or not np.all(np.isfinite(state)):
            raise InvalidInputError(
                f"{self.spec_id}: state must be a finite ({self.state_size},) array, "
                f"got shape {state.shape}"
            )
        mujoco.mj_setState(self.model, self.data, state, STATE_SIG)
        mujoco.mj_forward(self.model, self.data)
        if steps is not None:
            self.steps = int(steps)
        return self._observation()

    # ----------------------------------------------------------------- helpers for subclasses
    @property
    def ee_target_pos(self) -> np.ndarray:
        """Commanded (mocap) end-effector position (3,), metres, a view."""
        return self.data.mocap_pos[self._mocap_id]

    @property
    def ee_target_yaw(self) -> float:
        """Commanded (mocap) end-effector yaw, radians."""
        return quat_yaw(self.data.mocap_quat[self._mocap_id])

    def place_end_effector(self, pos: np.ndarray, yaw: float = 0.0) -> None:
        """Put mocap target and the welded body at ``pos`` (3,) m with ``yaw`` rad, at rest.
        For use in ``_sample_initial_conditions``; the hand body must be the first free joint."""
        self.data.mocap_pos[self._mocap_id] = pos
        self.data.mocap_quat[self._mocap_id] = yaw_quat(yaw)
        self.data.qpos[0:3] = pos
        self.data.qpos[3:7] = yaw_quat(yaw)
        self.data.userdata[:] = 0.0

    def _set_gripper(self, command: float) -> None:
        """Gripper command in [-1, 1] (-1 open, +1 closed) -> finger position targets."""
        self.data.ctrl[:] = self.model.actuator_ctrlrange[:, 1] * (1.0 - command) / 2.0

    def _check_action(self, action: np.ndarray) -> np.ndarray:
        arr = np.asarray(action)
        if arr.shape != self.action_space.shape:
            raise InvalidInputError(
                f"{self.spec_id}: action must have shape {self.action_space.shape} "
                f"({', '.join(self.action_names)}), got shape {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{self.spec_id}: action must be finite numbers, got {arr!r}")
        return arr.astype(np.float64)

    def _move_mocap(self, delta_pos: np.ndarray, delta_yaw: float) -> None:
        """Drive the mocap target towards (current + delta) over one control step with bounded
        velocity and acceleration, integrating the physics in between."""
        m, d, lim = self.model, self.data, self.motion
        pos = d.mocap_pos[self._mocap_id].copy()
        vel = d.userdata[0:3].copy()
        yaw = quat_yaw(d.mocap_quat[self._mocap_id])
        yaw_vel = float(d.userdata[3])
        goal = np.clip(pos + delta_pos, self._ws_low, self._ws_high)
        goal_yaw = yaw + delta_yaw
        dt = self._segment_dt
        for _ in range(self._n_segments):
            vel = _limited_velocity(goal - pos, vel, lim.max_speed, lim.max_accel, dt)
            pos = pos + vel * dt
            yaw_vel = _limited_rate(
                goal_yaw - yaw, yaw_vel, lim.max_yaw_speed, lim.max_yaw_accel, dt
            )
            yaw += yaw_vel * dt
            d.mocap_pos[self._mocap_id] = pos
            d.mocap_quat[self._mocap_id] = yaw_quat(yaw)
            mujoco.mj_step(m, d, self.substeps_per_segment)
        d.userdata[0:3] = vel
        d.userdata[3] = yaw_vel
        mujoco.mj_forward(m, d)  # positions and contacts of the new state, not the last substep's

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"state": self._state_vector().astype(np.float32)}
        if self.obs_image:
            if self._renderer is None:
                self._renderer = mujoco.Renderer(self.model, *self.image_size)
            self._renderer.update_scene(self.data, camera=self.camera)
            obs["image"] = self._renderer.render()
        return obs

    def _info(self) -> dict[str, Any]:
        success = self.is_success()
        phase = self.phase_index()
        return {
            "success": success,
            "is_success": success,
            "failure": (not success) and self.is_failure(),
            "phase": self.phase_names[phase],
            "phase_index": phase,
        }

    # ----------------------------------------------------------------- geometry queries
    def body_pos(self, name: str) -> np.ndarray:
        """World position (3,) m of a body, a copy."""
        return self.data.body(name).xpos.copy()

    def body_yaw(self, name: str) -> float:
        """World yaw (rad) of a body."""
        return quat_yaw(self.data.body(name).xquat)

    def site_pos(self, name: str) -> np.ndarray:
        """World position (3,) m of a site, a copy."""
        return self.data.site(name).xpos.copy()

    def in_contact(self, geom_a: int, geom_b: int) -> bool:
        """True when geoms ``geom_a`` and ``geom_b`` (ids) touch in the current state."""
        for i in range(self.data.ncon):
            con = self.data.contact[i]
            if (con.geom1 == geom_a and con.geom2 == geom_b) or (
                con.geom1 == geom_b and con.geom2 == geom_a
            ):
                return True
        return False


def _limited_velocity(
    error: np.ndarray, vel: np.ndarray, max_speed: float, max_accel: float, dt: float
) -> np.ndarray:
    """Next velocity (3,) towards a goal ``error`` (3,) m away: the speed that can still stop in
    time, capped at ``max_speed``, reached with at most ``max_accel``."""
    dist = math.sqrt(float(error @ error))
    if dist > 1e-9:
        speed = min(max_speed, math.sqrt(2.0 * max_accel * dist), dist / dt)
        desired = error * (speed / dist)
    else:
        desired = np.zeros(3)
    change = desired - vel
    norm = math.sqrt(float(change @ change))
    limit = max_accel * dt
    if norm > limit:
        change = change * (limit / norm)
    return vel + change


def _limited_rate(error: float, rate: float, max_rate: float, max_accel: float, dt: float) -> float:
    """Scalar version of :func:`_limited_velocity` for yaw (rad, rad/s)."""
    dist = abs(error)
    speed = min(max_rate, math.sqrt(2.0 * max_accel * dist), dist / dt)
    desired = math.copysign(speed, error) if dist > 0 else 0.0
    change = max(-max_accel * dt, min(max_accel * dt, desired - rate))
    return rate + change
