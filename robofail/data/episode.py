"""Episode records: one simulated episode, its failure label, and what a dataset of them holds.

Numpy only; the HDF5 store that writes and reads these records is :mod:`robofail.data.store`.
Per-step arrays have ``T`` rows, one per control step (``T >= 1``): row ``t`` holds the
observation and simulator state *before* action ``t`` and what action ``t`` produced.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np

from robofail import __version__
from robofail.errors import InvalidInputError

NO_FAILURE = "none"
"""The ``failure_type`` of a successful episode."""

PERTURBATION_FILTER_PREFIX = "perturbation_"
"""Filter (HDF5 mask) names of perturbation kinds start with this, e.g. ``perturbation_slip``."""

_OUTCOME_FILTERS = ("success", "failure")
_PER_STEP_AFTER_ACTIONS = {  # field: (dtype, layout, finite values required)
    "rewards": (np.float32, "(T,)", True),
    "dones": (np.bool_, "(T,)", False),
    "states": (np.float64, "(T, N)", True),
    "phases": (np.int8, "(T,)", False),
}
_NUMERIC_KINDS = "biuf"  # bool, signed int, unsigned int, float


@dataclass(frozen=True, kw_only=True)
class EpisodeLabel:
    """What happened in one episode, and why; stored with the episode as HDF5 attributes.

    Steps index the episode's per-step arrays; -1 means "none". The simulator state at onset
    is not a field: it is ``episode.states[onset_step]``.
    """

    success: bool
    """Whether the task's success predicate held at the end, as the simulator computed it."""
    seed: int
    """Seed of the episode's environment reset and perturbation."""
    failure_type: str = NO_FAILURE
    """Kind of failure, e.g. ``"grasp_miss"``; ``"none"`` for a success."""
    perturbation: dict[str, Any] = field(default_factory=dict)
    """``{"kind": str, ...parameters}``, JSON-serialisable; ``{}`` for an unperturbed episode."""
    onset_step: int = -1
    """First step at which the perturbation took effect (0 <= onset_step < T), or -1."""
    failure_step: int = -1
    """First step at which the failure predicate holds (0 <= failure_step <= T; T means only
    after the last action, at ``final_state``), or -1."""
    source: str = ""
    """Id of the demonstration or rollout the episode was derived from, or ``""``."""
    generator_version: str = __version__
    """Version of robofail that generated the episode."""
    phase_at_onset: str = ""
    """Name of the task phase (sub-task) at ``onset_step``, or ``""``."""

    def __post_init__(self) -> None:
        _set(self, "success", _as_bool("EpisodeLabel.success", self.success))
        for name in ("seed", "onset_step", "failure_step"):
            _set(self, name, _as_int(f"EpisodeLabel.{name}", getattr(self, name)))
        for name in ("failure_type", "source", "generator_version", "phase_at_onset"):
            _check_str(f"EpisodeLabel.{name}", getattr(self, name))
        if self.onset_step < -1 or self.failure_step < -1:
            raise InvalidInputError(
                f"EpisodeLabel: onset_step={self.onset_step}, failure_step={self.failure_step}; "
                "steps are >= 0, or -1 for none"
            )
        self._check_failure_type()
        _set(self, "perturbation", _json_copy("EpisodeLabel.perturbation", self.perturbation))
        if self.perturbation:
            _check_name("EpisodeLabel.perturbation['kind']", self.perturbation.get("kind"))

    def _check_failure_type(self) -> None:
        name = self.failure_type
        _check_name("EpisodeLabel.failure_type", name)
        if name in _OUTCOME_FILTERS or name.startswith(PERTURBATION_FILTER_PREFIX):
            raise InvalidInputError(
                f"EpisodeLabel.failure_type={name!r} clashes with a filter name; "
                f"use a name other than {_OUTCOME_FILTERS} or {PERTURBATION_FILTER_PREFIX}*"
            )
        if self.success and name != NO_FAILURE:
            raise InvalidInputError(
                f"EpisodeLabel: success=True with failure_type={name!r}; "
                f"a success has failure_type {NO_FAILURE!r}"
            )

    def filter_names(self) -> list[str]:
        """Names of the dataset filters (HDF5 masks) this episode belongs to.

        ``"success"`` or ``"failure"``, the failure type unless ``"none"``, and
        ``"perturbation_<kind>"`` when perturbed.
        """
        names = ["success" if self.success else "failure"]
        if self.failure_type != NO_FAILURE:
            names.append(self.failure_type)
        if self.perturbation:
            names.append(PERTURBATION_FILTER_PREFIX + self.perturbation["kind"])
        return names

    def to_json(self) -> dict[str, Any]:
        """The label as a JSON-serialisable dict, one key per field."""
        return {f.name: _json_copy(f.name, getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpisodeLabel:
        """Rebuild a label from :meth:`to_json`'s dict; InvalidInputError on unknown keys."""
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True, kw_only=True, eq=False)
class Episode:
    """One episode of ``T`` control steps, validated and cast on construction.

    Arrays are cast to the stated dtype when that loses nothing, else InvalidInputError.
    """

    obs: dict[str, np.ndarray]
    """Observations, each (T, ...): ``"state"`` (T, S) float32, ``"image"`` (T, H, W, 3) uint8,
    other keys any numeric dtype."""
    actions: np.ndarray
    """(T, A) float32, the actions applied, in the task's action units (normalised [-1, 1])."""
    rewards: np.ndarray
    """(T,) float32, reward received for each action."""
    dones: np.ndarray
    """(T,) bool, whether the episode ended after each action."""
    states: np.ndarray
    """(T, N) float64, full MuJoCo integration state (mjSTATE_FULLPHYSICS) before each action."""
    phases: np.ndarray
    """(T,) int8, index into the task's phase names (DatasetInfo.phase_names) at each step."""
    final_state: np.ndarray
    """(N,) float64, full MuJoCo state after the last action."""
    label: EpisodeLabel
    """Outcome, failure type and perturbation of the episode."""
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """Optional per-episode arrays of any shape, e.g. a monitored rollout's "embeddings" (K, D)
    float32 and "sampled_chunks" (K, n, H, A) float32 for its K inferences."""

    def __post_init__(self) -> None:
        actions = _array("actions", self.actions, np.float32, layout="(T, A)", finite=True)
        _set(self, "actions", actions)
        steps = self.length
        if steps < 1:
            raise InvalidInputError("Episode.actions: expected T >= 1 steps, got 0")
        for name, (dtype, layout, finite) in _PER_STEP_AFTER_ACTIONS.items():
            array = _array(
                name, getattr(self, name), dtype, layout=layout, length=steps, finite=finite
            )
            _set(self, name, array)
        _set(self, "obs", _checked_obs(self.obs, steps))
        _set(self, "extras", _checked_extras(self.extras))
        size = self.states.shape[1]
        final = _array("final_state", self.final_state, np.float64, layout="(N,)", finite=True)
        if final.shape != (size,):
            raise InvalidInputError(
                f"Episode.final_state: expected shape ({size},) like states (T, N={size}), "
                f"got {final.shape}"
            )
        _set(self, "final_state", final)
        if (self.phases < 0).any():
            raise InvalidInputError("Episode.phases: expected indices >= 0, got a negative one")
        self._check_label(steps)

    def _check_label(self, steps: int) -> None:
        if not isinstance(self.label, EpisodeLabel):
            raise InvalidInputError(
                f"Episode.label: expected an EpisodeLabel, got {type(self.label).__name__}"
            )
        if self.label.onset_step >= steps or self.label.failure_step > steps:
            raise InvalidInputError(
                f"Episode.label: onset_step={self.label.onset_step}, "
                f"failure_step={self.label.failure_step} out of range for T={steps} steps"
            )

    @property
    def length(self) -> int:
        """Number of steps T."""
        return int(self.actions.shape[0])


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What every episode of one dataset shares: task, environment and the names of fields."""

    task: str
    """Task name, e.g. ``"pick_place"``."""
    env_id: str
    """Gymnasium id of the environment, e.g. ``"robofail/PickPlace-v0"``."""
    obs_names: dict[str, list[str]]
    """Per observation key, the names of its last-axis fields (``[]`` for images)."""
    action_names: list[str]
    """Names of the A action dimensions."""
    phase_names: list[str]
    """Names of the task's phases; ``Episode.phases`` indexes this list."""
    control_hz: float
    """Control rate in Hz (steps per second)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free JSON, e.g. environment kwargs or the policy's fingerprint."""

    def __post_init__(self) -> None:
        _check_name("DatasetInfo.task", self.task)
        _check_str("DatasetInfo.env_id", self.env_id)
        if not isinstance(self.obs_names, dict) or not self.obs_names:
            raise InvalidInputError("DatasetInfo.obs_names: expected a non-empty dict")
        obs_names = {}
        for key, names in self.obs_names.items():
            _check_name("DatasetInfo.obs_names key", key)
            obs_names[key] = _str_list(f"DatasetInfo.obs_names[{key!r}]", names)
        _set(self, "obs_names", obs_names)
        _set(self, "action_names", _str_list("DatasetInfo.action_names", self.action_names))
        _set(self, "phase_names", _str_list("DatasetInfo.phase_names", self.phase_names))
        hz = self.control_hz
        if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not 0 < hz < math.inf:
            raise InvalidInputError(f"DatasetInfo.control_hz: expected a number > 0, got {hz!r}")
        _set(self, "control_hz", float(hz))
        _set(self, "extra", _json_copy("DatasetInfo.extra", self.extra))

    def check_episode(self, episode: Episode, *, name: str = "episode") -> None:
        """Raise InvalidInputError, naming ``name``, if ``episode`` does not fit this dataset.

        Checks the observation keys and sizes, the action size A and the phase indices.
        """
        if not isinstance(episode, Episode):
            raise InvalidInputError(f"{name}: expected an Episode, got {type(episode).__name__}")
        if set(episode.obs) != set(self.obs_names):
            raise InvalidInputError(
                f"{name}: obs keys {sorted(episode.obs)} differ from the dataset's "
                f"{sorted(self.obs_names)}"
            )
        for key, names in self.obs_names.items():
            shape = episode.obs[key].shape
            if names and shape[1:] != (len(names),):
                raise InvalidInputError(
                    f"{name}: obs[{key!r}] has shape {shape}, expected (T, {len(names)}) "
                    f"for fields {names}"
                )
        if episode.actions.shape[1] != len(self.action_names):
            raise InvalidInputError(
                f"{name}: actions have {episode.actions.shape[1]} dims, the dataset's "
                f"action_names {self.action_names} have {len(self.action_names)}"
            )
        if self.phase_names and int(episode.phases.max()) >= len(self.phase_names):
            raise InvalidInputError(
                f"{name}: phase index {int(episode.phases.max())} out of range for "
                f"phase_names {self.phase_names}"
            )

    def to_json(self) -> dict[str, Any]:
        """The info as a JSON-serialisable dict, one key per field."""
        return {f.name: _json_copy(f.name, getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetInfo:
        """Rebuild an info from :meth:`to_json`'s dict; InvalidInputError on unknown keys."""
        return cls(**_known_fields(cls, data))


def _set(record: object, name: str, value: Any) -> None:
    """Assign a normalised value to a field of a frozen dataclass during ``__post_init__``."""
    object.__setattr__(record, name, value)


def _array(
    name: str,
    value: Any,
    dtype: type | None,
    *,
    layout: str,
    length: int | None = None,
    finite: bool = False,
) -> np.ndarray:
    """Return ``value`` as an array of ``dtype`` (None: keep its numeric dtype), checked.

    ``layout`` is the expected shape, e.g. ``"(T, A)"``; it fixes the number of axes unless it
    contains ``...``. ``length`` is the expected size of axis 0 (T); ``finite`` rejects NaN
    and inf in float arrays.
    """
    arr = np.asarray(value)
    ndim = None if "..." in layout else len(layout.strip("(,)").split(","))
    wanted = f"{layout} {np.dtype(dtype).name if dtype else 'numeric'}"
    if length is not None:
        wanted += f" with T={length}"
    bad_shape = (ndim is not None and arr.ndim != ndim) or (
        length is not None and (arr.ndim == 0 or arr.shape[0] != length)
    )
    if arr.dtype.kind not in _NUMERIC_KINDS or bad_shape:
        raise InvalidInputError(
            f"Episode.{name}: expected {wanted}, got shape {arr.shape} dtype {arr.dtype}"
        )
    if dtype is not None and arr.dtype != dtype:
        cast = arr.astype(dtype)
        if not np.array_equal(cast, arr, equal_nan=arr.dtype.kind == "f"):
            raise InvalidInputError(
                f"Episode.{name}: expected {wanted}, got dtype {arr.dtype} whose values do not "
                f"convert to {np.dtype(dtype).name} without loss; convert them first"
            )
        arr = cast
    if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InvalidInputError(
            f"Episode.{name}: expected finite values, got NaN or inf (first at index {first})"
        )
    return arr


def _checked_obs(obs: Any, steps: int) -> dict[str, np.ndarray]:
    """Validate the observation dict: ``state`` (T, S) float32, ``image`` (T, H, W, 3) uint8."""
    if not isinstance(obs, dict) or not obs:
        raise InvalidInputError("Episode.obs: expected a non-empty dict of (T, ...) arrays")
    checked = {}
    for key, value in obs.items():
        _check_name("Episode.obs key", key)
        name = f"obs[{key!r}]"
        if key == "state":
            arr = _array(name, value, np.float32, layout="(T, S)", length=steps, finite=True)
        elif key == "image":
            arr = _array(name, value, np.uint8, layout="(T, H, W, 3)", length=steps)
            if arr.shape[-1] != 3:
                raise InvalidInputError(
                    f"Episode.{name}: expected (T, H, W, 3) uint8, got shape {arr.shape}"
                )
        else:
            arr = _array(name, value, None, layout="(T, ...)", length=steps, finite=True)
        checked[key] = arr
    return checked


def _checked_extras(extras: Any) -> dict[str, np.ndarray]:
    """Validate the extras dict: names usable as HDF5 names, numeric arrays of any shape."""
    if not isinstance(extras, dict):
        raise InvalidInputError(f"Episode.extras: expected a dict, got {type(extras).__name__}")
    checked = {}
    for key, value in extras.items():
        _check_name("Episode.extras key", key)
        checked[key] = _array(f"extras[{key!r}]", value, None, layout="(...)")
    return checked


def _as_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{name}: expected a bool, got {value!r}")
    return bool(value)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name}: expected an int, got {value!r}")
    return int(value)


def _check_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name}: expected a str, got {value!r}")


def _check_name(what: str, value: Any) -> None:
    """A name used as an HDF5 group/dataset name: a non-empty str without '/' that is not '.'."""
    if not isinstance(value, str) or not value or "/" in value or value == ".":
        raise InvalidInputError(f"{what}: expected a non-empty name without '/', got {value!r}")


def _str_list(name: str, values: Any) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise InvalidInputError(f"{name}: expected a list of str, got {values!r}")
    for value in values:
        _check_str(f"{name} item", value)
    return list(values)


def _json_copy(name: str, value: Any) -> Any:
    """A deep copy of ``value`` through strict JSON (tuples become lists; NaN is refused)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: expected JSON-serialisable data ({exc})") from exc


def _known_fields(cls: type, data: Any) -> dict[str, Any]:
    """``data`` as keyword arguments of dataclass ``cls``; unknown or missing keys refused."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"{cls.__name__}: expected a JSON object, got {data!r}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    missing = sorted(
        f.name
        for f in fields(cls)
        if f.name not in data and f.default is MISSING and f.default_factory is MISSING
    )
    if unknown or missing:
        raise InvalidInputError(f"{cls.__name__}: unknown keys {unknown}, missing keys {missing}")
    return data
