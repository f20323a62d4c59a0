"""Failure-generation specs: which perturbations, with which parameter ranges, for which task.

A spec is a YAML or JSON file::

    task: pick_place          # required
    source: expert            # expert (scripted expert, default), vision_expert (the expert
                              # perceiving the object in the camera image; needs --image) or
                              # policy (needs --policy)
    keep: failures            # failures (default) or all
    perturbations:            # empty list: the nominal spec (no perturbation)
      - kind: slip
        weight: 2             # relative probability of this entry (default 1)
        params:               # per parameter: [low, high] or one value; omitted: its default range
          release_after: [2, 6]

Episode ``i`` of a run with seed ``s`` draws its perturbation (entry by weight, then each
parameter uniformly in its range) from a generator seeded by ``(s, i)`` only, so the draw does not
depend on the backend, the worker count or the order episodes finish in.
Each bundled task ships the specs ``nominal``, ``failures``, ``policy_failures`` and
``observation_faults`` (``robofail/failgen/specs/``; pick_place also ``camera_faults``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robofail.errors import CorruptFileError, InvalidInputError, UnknownNameError
from robofail.failgen.perturbation import Perturbation, perturbation_type

SHIPPED_DIR = Path(__file__).resolve().parent / "specs"
SOURCES = ("expert", "vision_expert", "policy")
KEEP = ("failures", "all")
_PERTURBATION_STREAM = 2  # seed stream of perturbation draws (0: env reset, 1: action noise)


@dataclass(frozen=True)
class SpecEntry:
    """One perturbation kind of a spec with its sampling ranges."""

    kind: str
    weight: float
    ranges: dict[str, tuple[float, float]]
    """Per parameter, the (low, high) range it is drawn from (low == high: fixed)."""


@dataclass(frozen=True)
class FailureSpec:
    """A parsed, validated spec. Build with :func:`parse_spec` or :func:`load_spec`."""

    task: str
    source: str = "expert"
    keep: str = "failures"
    entries: tuple[SpecEntry, ...] = ()
    name: str = ""
    """Where the spec came from (file path or shipped name), for messages."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_nominal(self) -> bool:
        return not self.entries

    def fingerprint(self) -> str:
        """sha256 (16 hex chars) of the canonical spec content."""
        content = {
            "task": self.task,
            "source": self.source,
            "keep": self.keep,
            "entries": [[e.kind, e.weight, sorted(e.ranges.items())] for e in self.entries],
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def sample(self, seed: int, index: int) -> Perturbation | None:
        """The perturbation of episode ``index`` of a run seeded ``seed``; None if nominal."""
        if not self.entries:
            return None
        rng = np.random.default_rng(np.random.SeedSequence([seed, index, _PERTURBATION_STREAM]))
        weights = np.array([e.weight for e in self.entries])
        entry = self.entries[int(rng.choice(len(self.entries), p=weights / weights.sum()))]
        cls = perturbation_type(entry.kind)
        values = {
            name: cls.params[name].sample(rng, low, high)
            for name, (low, high) in sorted(entry.ranges.items())
        }
        return cls(**values)


def parse_spec(data: Any, *, name: str = "<spec>") -> FailureSpec:
    """Validate a spec's content (a dict from YAML/JSON); errors name the offending field."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"{name}: a spec must be a mapping with a 'task' field")
    unknown = _unknown_fields(data, {"task", "source", "keep", "perturbations"})
    if unknown:
        raise InvalidInputError(
            f"{name}: unknown field(s) {', '.join(unknown)}; "
            "known: task, source, keep, perturbations"
        )
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise InvalidInputError(f"{name}: field 'task' must name a task, e.g. task: pick_place")
    source = data.get("source", "expert")
    if source not in SOURCES:
        raise InvalidInputError(f"{name}: field 'source' must be one of {SOURCES}, got {source!r}")
    keep = data.get("keep", "failures")
    if keep not in KEEP:
        raise InvalidInputError(f"{name}: field 'keep' must be one of {KEEP}, got {keep!r}")
    items = data.get("perturbations", [])
    if not isinstance(items, list):
        raise InvalidInputError(f"{name}: field 'perturbations' must be a list")
    entries = tuple(
        _parse_entry(item, f"{name}: perturbations[{i}]") for i, item in enumerate(items)
    )
    demo_only = [e.kind for e in entries if perturbation_type(e.kind).level == "demo"]
    if source == "policy" and demo_only:
        raise InvalidInputError(
            f"{name}: {', '.join(demo_only)} edit(s) a scripted expert's keyframes and "
            "cannot perturb a policy; use source: expert or drop them"
        )
    if source == "vision_expert" and demo_only:
        raise InvalidInputError(
            f"{name}: {', '.join(demo_only)} edit(s) the privileged expert's keyframes or "
            "beliefs, which bypasses the camera; source: vision_expert takes "
            "environment-level perturbations only (use source: expert for these)"
        )
    return FailureSpec(task, source, keep, entries, name, data)


def _unknown_fields(mapping: dict, known: set[str]) -> list[str]:
    """The keys of ``mapping`` outside ``known``, as sorted text (YAML keys may be null,
    numbers or lists: ``? x`` or ``1: y`` is still an unknown field, not a crash)."""
    return sorted(str(key) for key in mapping if not (isinstance(key, str) and key in known))


def _parse_entry(item: Any, where: str) -> SpecEntry:
    if not isinstance(item, dict) or "kind" not in item:
        raise InvalidInputError(f"{where}: each entry needs a 'kind', e.g. - kind: slip")
    unknown = _unknown_fields(item, {"kind", "weight", "params"})
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    cls = perturbation_type(str(item["kind"]))
    weight = item.get("weight", 1.0)
    if (
        isinstance(weight, bool)
        or not isinstance(weight, (int, float))
        or not np.isfinite(weight)
        or weight <= 0
    ):
        raise InvalidInputError(f"{where}.weight must be a number > 0, got {weight!r}")
    given = item.get("params") or {}
    if not isinstance(given, dict):
        raise InvalidInputError(f"{where}.params must be a mapping of parameter: [low, high]")
    unknown = _unknown_fields(given, set(cls.params))
    if unknown:
        raise InvalidInputError(
            f"{where}: {cls.kind} has no parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(cls.params) or 'none'}"
        )
    ranges = {}
    for pname, param in cls.params.items():
        value = given.get(pname, list(param.default))
        bounds = value if isinstance(value, (list, tuple)) else [value, value]
        if len(bounds) != 2:
            raise InvalidInputError(f"{where}.params.{pname}: give [low, high] or one value")
        low = param.check(pname, bounds[0], f"{where} {cls.kind}")
        high = param.check(pname, bounds[1], f"{where} {cls.kind}")
        if low > high:
            raise InvalidInputError(f"{where}.params.{pname}: low {low} > high {high}")
        ranges[pname] = (low, high)
    return SpecEntry(cls.kind, float(weight), ranges)


def shipped_spec_names(task: str) -> list[str]:
    """Names of the specs shipped for ``task`` (``nominal``, ``failures``...)."""
    prefix = f"{task}_"
    return sorted(p.stem[len(prefix) :] for p in SHIPPED_DIR.glob(f"{prefix}*.yaml"))


def load_spec(spec: str | Path, task: str) -> FailureSpec:
    """A spec from a file path, or a shipped spec's name for ``task``; checks the task matches.

    Raises:
        UnknownNameError: neither a file nor a shipped spec name.
        CorruptFileError: the file is not valid YAML/JSON.
        InvalidInputError: the content is invalid or is for another task.
    """
    path, name = Path(spec), str(spec)  # a shipped spec keeps its name, not its install path
    if not path.is_file():
        if str(spec) in shipped_spec_names(task):
            path = SHIPPED_DIR / f"{task}_{spec}.yaml"
        else:
            raise UnknownNameError(
                f"spec {str(spec)!r} is neither a file nor a spec shipped for {task} "
                f"({', '.join(shipped_spec_names(task)) or 'none'})"
            )
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: cannot read the spec ({exc})") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json and yaml raise several error types
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptFileError(f"{path}: not valid YAML/JSON ({first_line})") from None
    parsed = parse_spec(data, name=name)
    if parsed.task != task:
        raise InvalidInputError(f"{path} is a spec for task {parsed.task!r}, not {task!r}")
    return parsed


def resolve_spec(spec: FailureSpec | str | Path, task: str) -> FailureSpec:
    """``spec`` itself if already parsed, else :func:`load_spec`; either way checked to be a
    spec for ``task``."""
    parsed = spec if isinstance(spec, FailureSpec) else load_spec(spec, task)
    if parsed.task != task:
        raise InvalidInputError(f"spec {parsed.name} is for task {parsed.task!r}, not {task!r}")
    return parsed
