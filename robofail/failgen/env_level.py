"""Environment-level perturbations: closed loop, for any controller, on any MuJoCo gymnasium env.

Each class acts through the hooks of :class:`~robofail.failgen.perturbation.Perturbation` and is
run by :class:`~robofail.failgen.wrappers.PerturbationWrapper`. Four families:

- **model edits** (``mass``, ``friction``, ``size``, ``actuator_gain``): change ``env.model`` in
  ``on_reset`` after snapshotting the original values; ``restore`` writes them back bit for bit
  (the env is reused across episodes). Onset: step 0.
- **state edits at reset** (``init_pose``, ``distractor``): move bodies in ``env.data`` after the
  env's own reset. Onset: step 0.
- **action / force faults** (``action_delay``, ``action_noise``, ``push``): act on the executed
  action or apply an external force around the env's step.
- **observation faults** (``obs_noise``, ``obs_bias``, ``obs_dropout`` and the camera faults
  ``camera_occlusion``, ``camera_blur``, ``camera_brightness``, ``camera_shift``): change what
  the controller sees, never the simulation. A privileged controller that reads the simulator
  (robofail's scripted experts) is unaffected by them; they are meant for learned policies and
  for PickPlace's vision expert (``source: vision_expert``), which finds the cube in the image.

Target body. Perturbations of "the object" (``init_pose``, ``mass``, ``friction``, ``size``,
``push``, ``distractor``) act on ``env.object_body`` for robofail's tasks. On another env they act
on the last body with a free joint, or, when there is none, the last body with any joint (e.g.
the pole of ``InvertedPendulum-v5``). Set the instance attribute ``target_body`` to a body name
to choose another one (``p = make_perturbation("mass", scale=3.0); p.target_body = "pole"``); it
is not a parameter, so it is not part of the label.

Observations may be robofail's dict (``{"state": (S,), "image": (H, W, 3) uint8}``) or a plain
array (gymnasium's MuJoCo envs); ``on_observation`` returns the same type and dtype it got. State
faults act on ``obs["state"]`` or on the array; camera faults need an ``"image"`` entry.

Random draws (noise, dropout, directions, placements) come only from the generator passed to
``on_reset``, which the wrapper seeds per episode: the same seeds give the same episode bytes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import mujoco
import numpy as np

from robofail.errors import InvalidInputError
from robofail.failgen.perturbation import Param, Perturbation, register

GRAVITY = 9.81  # m/s^2, to express push forces in multiples of the body's weight
#: Name of the parked spare obstacle (a mocap body) the ``distractor`` perturbation moves.
OBSTACLE_BODY = "obstacle"
#: Body at the end of the object's path in robofail's tasks (where the object must go).
TASK_GOAL_BODIES = {"pick_place": "tray", "push": "goal", "peg_insert": "socket"}
_PRIMITIVE_GEOMS = {
    int(mujoco.mjtGeom.mjGEOM_SPHERE),
    int(mujoco.mjtGeom.mjGEOM_CAPSULE),
    int(mujoco.mjtGeom.mjGEOM_ELLIPSOID),
    int(mujoco.mjtGeom.mjGEOM_CYLINDER),
    int(mujoco.mjtGeom.mjGEOM_BOX),
}
_START = Param(
    0, 1000, (0, 10), integer=True, units="steps", doc="control step the fault starts at"
)

Observation = Mapping[str, np.ndarray] | np.ndarray
"""A robofail dict observation or a plain gymnasium array observation."""


# ----------------------------------------------------------------------------- helpers
def _free_joint(model: mujoco.MjModel, body: int) -> int | None:
    """Id of ``body``'s free joint, or None."""
    start, count = int(model.body_jntadr[body]), int(model.body_jntnum[body])
    for j in range(start, start + max(count, 0)):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            return j
    return None


def default_target_body(env: Any) -> int | None:
    """The body a perturbation of "the object" acts on by default (see the module docstring):
    ``env.object_body``, else the last body with a free joint, else the last body with a joint;
    None when the model has no movable body."""
    model = env.model
    name = getattr(env, "object_body", None)
    if isinstance(name, str) and name:
        return int(model.body(name).id)
    free = [b for b in range(1, model.nbody) if _free_joint(model, b) is not None]
    if free:
        return free[-1]
    jointed = [b for b in range(1, model.nbody) if model.body_jntnum[b] > 0]
    return jointed[-1] if jointed else None


def _body_bottom(model: mujoco.MjModel, data: mujoco.MjData, body: int) -> float:
    """Lowest world z (m) of the bounding boxes of ``body``'s geoms (after ``mj_forward``)."""
    lowest = math.inf
    for g in _body_geoms(model, body):
        rot = data.geom_xmat[g].reshape(3, 3)
        centre = data.geom_xpos[g] + rot @ model.geom_aabb[g, :3]
        lowest = min(lowest, float(centre[2] - np.abs(rot[2]) @ model.geom_aabb[g, 3:]))
    return lowest


def _body_geoms(model: mujoco.MjModel, body: int) -> range:
    start = int(model.body_geomadr[body])
    return range(start, start + int(model.body_geomnum[body])) if start >= 0 else range(0)


_ARRAY_FIELDS: list[str] = []


def _model_arrays(model: mujoco.MjModel) -> list[str]:
    """Names of the MjModel fields that are numpy arrays (cached)."""
    if not _ARRAY_FIELDS:
        _ARRAY_FIELDS.extend(
            name
            for name in dir(model)
            if not name.startswith("_") and isinstance(getattr(model, name, None), np.ndarray)
        )
    return _ARRAY_FIELDS


def _touches(model: mujoco.MjModel, data: mujoco.MjData, body: int) -> bool:
    """Whether any geom of ``body`` is in contact with another body (after ``mj_forward``)."""
    for i in range(data.ncon):
        contact = data.contact[i]
        bodies = model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]
        if body in bodies and bodies[0] != bodies[1]:
            return True
    return False


def _map_state(obs: Observation, fn: Callable[[np.ndarray], np.ndarray]) -> Observation:
    """``obs`` with its state (``obs["state"]`` or the array itself) replaced by ``fn(state)``,
    cast back to the state's dtype; same container type as ``obs``."""
    if isinstance(obs, Mapping):
        out = dict(obs)
        state = np.asarray(out["state"])
        out["state"] = np.asarray(fn(state)).astype(state.dtype, copy=False)
        return out
    state = np.asarray(obs)
    return np.asarray(fn(state)).astype(state.dtype, copy=False)


def _copy_obs(obs: Observation) -> Observation:
    if isinstance(obs, Mapping):
        return {key: np.array(value, copy=True) for key, value in obs.items()}
    return np.array(obs, copy=True)


def _has_state(env: Any) -> str:
    """ "" when ``env`` observations have a state vector, else why not."""
    space = getattr(env, "observation_space", None)
    spaces = getattr(space, "spaces", None)
    if isinstance(spaces, Mapping) and "state" not in spaces:
        return "its observations are a dict without a 'state' entry"
    return ""


# ----------------------------------------------------------------------------- base classes
class EnvPerturbation(Perturbation):
    """Base of the environment-level perturbations: the episode rng, the target body and the
    snapshot/restore of model edits."""

    level: ClassVar[str] = "env"
    target_body: str | None = None
    """Name of the body to act on instead of the default (see the module docstring)."""

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._rng = np.random.default_rng(0)
        self._saved: list[tuple[str, Any, np.ndarray]] = []

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        self._rng = rng

    # -- target body
    def body_id(self, env: Any) -> int:
        """Id of the body this perturbation acts on in ``env.model``."""
        model = env.model
        if self.target_body is not None:
            try:
                return int(model.body(self.target_body).id)
            except KeyError:
                raise InvalidInputError(
                    f"{self.kind}: the model has no body named {self.target_body!r}"
                ) from None
        body = default_target_body(env)
        if body is None:
            raise InvalidInputError(f"{self.kind}: the model has no movable body to act on")
        return body

    # -- model edits
    def _edit(self, model: mujoco.MjModel, field: str, index: Any) -> np.ndarray:
        """Snapshot ``model.<field>[index]`` for :meth:`restore` and return the live view."""
        array = getattr(model, field)
        self._saved.append((field, index, np.array(array[index], copy=True)))
        return array

    def _set_const(self, env: Any) -> None:
        """Recompute the model's derived constants (``mj_setConst``: subtree masses, the
        inverse weights that scale constraint softness...) after editing masses or geometry,
        snapshotting every field it changes. Without it MuJoCo keeps the nominal body's
        constants and the contacts of a heavier object become unstable."""
        model = env.model
        before = {name: np.array(getattr(model, name), copy=True) for name in _model_arrays(model)}
        mujoco.mj_setConst(model, env.data)
        for name, value in before.items():
            if not np.array_equal(value, getattr(model, name)):
                self._saved.append((name, slice(None), value))

    def restore(self, env: Any) -> None:
        """Write back every snapshotted model value, last edit first."""
        for field, index, value in reversed(self._saved):
            getattr(env.model, field)[index] = value
        self._saved.clear()


class _ObservationFault(EnvPerturbation):
    """Base of the observation faults: active from step ``start`` on."""

    def on_observation(self, obs: Observation, step: int) -> Observation:
        if step < self.start:
            return obs
        self.mark_onset(step)
        return self.fault(obs, step)

    def fault(self, obs: Observation, step: int) -> Observation:
        """The faulty version of ``obs`` (called from step ``start`` on)."""
        raise NotImplementedError


class _StateFault(_ObservationFault):
    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        return _has_state(env)


class _CameraFault(_ObservationFault):
    """Faults of ``obs["image"]`` ((H, W, 3) uint8), applied with OpenCV."""

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        spaces = getattr(getattr(env, "observation_space", None), "spaces", None)
        if not (isinstance(spaces, Mapping) and "image" in spaces):
            return (
                "its observations have no 'image' entry (robofail tasks: make the env with "
                "obs_image=True)"
            )
        return ""

    def fault(self, obs: Observation, step: int) -> Observation:
        if not isinstance(obs, Mapping) or "image" not in obs:
            raise InvalidInputError(f"{self.kind}: the observation has no 'image' entry")
        out = dict(obs)
        image = np.ascontiguousarray(obs["image"])
        out["image"] = self.image_fault(image).astype(image.dtype, copy=False)
        return out

    def image_fault(self, image: np.ndarray) -> np.ndarray:
        """The faulty version of one (H, W, C) uint8 frame."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- initial pose
@register
class InitPose(EnvPerturbation):
    """The object starts outside the nominal initial-pose distribution: moved ``distance`` m
    away from its sampled position, outwards from the world origin (the workspace centre) within
    +-45 degrees (direction drawn per episode), kept on the table when the model has a box geom
    named ``table``, and turned by ``yaw`` rad. Needs a free joint on the target body."""

    kind = "init_pose"
    doc = "the object starts outside the nominal initial-pose distribution"
    params: ClassVar[dict[str, Param]] = {
        "distance": Param(
            0.0, 0.6, (0.25, 0.4), units="m", doc="horizontal offset from the sampled position"
        ),
        "yaw": Param(
            -math.pi,
            math.pi,
            (-math.pi, math.pi),
            units="rad",
            doc="yaw offset (no effect on a 90-degree-symmetric object)",
        ),
    }

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        body = default_target_body(env)
        if body is None or _free_joint(env.model, body) is None:
            return "no body with a free joint to move (set target_body to one that has one)"
        return ""

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        model, data = env.model, env.data
        body = self.body_id(env)
        joint = _free_joint(model, body)
        if joint is None:
            raise InvalidInputError(f"init_pose: body {model.body(body).name!r} has no free joint")
        adr = int(model.jnt_qposadr[joint])
        xy = data.qpos[adr : adr + 2].copy()
        outward = math.atan2(xy[1], xy[0]) if np.hypot(*xy) > 1e-6 else rng.uniform(-np.pi, np.pi)
        heading = outward + rng.uniform(-math.pi / 4, math.pi / 4)
        xy = xy + self.distance * np.array([math.cos(heading), math.sin(heading)])
        table = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "table")
        if table >= 0 and model.geom_type[table] == mujoco.mjtGeom.mjGEOM_BOX:
            half = model.geom_size[table, :2] - model.geom_rbound[_body_geoms(model, body)].max()
            centre = model.geom_pos[table, :2]
            xy = np.clip(xy, centre - half, centre + half)
        data.qpos[adr : adr + 2] = xy
        quat = data.qpos[adr + 3 : adr + 7].copy()
        turn = np.array([math.cos(self.yaw / 2), 0.0, 0.0, math.sin(self.yaw / 2)])
        mujoco.mju_mulQuat(data.qpos[adr + 3 : adr + 7], turn, quat)
        dof = int(model.jnt_dofadr[joint])
        data.qvel[dof : dof + 6] = 0.0
        mujoco.mj_forward(model, data)
        self.mark_onset(0)


# ----------------------------------------------------------------------------- model edits
@register
class Mass(EnvPerturbation):
    """The object's mass (and rotational inertia, as for a denser material) is ``scale`` times
    nominal."""

    kind = "mass"
    doc = "the object is heavier or lighter than nominal"
    params: ClassVar[dict[str, Param]] = {
        "scale": Param(0.01, 1000.0, (60.0, 150.0), units="x nominal", doc="mass multiplier"),
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        body = self.body_id(env)
        self._edit(env.model, "body_mass", body)[body] *= self.scale
        self._edit(env.model, "body_inertia", body)[body] *= self.scale
        self._set_const(env)
        self.mark_onset(0)


@register
class Friction(EnvPerturbation):
    """The friction coefficients (sliding, torsional, rolling) of the object's geoms are
    ``scale`` times nominal, and its geoms get the highest contact priority so every contact
    of the object uses them (MuJoCo otherwise takes the larger of two geoms' coefficients, which
    would hide a lower value)."""

    kind = "friction"
    doc = "the object is more slippery (or grippier) than nominal"
    params: ClassVar[dict[str, Param]] = {
        "scale": Param(0.001, 10.0, (0.005, 0.03), units="x nominal", doc="friction multiplier"),
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        model = env.model
        geoms = list(_body_geoms(model, self.body_id(env)))
        if geoms:
            top = int(model.geom_priority.max()) + 1
            self._edit(model, "geom_friction", geoms)[geoms] *= self.scale
            self._edit(model, "geom_priority", geoms)[geoms] = top
        self.mark_onset(0)


@register
class Size(EnvPerturbation):
    """The object's primitive geoms (boxes, spheres, capsules, cylinders, ellipsoids), their
    offsets, the body's sites and centre of mass are scaled by ``scale`` about the body origin;
    mass is unchanged (see ``mass``). A body with a free joint is moved vertically so its lowest
    point stays where it was (an object resting on the table still rests on it)."""

    kind = "size"
    doc = "the object is bigger or smaller than nominal"
    params: ClassVar[dict[str, Param]] = {
        "scale": Param(0.2, 4.0, (1.1, 1.5), units="x nominal", doc="size multiplier"),
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        model, data = env.model, env.data
        body = self.body_id(env)
        geoms = [g for g in _body_geoms(model, body) if int(model.geom_type[g]) in _PRIMITIVE_GEOMS]
        if not geoms:
            raise InvalidInputError(
                f"size: body {model.body(body).name!r} has no primitive geom to scale"
            )
        bottom = _body_bottom(model, data, body)
        s = self.scale
        for field in ("geom_size", "geom_pos", "geom_rbound", "geom_aabb"):
            self._edit(model, field, geoms)[geoms] *= s
        sites = [i for i in range(model.nsite) if model.site_bodyid[i] == body]
        if sites:
            self._edit(model, "site_pos", sites)[sites] *= s
            self._edit(model, "site_size", sites)[sites] *= s
        self._edit(model, "body_ipos", body)[body] *= s
        self._set_const(env)
        joint = _free_joint(model, body)
        mujoco.mj_forward(model, data)
        if joint is not None:
            data.qpos[int(model.jnt_qposadr[joint]) + 2] += bottom - _body_bottom(model, data, body)
            mujoco.mj_forward(model, data)
        self.mark_onset(0)


@register
class ActuatorGain(EnvPerturbation):
    """Every actuator's gain is ``scale`` times nominal: ``gainprm[0]`` and, for affine-bias
    (position-servo) actuators, the position feedback ``biasprm[1]``, so a servo keeps its
    set point but pushes ``scale`` times as hard. In robofail's gripper tasks the only
    actuators are the finger servos (the hand follows a mocap weld): this weakens the grip.
    Unsupported by models without actuators (robofail's push)."""

    kind = "actuator_gain"
    doc = "the actuators (robofail: the gripper) are weaker or stronger than nominal"
    params: ClassVar[dict[str, Param]] = {
        "scale": Param(0.0, 10.0, (0.005, 0.02), units="x nominal", doc="gain multiplier"),
    }

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        return "" if env.model.nu > 0 else "the model has no actuators"

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        model = env.model
        actuators = list(range(model.nu))
        self._edit(model, "actuator_gainprm", (actuators, 0))[actuators, 0] *= self.scale
        servo = [a for a in actuators if model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE]
        if servo:
            self._edit(model, "actuator_biasprm", (servo, 1))[servo, 1] *= self.scale
        self.mark_onset(0)


# ----------------------------------------------------------------------------- action faults
def _clip_to_space(env: Any, action: np.ndarray) -> np.ndarray:
    space = getattr(env, "action_space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None:
        return action
    return np.clip(action, low, high)


@register
class ActionDelay(EnvPerturbation):
    """Each control step executes the action commanded ``steps`` steps earlier (the first
    commanded action until there is one that old), as with a slow actuation pipeline."""

    kind = "action_delay"
    doc = "actions execute late"
    params: ClassVar[dict[str, Param]] = {
        "steps": Param(1, 30, (3, 8), integer=True, units="steps", doc="delay"),
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        self._queue: deque[np.ndarray] = deque()

    def on_action(self, env: Any, action: np.ndarray, step: int) -> np.ndarray:
        action = np.array(action, copy=True)
        if not self._queue:
            self._queue.extend(action.copy() for _ in range(int(self.steps)))
        self._queue.append(action)
        executed = self._queue.popleft()
        if not np.array_equal(executed, action):
            self.mark_onset(step)
        return executed


@register
class ActionNoise(EnvPerturbation):
    """From step ``start`` on, the executed action is the commanded one plus Gaussian noise of
    std ``std`` (action units: robofail's actions span [-1, 1]) on every dimension, clipped to
    the action space."""

    kind = "action_noise"
    doc = "executed actions are noisy"
    params: ClassVar[dict[str, Param]] = {
        "std": Param(0.0, 5.0, (0.6, 1.2), units="action units", doc="noise std"),
        "start": _START,
    }

    def on_action(self, env: Any, action: np.ndarray, step: int) -> np.ndarray:
        action = np.asarray(action)
        if step < self.start:
            return action
        self.mark_onset(step)
        noisy = action + self._rng.normal(0.0, self.std, action.shape)
        return _clip_to_space(env, noisy).astype(action.dtype, copy=False)


@register
class Push(EnvPerturbation):
    """An external horizontal force of ``force`` times the object's weight (the target body's
    subtree mass x g) pushes the object's centre of mass in world direction ``direction`` from
    control step ``step`` for ``duration`` steps (``data.xfrc_applied``, cleared afterwards)."""

    kind = "push"
    doc = "the object is pushed by an external force"
    params: ClassVar[dict[str, Param]] = {
        "force": Param(0.0, 100.0, (0.7, 1.2), units="x weight", doc="force magnitude"),
        "direction": Param(
            -math.pi, math.pi, (-math.pi, math.pi), units="rad", doc="world yaw of the force"
        ),
        "step": Param(0, 1000, (2, 15), integer=True, units="steps", doc="first pushed step"),
        "duration": Param(1, 100, (3, 8), integer=True, units="steps", doc="pushed steps"),
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        self._body = self.body_id(env)

    def before_physics(self, env: Any, step: int) -> None:
        body = self._body
        if self.step <= step < self.step + self.duration:
            magnitude = self.force * float(env.model.body_subtreemass[body]) * GRAVITY
            direction = np.array([math.cos(self.direction), math.sin(self.direction), 0.0])
            env.data.xfrc_applied[body] = [*(magnitude * direction), 0.0, 0.0, 0.0]
            self.mark_onset(step)
        elif step == self.step + self.duration:
            env.data.xfrc_applied[body] = 0.0

    def restore(self, env: Any) -> None:
        super().restore(env)
        if hasattr(self, "_body"):
            env.data.xfrc_applied[self._body] = 0.0


@register
class Distractor(EnvPerturbation):
    """An obstacle appears in the workspace: the parked spare body ``obstacle`` (a mocap wall
    0.03 x 0.16 x 0.12 m in robofail's scenes, parked out of sight under the table) is put
    across the object's path ``distance`` m from the object towards the task's goal (tray,
    target pose, socket; attribute ``goal_body`` on another env, else a direction drawn per
    episode), ``lateral`` m to the side, standing on the surface the object rests on. Where it
    would overlap another body (the hand, a second object), it moves on along the path 1 cm at
    a time (up to 20 cm) until it touches nothing. Unsupported by models without a mocap body
    named ``obstacle``."""

    kind = "distractor"
    doc = "an unexpected obstacle stands in the object's path"
    params: ClassVar[dict[str, Param]] = {
        "distance": Param(
            0.06, 0.4, (0.07, 0.1), units="m", doc="from the object's centre along its path"
        ),
        "lateral": Param(-0.2, 0.2, (-0.03, 0.03), units="m", doc="sideways from the path"),
    }
    goal_body: str | None = None
    """Body the object's path leads to on a non-robofail env (None: a random direction)."""
    _STEP = 0.01  # m: how far the obstacle moves on along the path when it would overlap
    _MAX_TRIES = 20

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        model = env.model
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, OBSTACLE_BODY)
        if body < 0 or model.body_mocapid[body] < 0 or model.body_geomnum[body] == 0:
            return f"the model has no parked spare obstacle (a mocap body named {OBSTACLE_BODY!r})"
        return ""

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        reason = self.unsupported_reason(env)
        if reason:
            raise InvalidInputError(f"distractor: {reason}")
        model, data = env.model, env.data
        body = self.body_id(env)
        start = data.xpos[body, :2].copy()
        goal_name = self.goal_body or TASK_GOAL_BODIES.get(getattr(env, "task_name", ""))
        if goal_name:
            path = data.body(goal_name).xpos[:2] - start
            heading = math.atan2(path[1], path[0])
        else:
            heading = rng.uniform(-math.pi, math.pi)
        along = np.array([math.cos(heading), math.sin(heading)])
        side = np.array([-along[1], along[0]])
        obstacle = model.body(OBSTACLE_BODY)
        geom = int(model.body_geomadr[obstacle.id])
        half_height = float(model.geom_aabb[geom, 5])
        z = _body_bottom(model, data, body) + half_height - float(model.geom_pos[geom, 2])
        mocap = int(obstacle.mocapid[0])
        data.mocap_quat[mocap] = [math.cos(heading / 2), 0.0, 0.0, math.sin(heading / 2)]
        for extra in np.arange(self._MAX_TRIES) * self._STEP:
            xy = start + (self.distance + extra) * along + self.lateral * side
            data.mocap_pos[mocap] = [xy[0], xy[1], z]
            mujoco.mj_forward(model, data)
            if not _touches(model, data, obstacle.id):
                break
        self.mark_onset(0)

    def restore(self, env: Any) -> None:
        super().restore(env)
        model = env.model
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, OBSTACLE_BODY)
        if body >= 0 and model.body_mocapid[body] >= 0:  # park it again
            env.data.mocap_pos[model.body_mocapid[body]] = model.body_pos[body]
            env.data.mocap_quat[model.body_mocapid[body]] = model.body_quat[body]


# ----------------------------------------------------------------------------- observation faults
@register
class ObsNoise(_StateFault):
    """From step ``start`` on, Gaussian noise of std ``std`` (in the state's own units: m, m/s,
    rad, cos/sin...) is added to every entry of the state observation, freshly each step."""

    kind = "obs_noise"
    doc = "the state observation is noisy"
    params: ClassVar[dict[str, Param]] = {
        "std": Param(0.0, 10.0, (0.01, 0.05), units="state units", doc="noise std"),
        "start": _START,
    }

    def fault(self, obs: Observation, step: int) -> Observation:
        return _map_state(obs, lambda s: s + self._rng.normal(0.0, self.std, s.shape))


@register
class ObsBias(_StateFault):
    """From step ``start`` on, every entry of the state observation is off by ``magnitude``
    (state units), with a sign drawn per entry and episode (a miscalibrated sensor)."""

    kind = "obs_bias"
    doc = "the state observation is biased"
    params: ClassVar[dict[str, Param]] = {
        "magnitude": Param(0.0, 10.0, (0.01, 0.04), units="state units", doc="bias per entry"),
        "start": _START,
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        self._signs: np.ndarray | None = None

    def fault(self, obs: Observation, step: int) -> Observation:
        def biased(state: np.ndarray) -> np.ndarray:
            if self._signs is None or self._signs.shape != state.shape:
                self._signs = self._rng.choice([-1.0, 1.0], size=state.shape)
            return state + self.magnitude * self._signs

        return _map_state(obs, biased)


@register
class ObsDropout(EnvPerturbation):
    """From step ``start`` on, with probability ``prob`` per step the controller sees the
    previous observation again (all entries: a stale, held frame) instead of the new one."""

    kind = "obs_dropout"
    doc = "observations are sometimes stale"
    params: ClassVar[dict[str, Param]] = {
        "prob": Param(0.0, 1.0, (0.3, 0.7), units="probability", doc="per-step dropout chance"),
        "start": _START,
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        self._last: Observation | None = None

    def on_observation(self, obs: Observation, step: int) -> Observation:
        if step >= self.start and self._last is not None and self._rng.random() < self.prob:
            self.mark_onset(step)
            return _copy_obs(self._last)
        self._last = _copy_obs(obs)
        return obs


@register
class CameraOcclusion(_CameraFault):
    """From step ``start`` on, a black rectangle with the frame's aspect ratio covering
    ``fraction`` of its area hides part of ``obs["image"]``; its position is drawn per episode
    and stays put."""

    kind = "camera_occlusion"
    doc = "part of the camera image is occluded"
    params: ClassVar[dict[str, Param]] = {
        "fraction": Param(0.0, 1.0, (0.25, 0.5), units="of the frame area", doc="covered area"),
        "start": _START,
    }

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        super().on_reset(env, rng)
        self._corner = rng.uniform(0.0, 1.0, size=2)  # where in the free range, per axis

    def rectangle(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) pixel bounds (exclusive) of the occluder in a frame."""
        side = math.sqrt(self.fraction)
        h, w = round(side * height), round(side * width)
        top = int(self._corner[0] * (height - h))
        left = int(self._corner[1] * (width - w))
        return top, left, top + h, left + w

    def image_fault(self, image: np.ndarray) -> np.ndarray:
        import cv2

        top, left, bottom, right = self.rectangle(*image.shape[:2])
        out = image.copy()
        if bottom > top and right > left:
            cv2.rectangle(out, (left, top), (right - 1, bottom - 1), (0, 0, 0), thickness=-1)
        return out


@register
class CameraBlur(_CameraFault):
    """From step ``start`` on, ``obs["image"]`` is Gaussian-blurred with std ``sigma`` pixels
    (an out-of-focus or smeared lens)."""

    kind = "camera_blur"
    doc = "the camera image is blurred"
    params: ClassVar[dict[str, Param]] = {
        "sigma": Param(0.0, 20.0, (1.5, 4.0), units="px", doc="Gaussian blur std"),
        "start": _START,
    }

    def image_fault(self, image: np.ndarray) -> np.ndarray:
        import cv2

        if self.sigma <= 0:
            return image
        return cv2.GaussianBlur(image, (0, 0), sigmaX=self.sigma, borderType=cv2.BORDER_REFLECT)


@register
class CameraBrightness(_CameraFault):
    """From step ``start`` on, ``obs["image"]`` intensities are multiplied by ``scale``
    (saturating at 0 and 255): under- or over-exposure."""

    kind = "camera_brightness"
    doc = "the camera image is too dark or too bright"
    params: ClassVar[dict[str, Param]] = {
        "scale": Param(0.0, 10.0, (0.2, 0.5), units="x nominal", doc="intensity multiplier"),
        "start": _START,
    }

    def image_fault(self, image: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.convertScaleAbs(image, alpha=self.scale, beta=0.0)


@register
class CameraShift(_CameraFault):
    """From step ``start`` on, ``obs["image"]`` is translated by ``pixels`` in image direction
    ``direction`` (0 = +x, i.e. right; pi/2 = +y, i.e. down), filling with black: a bumped
    camera."""

    kind = "camera_shift"
    doc = "the camera image is shifted (a bumped camera)"
    params: ClassVar[dict[str, Param]] = {
        "pixels": Param(0.0, 256.0, (6.0, 16.0), units="px", doc="shift length"),
        "direction": Param(
            -math.pi, math.pi, (-math.pi, math.pi), units="rad", doc="shift direction in the image"
        ),
        "start": _START,
    }

    def image_fault(self, image: np.ndarray) -> np.ndarray:
        import cv2

        height, width = image.shape[:2]
        dx, dy = self.pixels * math.cos(self.direction), self.pixels * math.sin(self.direction)
        matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        shifted = cv2.warpAffine(
            image, matrix, (width, height), flags=cv2.INTER_NEAREST, borderValue=(0, 0, 0)
        )
        return shifted.reshape(image.shape)
