"""The calibration artifact: ``calibration.json`` plus one ``.onnx`` per fitted score model.

``calibration.json`` (schema :data:`SCHEMA_VERSION`)::

    {"schema_version": 1, "kind": "robofail_calibration", "library_version": "...",
     "alpha": 0.05, "policy_fingerprint": "6f7ae1c1c9ed70cc", "task": "pick_place",
     "embedding_dim": 128, "horizon": 16, "action_dim": 5, "exec_horizon": 8,
     "n_episodes": {"fit": 120, "threshold": 120, "validation": 60, "validation_failures": 40},
     "length_cap_steps": 36,
     "scores": {"rnd": {"type": "onnx", "file": "rnd.onnx", "sha256": "..."},
                "ace": {"type": "ace", "position_dims": [0, 1, 2], "cumulative": true,
                        "cell": [0.01, 0.01, 0.004]},
                "stac": {"type": "stac", "offset": 8}, ...},
     "methods": {"robofail": {"scores": ["rnd", "ace"], "windows": [2, 1], "combine": "any",
                              "style": "constant", "thresholds": [[3.1], [2.4]]}, ...},
     "default_method": "robofail",
     "selection": {...how each method's settings were chosen...}}

Reading it needs only the standard library and numpy; every inconsistency is a
:class:`CorruptFileError` or :class:`IncompatibleArtifactError` that names the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from robofail.errors import CorruptFileError, IncompatibleArtifactError
from robofail.monitor.ace import MAX_POSITION_DIMS
from robofail.monitor.rules import MethodRule

SCHEMA_VERSION = 1
ARTIFACT_KIND = "robofail_calibration"
CALIBRATION_FILE = "calibration.json"
METHOD_NAMES = (
    "robofail",
    "fiper_and",
    "fiper_or",
    "rnd",
    "ace",
    "stac",
    "mahalanobis",
    "pca_kmeans",
    "logpzo",
)
_REQUIRED = {
    "alpha": float,
    "policy_fingerprint": str,
    "embedding_dim": int,
    "horizon": int,
    "action_dim": int,
    "exec_horizon": int,
    "scores": dict,
    "methods": dict,
    "default_method": str,
}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_calibration(folder: str | Path) -> dict[str, Any]:
    """Read and check ``folder/calibration.json`` and the integrity of its ONNX files.

    Raises:
        CorruptFileError: missing folder or file, invalid JSON, missing or mistyped fields, an
            ONNX file missing or changed since calibration (sha256).
        IncompatibleArtifactError: another schema version or artifact kind.
    """
    folder = Path(folder)
    path = folder / CALIBRATION_FILE
    if folder.is_file():
        raise CorruptFileError(
            f"{folder} is a file; give the calibration artifact's folder (the one holding "
            f"{CALIBRATION_FILE}), e.g. calib/pick_place"
        )
    if not path.is_file():
        raise CorruptFileError(
            f"{folder} is not a calibration artifact (no {CALIBRATION_FILE}); "
            "create one with `robofail calibrate`"
        )
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != ARTIFACT_KIND:
        found = data.get("kind") if isinstance(data, dict) else None
        raise CorruptFileError(
            f"{path}: not a robofail calibration file (its kind is {found!r}, expected "
            f"{ARTIFACT_KIND!r}); give a folder `robofail calibrate` wrote"
        )
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise IncompatibleArtifactError(
            f"{path}: schema version {version!r}, this robofail reads version {SCHEMA_VERSION}; "
            "recalibrate with this version (`robofail calibrate`)"
        )
    for key, kind in _REQUIRED.items():
        value = data.get(key)
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise CorruptFileError(f"{path}: field {key!r} missing or not a {kind.__name__}")
    sizes = {key: data[key] for key in ("embedding_dim", "horizon", "action_dim")}
    if not 0 < data["alpha"] < 1 or min(sizes.values()) < 1:
        raise CorruptFileError(f"{path}: alpha must be in (0, 1) and {sizes} >= 1")
    for name, spec in data["scores"].items():
        if not isinstance(spec, dict):
            raise CorruptFileError(f"{path}: score {name!r} is not an object")
        problem = _score_problem(spec, data)
        if problem:
            raise CorruptFileError(f"{path}: score {name!r}: {problem}; recalibrate")
        if spec["type"] == "onnx":
            onnx_path = folder / spec["file"]
            if not onnx_path.is_file():
                raise CorruptFileError(f"{path}: score {name!r} needs {onnx_path}; it is missing")
            if file_sha256(onnx_path) != spec.get("sha256"):
                raise CorruptFileError(
                    f"{onnx_path} changed since calibration (sha256 differs); recalibrate"
                )
    if data["default_method"] not in data["methods"]:
        raise CorruptFileError(f"{path}: default_method {data['default_method']!r} is not a method")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _score_problem(spec: dict[str, Any], data: dict[str, Any]) -> str:
    """What is wrong with one ``scores`` entry, or "" when it is well-formed for the artifact's
    horizon and action dims."""
    kind = spec.get("type")
    if kind == "onnx":
        file = spec.get("file")
        if not isinstance(file, str) or not file or Path(file).name != file:
            return f"'file' must name a file inside the artifact folder, got {file!r}"
        return ""
    if kind == "ace":
        dims, cell = spec.get("position_dims"), spec.get("cell")
        if not isinstance(spec.get("cumulative"), bool):
            return "'cumulative' must be true or false"
        if (
            not isinstance(dims, list)
            or not 1 <= len(dims) <= MAX_POSITION_DIMS
            or not all(_is_int(d) and 0 <= d < data["action_dim"] for d in dims)
        ):
            return (
                f"'position_dims' must list 1 to {MAX_POSITION_DIMS} action dims in "
                f"0..{data['action_dim'] - 1}, got {dims!r}"
            )
        if (
            not isinstance(cell, list)
            or len(cell) != len(dims)
            or not all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and 0 < c < math.inf
                for c in cell
            )
        ):
            return f"'cell' must give one finite size > 0 per position dim, got {cell!r}"
        return ""
    if kind == "stac":
        offset = spec.get("offset")
        if not _is_int(offset) or not 0 < offset < data["horizon"]:
            return f"'offset' must be an int in 1..{data['horizon'] - 1}, got {offset!r}"
        return ""
    return f"unknown score type {kind!r} (known: onnx, ace, stac)"


def method_rule(data: dict[str, Any], name: str, source: str) -> MethodRule:
    """The :class:`MethodRule` called ``name`` in a loaded artifact."""
    from robofail.errors import UnknownNameError

    if name not in data["methods"]:
        raise UnknownNameError(
            f"{source} has no method {name!r}; it has {', '.join(sorted(data['methods']))}"
        )
    rule = MethodRule.from_json(name, data["methods"][name], source)
    missing = [s for s in rule.scores if s not in data["scores"]]
    if missing:
        raise CorruptFileError(f"{source}: method {name!r} uses unknown scores {missing}")
    return rule


def check_fingerprint(data: dict[str, Any], fingerprint: str, source: str) -> None:
    """Refuse an artifact calibrated for another policy (empty fingerprints are not checked)."""
    expected = data["policy_fingerprint"]
    if fingerprint and expected and fingerprint != expected:
        raise IncompatibleArtifactError(
            f"{source} was calibrated for policy {expected}, not this policy ({fingerprint}); "
            "calibrate the monitor on rollouts of this policy"
        )
