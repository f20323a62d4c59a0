"""Crash safety: ``robofail`` verbs killed with SIGKILL at random instants leave nothing broken.

- ``generate``: a killed run, continued with ``--resume``, gives the dataset of an uninterrupted
  run, byte for byte;
- ``calibrate``, ``train-policy`` and ``train-recovery``: the artifact / policy folder at ``--out``
  is, after the kill, either the old one, byte for byte, or the complete new one; never a
  half-written mix;
- ``export``: the ONNX file at ``--out`` is the old export or the complete new one.

Each scenario runs its verb once uninterrupted (the reference, and the time a run takes), then
kills fresh runs after a random delay (seeded) and checks what is on disk. Adding a verb is one
more :class:`Scenario` in :data:`SCENARIOS`. The kill instants are drawn from
``ROBOFAIL_KILL_SEED`` (default 0); ``ROBOFAIL_KILLS`` (default 2) kills per scenario follow one
preparation, so 20 kills of every verb in a row, each at its own instant, are::

    ROBOFAIL_KILLS=20 python -m pytest -q -m kill -p no:randomly -s

(``-s`` prints, per kill, the instant and whether the run was killed or had already finished.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.bad_inputs import Fixtures
from tests.failgen.test_generator import assert_same_dataset, write_spec

pytestmark = [pytest.mark.kill, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
KILLS_PER_SCENARIO = int(os.environ.get("ROBOFAIL_KILLS", "2"))
SEED = int(os.environ.get("ROBOFAIL_KILL_SEED", "0"))
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "robofail.cli"]
GENERATE_WITH_TEST_KINDS = [
    sys.executable,
    "-c",
    "import sys; from tests.failgen.test_generator import use_test_perturbations; "
    "use_test_perturbations(); from robofail.cli import main; sys.exit(main(sys.argv[1:]))",
]


def run(command: list[str], *, timeout: float = 300) -> float:
    """Run ``command`` to the end; its wall time in seconds (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - start


def run_and_kill(command: list[str], delay: float) -> float | None:
    """Start ``command`` and SIGKILL it (its whole process group) after ``delay`` seconds;
    None when it was killed, else the seconds it took to finish (successfully) first."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
        return None
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.returncode == 0, stderr[-3000:]
    return seconds


def kill_delay(seconds: float, name: str, attempt: int) -> float:
    """A seeded random instant in a run that took ``seconds`` (the shortest run seen so far):
    uniform over the run half of the time, else in its last part (where outputs are written)."""
    rng = np.random.default_rng([SEED, attempt, zlib.crc32(name.encode())])
    low = 0.05 if rng.random() < 0.5 else 0.6
    return seconds * rng.uniform(low, 0.95)


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(out: Path) -> list[str]:
    """Entries next to ``out`` other than ``out``, the staging folder of a killed writer and the
    empty probe file of a writer killed while checking it may write there."""
    return sorted(
        p.name
        for p in out.parent.iterdir()
        if p != out and not p.name.startswith((f".{out.name}.partial-", ".robofail-write-test-"))
    )


def assert_same_names(out: Path, old: Path) -> None:
    """The new output at ``out`` has exactly the files of the old one (none missing)."""
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in old.iterdir())


@dataclass(frozen=True)
class Scenario:
    """One verb under SIGKILL.

    Attributes:
        name: the verb.
        prepare: ``folder -> state``: builds the inputs in ``folder`` and runs the verb once
            uninterrupted; ``state["seconds"]`` is how long that run took.
        command: ``(state, out) -> argv`` of the run to kill, writing to ``out``.
        setup: ``(state, out) -> None``: puts what must survive at ``out`` before the run.
        check: ``(state, out) -> str``: asserts on what the kill left at ``out``; says what
            it found.
    """

    name: str
    prepare: Callable[[Path], dict[str, Any]]
    command: Callable[[dict[str, Any], Path], list[str]]
    setup: Callable[[dict[str, Any], Path], None]
    check: Callable[[dict[str, Any], Path], str]


# --------------------------------------------------------------------------- generate


def generate_argv(spec: Path, out: Path) -> list[str]:
    return [
        *GENERATE_WITH_TEST_KINDS,
        *("generate", "--task", "pick_place", "--spec", str(spec), "-n", "12"),
        *("--out", str(out), "--shard-size", "4", "--backend", "inprocess"),
    ]


def generate_prepare(folder: Path) -> dict[str, Any]:
    spec = write_spec(folder)
    reference = folder / "reference"
    return {"spec": spec, "reference": reference, "seconds": run(generate_argv(spec, reference))}


def generate_check(state: dict[str, Any], out: Path) -> str:
    shards = len(list(out.glob("shard_*.h5"))) if out.is_dir() else 0
    run([*generate_argv(state["spec"], out), "--resume"])
    assert_same_dataset(state["reference"], out)
    return f"resumed after {shards} shard(s)"


# --------------------------------------------------------------------------- calibrate


def calibrate_argv(rollouts: Path, out: Path, seed: int) -> list[str]:
    return [
        *CLI,
        *("calibrate", "--rollouts", str(rollouts), "--alpha", "0.2", "--training-steps", "40"),
        *("--seed", str(seed), "--out", str(out), "--overwrite"),
    ]


def calibrate_prepare(folder: Path) -> dict[str, Any]:
    rollouts = Fixtures(folder).rollouts
    old = folder / "old"
    seconds = run(calibrate_argv(rollouts, old, seed=0))
    return {"rollouts": rollouts, "old": old, "digest": folder_digest(old), "seconds": seconds}


def calibrate_check(state: dict[str, Any], out: Path) -> str:
    from robofail.monitor import Monitor

    assert out.is_dir(), "the artifact at --out is gone"
    monitor = Monitor.load(out)  # complete: every file there, sha256 of every ONNX matching
    old = monitor.calibration["seed"] == 0
    if old:
        assert folder_digest(out) == state["digest"], "the old artifact was changed"
    else:
        assert monitor.calibration["seed"] == 1
        assert_same_names(out, state["old"])
    assert leftovers(out) == []
    return "old artifact intact" if old else "new artifact complete"


# --------------------------------------------------------------------------- train-policy


def train_argv(demos: Path, out: Path, seed: int) -> list[str]:
    return [
        *CLI,
        *("train-policy", "--demos", str(demos), "--out", str(out), "--position-dims", "0,1"),
        *("--epochs", "10", "--horizon", "4", "--exec-horizon", "2", "--batch-size", "8"),
        *("--obs-horizon", "1", "--threads", "1", "--seed", str(seed)),
    ]


def train_prepare(folder: Path) -> dict[str, Any]:
    demos = Fixtures(folder).demos
    old = folder / "old"
    seconds = run(train_argv(demos, old, seed=0))
    return {"demos": demos, "old": old, "digest": folder_digest(old), "seconds": seconds}


def train_check(state: dict[str, Any], out: Path) -> str:
    import json

    from robofail.policy.flow import FlowChunkPolicy

    assert out.is_dir(), "the policy at --out is gone"
    policy = FlowChunkPolicy.load(out)  # config and weights of one and the same policy
    old = folder_digest(out) == state["digest"]
    if not old:  # then the complete new policy
        log = json.loads((out / "train_log.json").read_text())
        assert log["fingerprint"] == policy.fingerprint
        assert (out / "loss_curve.png").is_file()
    assert leftovers(out) == []
    return "old policy intact" if old else "new policy complete"


# --------------------------------------------------------------------------- train-recovery


def recovery_train_argv(data: Path, out: Path, seed: int) -> list[str]:
    return [
        *CLI,
        *("train-recovery", "--task", "pick_place", "--data", str(data), "--out", str(out)),
        *("--steps", "300", "--seed", str(seed), "--overwrite"),
    ]


_RECOVERY_DATA: dict[str, Path] = {}


def recovery_data(folder: Path) -> Path:
    """Recovery data from 8 pick_place failures, made once per session (in the first ``folder``
    asked) for the train-recovery and export scenarios."""
    if "path" not in _RECOVERY_DATA:
        from robofail.failgen.generator import generate

        failures = folder / "failures"
        generate("pick_place", "failures", 8, failures, seed=3, backend="inprocess",
                 progress=False)  # fmt: skip
        data = folder / "recovery.h5"
        run([*CLI, "recovery-data", "--task", "pick_place", "--failures", str(failures),
             "--out", str(data)])  # fmt: skip
        _RECOVERY_DATA["path"] = data
    return _RECOVERY_DATA["path"]


def recovery_train_prepare(folder: Path) -> dict[str, Any]:
    data = recovery_data(folder)
    old = folder / "old"
    run(recovery_train_argv(data, old, seed=0))
    seconds = run(recovery_train_argv(data, folder / "warm", seed=0))  # without first-run costs
    return {"data": data, "old": old, "digest": folder_digest(old), "seconds": seconds}


def recovery_train_check(state: dict[str, Any], out: Path) -> str:
    from robofail.recovery.train import load_recovery_model

    assert out.is_dir(), "the recovery policy at --out is gone"
    load_recovery_model(out)  # config, normalisation and weights all there and consistent
    old = folder_digest(out) == state["digest"]
    if not old:
        assert_same_names(out, state["old"])
    assert leftovers(out) == []
    return "old recovery policy intact" if old else "new recovery policy complete"


# --------------------------------------------------------------------------- export


def export_argv(model: Path, out: Path) -> list[str]:
    return [*CLI, "export", "--recovery", str(model), "--out", str(out)]


def export_prepare(folder: Path) -> dict[str, Any]:
    """Two recovery policies (seeds 0 and 1): the old file at --out is the export of the first,
    the killed run exports the second."""
    data = recovery_data(folder)
    old_model, new_model = folder / "old_model", folder / "new_model"
    run(recovery_train_argv(data, old_model, seed=0))
    run(recovery_train_argv(data, new_model, seed=1))
    old, new = folder / "old.onnx", folder / "new.onnx"
    run(export_argv(old_model, old))
    seconds = run(export_argv(new_model, new))
    digest = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in
              (("old", old), ("new", new))}  # fmt: skip
    assert digest["old"] != digest["new"]
    return {"old": old, "new_model": new_model, "digest": digest, "seconds": seconds}


def export_check(state: dict[str, Any], out: Path) -> str:
    assert out.is_file(), "the ONNX file at --out is gone"
    found = hashlib.sha256(out.read_bytes()).hexdigest()
    which = {v: k for k, v in state["digest"].items()}.get(found)
    assert which is not None, "the ONNX file at --out is neither the old nor the new export"
    assert leftovers(out) == []
    return f"{which} export complete"


def copy_old(state: dict[str, Any], out: Path) -> None:
    if state["old"].is_dir():
        shutil.copytree(state["old"], out)
    else:
        shutil.copyfile(state["old"], out)


SCENARIOS = [
    Scenario(
        "generate",
        generate_prepare,
        lambda state, out: generate_argv(state["spec"], out),
        lambda state, out: None,
        generate_check,
    ),
    Scenario(
        "calibrate",
        calibrate_prepare,
        lambda state, out: calibrate_argv(state["rollouts"], out, seed=1),
        copy_old,
        calibrate_check,
    ),
    Scenario(
        "train-policy",
        train_prepare,
        lambda state, out: train_argv(state["demos"], out, seed=1),
        copy_old,
        train_check,
    ),
    Scenario(
        "train-recovery",
        recovery_train_prepare,
        lambda state, out: recovery_train_argv(state["data"], out, seed=1),
        copy_old,
        recovery_train_check,
    ),
    Scenario(
        "export",
        export_prepare,
        lambda state, out: export_argv(state["new_model"], out),
        copy_old,
        export_check,
    ),
]


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[Scenario], dict[str, Any]]:
    """Each scenario's inputs and uninterrupted run, built on first use."""
    cache: dict[str, dict[str, Any]] = {}

    def get(scenario: Scenario) -> dict[str, Any]:
        if scenario.name not in cache:
            cache[scenario.name] = scenario.prepare(tmp_path_factory.mktemp(scenario.name))
        return cache[scenario.name]

    return get


@pytest.mark.parametrize("attempt", range(KILLS_PER_SCENARIO))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_sigkill_leaves_old_or_complete_output(
    scenario: Scenario, attempt: int, prepared: Callable[[Scenario], dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    state = prepared(scenario)
    out = tmp_path / "out"
    scenario.setup(state, out)
    delay = kill_delay(state["seconds"], scenario.name, attempt)
    finished_after = run_and_kill(scenario.command(state, out), delay)
    if finished_after is None:
        note = f"{scenario.name}: killed at {delay:.2f} s (seed {SEED})"
    else:  # the run was faster than the reference: later kills aim within this shorter run
        state["seconds"] = min(state["seconds"], finished_after)
        note = (
            f"{scenario.name}: finished in {finished_after:.2f} s before the kill at {delay:.2f} s"
        )
    try:
        found = scenario.check(state, out)
    except AssertionError as error:
        raise AssertionError(f"{note}: {error}") from error
    print(f"{note}: {found}")
