"""The perturbation interface: small typed objects with named, range-checked parameters and hooks.

A perturbation acts on one episode through hooks, each a no-op unless overridden:

- ``on_reset(env, rng)``: after the env's reset (edit model parameters, move objects...);
- ``on_action(env, action, step)``: the action about to be executed, returns the one to execute;
- ``before_physics(env, step)``: just before the env steps (apply an external force...);
- ``on_observation(obs, step)``: the observation the controller will see;
- ``on_keyframe(phase, keyframe, step)``: a scripted expert's keyframe (demo-level only);
- ``restore(env)``: undo every model edit, so a reused env starts clean.

``env`` is always the *unwrapped* MuJoCo-based env (``env.model``, ``env.data``). A hook that makes
the perturbation take effect calls :meth:`Perturbation.mark_onset` with the step; the label's
``onset_step`` is the first such step.

Concrete perturbations are registered with :func:`register` and built by name with
:func:`make_perturbation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robofail.errors import InvalidInputError, UnknownNameError


@dataclass(frozen=True)
class Param:
    """One named parameter of a perturbation.

    Attributes:
        low, high: the allowed bounds (inclusive); a value outside is an error.
        default: the (low, high) range sampled when a spec gives none.
        integer: whether values are whole numbers (sampled inclusive of both ends).
        units: units of the value ("m", "N", "steps", "x nominal"...).
        doc: what the parameter does.
    """

    low: float
    high: float
    default: tuple[float, float]
    integer: bool = False
    units: str = ""
    doc: str = ""

    def check(self, name: str, value: float, owner: str) -> float:
        """``value`` as float/int if it is a finite number inside [low, high], else raise."""
        if isinstance(value, (bool, np.bool_, str, bytes)):
            raise InvalidInputError(f"{owner}.{name}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{owner}.{name}: expected a number, got {value!r}") from None
        if not np.isfinite(number) or not self.low <= number <= self.high:
            raise InvalidInputError(
                f"{owner}.{name}={value!r} is outside its allowed range "
                f"[{self.low:g}, {self.high:g}] {self.units}".rstrip()
            )
        if self.integer:
            if number != round(number):
                raise InvalidInputError(f"{owner}.{name}: expected a whole number, got {value!r}")
            return round(number)
        return number

    def sample(self, rng: np.random.Generator, low: float, high: float) -> float:
        """A uniform draw from [low, high] (inclusive integers when ``integer``)."""
        if self.integer:
            return int(rng.integers(round(low), round(high) + 1))
        return float(rng.uniform(low, high))


class Perturbation:
    """Base class of every perturbation. Subclasses set the class attributes and override hooks."""

    kind: ClassVar[str]
    """Name used in specs and labels (``"slip"``)."""
    level: ClassVar[str]
    """``"demo"``: edits a scripted expert's keyframes (needs the expert as controller);
    ``"env"``: acts on the environment, closed loop for any controller."""
    params: ClassVar[dict[str, Param]] = {}
    """The parameters and their bounds."""
    doc: ClassVar[str] = ""
    """One line: what goes wrong."""

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise InvalidInputError(
                f"{self.kind}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.params) or 'none'}"
            )
        missing = sorted(set(self.params) - set(values))
        if missing:
            raise InvalidInputError(f"{self.kind}: missing parameter(s) {', '.join(missing)}")
        self.values: dict[str, float] = {
            name: spec.check(name, values[name], self.kind) for name, spec in self.params.items()
        }
        self.onset_step = -1

    def __getattr__(self, name: str) -> float:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def describe(self) -> dict[str, Any]:
        """``{"kind": ..., <param>: value, ...}``: the label's ``perturbation`` field."""
        return {"kind": self.kind, **self.values}

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        """Why this perturbation cannot act on ``env`` (unwrapped), or "" when it can
        (e.g. ``grasp_miss`` on a task without a gripper)."""
        return ""

    def mark_onset(self, step: int) -> None:
        """Record that the perturbation took effect at control step ``step`` (first call wins)."""
        if self.onset_step < 0:
            self.onset_step = int(step)

    # ------------------------------------------------------------------ hooks
    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        """After ``env.reset``. ``rng`` is the episode's perturbation generator."""

    def on_action(self, env: Any, action: np.ndarray, step: int) -> np.ndarray:
        """The action (A,) to execute at ``step`` instead of ``action``."""
        return action

    def before_physics(self, env: Any, step: int) -> None:
        """Just before the env integrates control step ``step``."""

    def on_observation(
        self, obs: Mapping[str, np.ndarray] | np.ndarray, step: int
    ) -> dict[str, np.ndarray] | np.ndarray:
        """The observation the controller sees after ``step`` actions (0 = after reset).

        ``obs`` is a robofail dict (``{"state": ..., "image": ...}``) or the plain array of a
        gymnasium env; return the same type."""
        return dict(obs) if isinstance(obs, Mapping) else obs

    def on_keyframe(self, phase: str, keyframe: Any, step: int) -> Any:
        """A scripted expert's keyframe at ``step`` in phase ``phase`` (demo-level only)."""
        return keyframe

    def restore(self, env: Any) -> None:
        """Undo every edit of ``env.model`` made by this perturbation."""


REGISTRY: dict[str, type[Perturbation]] = {}


def register(cls: type[Perturbation]) -> type[Perturbation]:
    """Class decorator adding a perturbation to :data:`REGISTRY` under its ``kind``."""
    if cls.kind in REGISTRY:
        raise ValueError(f"perturbation kind {cls.kind!r} registered twice")
    REGISTRY[cls.kind] = cls
    return cls


def perturbation_type(kind: str) -> type[Perturbation]:
    """The registered perturbation class called ``kind``."""
    _load_builtin()
    if kind not in REGISTRY:
        raise UnknownNameError(
            f"unknown perturbation {kind!r}; known: {', '.join(sorted(REGISTRY))}"
        )
    return REGISTRY[kind]


def make_perturbation(kind: str, **values: Any) -> Perturbation:
    """A perturbation by name with the given parameter values (range-checked)."""
    return perturbation_type(kind)(**values)


def _load_builtin() -> None:
    """Import the modules that register the built-in perturbations."""
    from robofail.failgen import demo_level, env_level  # noqa: F401
