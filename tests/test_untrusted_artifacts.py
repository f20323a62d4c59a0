"""Files from elsewhere are data, never code: a pickle planted where robofail expects weights, an
ONNX model, a calibration, a dataset or a spec is refused with a robofail error, and the payload
(which would create a marker file) never runs. The package never calls a loader that unpickles."""

from __future__ import annotations

import io
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bad_inputs import Fixtures as SweepFixtures
from benchmarks.bad_inputs import PickleBomb
from robofail.errors import CorruptFileError, RobofailError

PACKAGE = Path(__file__).resolve().parents[1] / "robofail"
UNSAFE_LOADERS = {
    "pickle / cPickle / dill / joblib / shelve / marshal import": re.compile(
        r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|joblib|cloudpickle|shelve|marshal)\b",
        re.M,
    ),
    "torch.load": re.compile(r"\btorch\.load\s*\("),
    "np.load(allow_pickle=True)": re.compile(r"allow_pickle\s*=\s*True"),
    "yaml.load / unsafe_load / full_load": re.compile(r"\byaml\.(load|unsafe_load|full_load)\s*\("),
    "eval / exec": re.compile(r"(?<![\w.])(eval|exec)\s*\("),
}


def torch_checkpoint(marker: Path) -> bytes:
    """A ``torch.save`` file (zip with a pickle inside) whose unpickling creates ``marker``."""
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "payload": PickleBomb(marker)}, buffer)
    return buffer.getvalue()


def plant(folder: Path, name: str, payload: bytes) -> Path:
    """A copy of ``folder`` with file ``name`` replaced by ``payload``."""
    copy = folder.parent / f"{folder.name}-planted-{name.replace('.', '_')}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(folder, copy)
    (copy / name).write_bytes(payload)
    return copy


def load_policy(path: Path) -> Any:
    from robofail.policy.flow import FlowChunkPolicy

    return FlowChunkPolicy.load(path)


def load_monitor(path: Path) -> Any:
    from robofail.monitor import Monitor

    return Monitor.load(path)


def load_recovery(path: Path) -> Any:
    from robofail.recovery import RecoveryPolicy

    return RecoveryPolicy.load(path)


def load_dataset(path: Path) -> Any:
    from robofail.data import read_episodes

    return read_episodes(path)


def load_spec(path: Path) -> Any:
    from robofail.failgen.spec import load_spec as load

    return load(path, "pick_place")


def artifact_with_onnx(files: SweepFixtures, payload: bytes) -> Path:
    """The artifact with ``rnd.onnx`` replaced by ``payload`` and its sha256 updated to match,
    so only the ONNX loader stands between the payload and the process."""
    return files.artifact_with_file("rnd.onnx", payload, update_sha=True)


Planter = Callable[[SweepFixtures, bytes], Path]
CASES: dict[str, tuple[Planter, Callable[[Path], Any]]] = {
    "policy weights (model.safetensors)": (
        lambda fx, payload: plant(fx.policy, "model.safetensors", payload),
        load_policy,
    ),
    "policy config (config.json)": (
        lambda fx, payload: plant(fx.policy, "config.json", payload),
        load_policy,
    ),
    "monitor score model (rnd.onnx, sha256 matching)": (artifact_with_onnx, load_monitor),
    "calibration (calibration.json)": (
        lambda fx, payload: fx.artifact_with_file("calibration.json", payload, update_sha=False),
        load_monitor,
    ),
    "recovery policy (.onnx)": (
        lambda fx, payload: fx.file("recovery.onnx", payload),
        load_recovery,
    ),
    "dataset (.h5)": (lambda fx, payload: fx.file("rollouts.h5", payload), load_dataset),
    "dataset manifest (manifest.json)": (
        lambda fx, payload: plant(fx.shards, "manifest.json", payload),
        load_dataset,
    ),
    "failure spec (.yaml)": (lambda fx, payload: fx.file("spec.yaml", payload), load_spec),
}
PAYLOADS: dict[str, Callable[[Path], bytes]] = {
    "pickle": lambda marker: pickle.dumps(PickleBomb(marker)),
    "pickle protocol 0": lambda marker: pickle.dumps(PickleBomb(marker), protocol=0),
    "torch .pt renamed": torch_checkpoint,
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
@pytest.mark.parametrize("where", CASES, ids=list(CASES))
def test_planted_pickle_is_refused_and_never_runs(
    sweep_files: SweepFixtures, tmp_path: Path, where: str, payload: str
) -> None:
    marker = tmp_path / "payload-ran"
    planter, load = CASES[where]
    path = planter(sweep_files, PAYLOADS[payload](marker))
    with pytest.raises(RobofailError):
        load(path)
    assert not marker.exists(), f"the pickle planted as {where} was executed"


def test_yaml_spec_cannot_construct_python_objects(
    sweep_files: SweepFixtures, tmp_path: Path
) -> None:
    marker = tmp_path / "payload-ran"
    spec = sweep_files.file("spec.yaml", f"!!python/object/apply:pathlib.Path.touch ['{marker}']\n")
    with pytest.raises(CorruptFileError, match="not valid YAML"):
        load_spec(spec)
    assert not marker.exists()


def test_the_planted_payloads_do_run_when_unpickled(tmp_path: Path) -> None:
    """The test payloads are live: the refusals above are not vacuous."""
    marker = tmp_path / "payload-ran"
    pickle.loads(PAYLOADS["pickle"](marker))
    assert marker.exists()


@pytest.mark.parametrize("loader", UNSAFE_LOADERS, ids=list(UNSAFE_LOADERS))
def test_package_never_calls_an_unpickling_loader(loader: str) -> None:
    pattern = UNSAFE_LOADERS[loader]
    hits = [
        f"{path.relative_to(PACKAGE.parent)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for text in [path.read_text()]
        for match in pattern.finditer(text)
    ]
    assert not hits, f"{loader} in {', '.join(hits)}"
