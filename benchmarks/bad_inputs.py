"""Bad-input sweep: every public entry point of robofail against inputs it must refuse.

Each case feeds one bad input to one entry point, a ``robofail`` verb (run in-process through
``robofail.cli.main(argv)``) or a Python API call, and records what came back. A case passes when

- a Python API call raises a :class:`robofail.errors.RobofailError` (any subclass), and
- a CLI verb exits with status 2 and prints exactly one line on stderr, with no traceback;

it fails when anything else comes back: another exception type, an exit status other than 2,
several stderr lines, or no error at all (the input was accepted silently). Cases may also name
paths that must not exist afterwards (no half-written output).

The inputs: NaN/inf, wrong shapes and dtypes, empty or too-small calibration sets, alpha outside
(0, 1), artifacts of another policy or schema version, truncated/corrupt HDF5, ONNX, JSON and
spec files, pickles where weights are expected, unknown names, unwritable paths. Everything runs
on small synthetic files built once in a temporary folder (a few seconds, no simulator except for
the verbs that build a bundled task's env).

The case list (:data:`CASES`) is shared with ``tests/test_bad_inputs.py``, so a regression fails
CI. Run as a script, it prints a markdown table (entry point x input -> what came back) and writes
``benchmarks/results/bad_inputs.json``::

    python benchmarks/bad_inputs.py [--json benchmarks/results/bad_inputs.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from robofail.errors import RobofailError

D, B, H, A = 8, 8, 4, 3
"""Embedding size, sampled chunks, chunk horizon and action dims of the synthetic policy."""
FINGERPRINT = "bad-inputs-policy"
OTHER_FINGERPRINT = "another-policy"
UNWRITABLE = Path("/proc/robofail-bad-inputs")
"""A folder nobody can create, not even root."""
MARKER_NAME = "pickle-was-executed"


# --------------------------------------------------------------------------- fixtures


class PickleBomb:
    """Unpickling this calls ``pathlib.Path.touch(marker)``: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


class SyntheticChunkPolicy:
    """A numpy :class:`~robofail.policy.protocol.ChunkPolicy` matching the fixtures' artifact:
    embedding (D,) and chunks (n, H, A) from the latest state (2,)."""

    horizon = H
    exec_horizon = 2
    obs_horizon = 1
    action_names = ("dx", "dy", "dz")
    position_dims = (0, 1)
    fingerprint = FINGERPRINT

    def embed(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs["state"][-1], dtype=np.float64)
        return np.tanh(np.resize(state, D)).astype(np.float32)

    def sample_chunks(self, obs: dict[str, np.ndarray], n: int, seed: int) -> np.ndarray:
        state = np.asarray(obs["state"][-1], dtype=np.float64)
        noise = np.random.default_rng(seed).normal(scale=0.01, size=(n, H, A))
        return (noise + 0.01 * state.sum()).astype(np.float32)


def synthetic_episodes(
    n: int, seed: int, *, success: bool = True, embedding_dim: int = D
) -> list[Any]:
    """``n`` monitored episodes (embeddings, sampled chunks, inference steps in ``extras``) of a
    synthetic policy; failures have shifted embeddings and wider chunks."""
    from robofail.data import Episode, EpisodeLabel

    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n):
        k = int(rng.integers(6, 10))
        steps = 2 * k
        shift = 0.0 if success else 2.0
        label = EpisodeLabel(
            success=success,
            seed=seed + i,
            failure_type="none" if success else "drift",
            failure_step=-1 if success else steps - 1,
        )
        episodes.append(
            Episode(
                obs={"state": rng.normal(size=(steps, 2)).astype(np.float32)},
                actions=rng.uniform(-1, 1, size=(steps, A)).astype(np.float32),
                rewards=np.zeros(steps, np.float32),
                dones=np.arange(steps) == steps - 1,
                states=np.zeros((steps, 0)),
                phases=np.zeros(steps, np.int8),
                final_state=np.zeros(0),
                label=label,
                extras={
                    "embeddings": (rng.normal(size=(k, embedding_dim)) + shift).astype(np.float32),
                    "sampled_chunks": rng.normal(
                        scale=0.01 * (1 + shift), size=(k, B, H, A)
                    ).astype(np.float32),
                    "inference_steps": np.arange(k, dtype=np.int64) * 2,
                },
            )
        )
    return episodes


def synthetic_info(fingerprint: str = FINGERPRINT) -> Any:
    """The DatasetInfo of the synthetic datasets (task ``synthetic``)."""
    from robofail.data import DatasetInfo

    return DatasetInfo(
        task="synthetic",
        env_id="Synthetic-v0",
        obs_names={"state": ["x", "y"]},
        action_names=["dx", "dy", "dz"],
        phase_names=["run"],
        control_hz=10.0,
        extra={"policy_fingerprint": fingerprint, "position_dims": [0, 1]},
    )


def _digest(path: Path) -> str:
    """sha256 over a file's bytes, or over a folder's file names and bytes (sorted)."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


class Fixtures:
    """Small valid files (built on first use) and damaged copies of them, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._count = 0
        self.kept: dict[Path, str] = {}

    def keep(self, path: Path) -> Path:
        """Register ``path`` (a file or folder that exists) as one the case must leave exactly
        as it was: its content digest is checked after the case runs."""
        self.kept[path] = _digest(path)
        return path

    def copy(self, source: Path) -> Path:
        """A copy of file or folder ``source`` in a new folder, for a case to aim at."""
        copy = self.out(source.name)
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            shutil.copy(source, copy)
        return copy

    def out(self, name: str = "out") -> Path:
        """A fresh path ``name`` in a new empty folder, for a case's output."""
        self._count += 1
        folder = self.root / "outs" / str(self._count)
        folder.mkdir(parents=True)
        return folder / name

    def file(self, name: str, content: str | bytes) -> Path:
        """A new file called ``name`` holding ``content``."""
        path = self.out(name)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def _write(self, name: str, episodes: list[Any], fingerprint: str = FINGERPRINT) -> Path:
        from robofail.data import write_episodes

        return write_episodes(self.root / name, episodes, synthetic_info(fingerprint))

    @cached_property
    def rollouts(self) -> Path:
        """40 successful monitored rollouts of the synthetic policy."""
        return self._write("rollouts.h5", synthetic_episodes(40, 0))

    @cached_property
    def failures(self) -> Path:
        """8 failed monitored rollouts of the synthetic policy."""
        return self._write("failures.h5", synthetic_episodes(8, 100, success=False))

    @cached_property
    def other_rollouts(self) -> Path:
        """Rollouts recorded with another policy (another fingerprint)."""
        return self._write("other.h5", synthetic_episodes(40, 200), OTHER_FINGERPRINT)

    @cached_property
    def small_embeddings(self) -> Path:
        """Rollouts whose embeddings have 5 values instead of D."""
        return self._write("small.h5", synthetic_episodes(4, 300, embedding_dim=5))

    @cached_property
    def nan_rollouts(self) -> Path:
        """Rollouts of the synthetic policy with NaN in one stored embedding."""
        episodes = synthetic_episodes(40, 400)
        episodes[3].extras["embeddings"][1, 2] = np.nan
        return self._write("nan.h5", episodes)

    @cached_property
    def demos(self) -> Path:
        """Successful episodes without the monitor's per-inference extras (demonstrations)."""
        from dataclasses import replace

        episodes = [replace(e, extras={}) for e in synthetic_episodes(4, 500)]
        return self._write("demos.h5", episodes)

    @cached_property
    def shards(self) -> Path:
        """A shard folder (two shards of two episodes) with its manifest."""
        from robofail.data import ShardedWriter

        with ShardedWriter(self.root / "shards", synthetic_info(), shard_size=2) as writer:
            for index, episode in enumerate(synthetic_episodes(4, 600)):
                writer.add(index, episode)
        return self.root / "shards"

    @cached_property
    def artifact(self) -> Path:
        """A calibration artifact for the synthetic policy (robofail, rnd and ace)."""
        from robofail.monitor.calibrate import CalibrationSettings, calibrate
        from robofail.monitor.episodes import load_episodes

        rollouts, _ = load_episodes([str(self.rollouts)])
        settings = CalibrationSettings(
            alpha=0.2, training_steps=20, windows=(1,), methods=("robofail", "rnd", "ace")
        )
        out = self.root / "artifact"
        calibrate(
            rollouts, out, position_dims=[0, 1], policy_fingerprint=FINGERPRINT, settings=settings
        )
        return out

    def monitor(self) -> Any:
        """A freshly loaded monitor of :attr:`artifact`, reset."""
        monitor = _load_monitor(self)
        monitor.reset()
        return monitor

    def edited_artifact(self, edit: Callable[[dict[str, Any]], None]) -> Path:
        """A copy of :attr:`artifact` whose ``calibration.json`` was changed by ``edit``."""
        copy = self.out("artifact")
        shutil.copytree(self.artifact, copy)
        path = copy / "calibration.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
        return copy

    def artifact_with_file(self, name: str, content: bytes, *, update_sha: bool) -> Path:
        """A copy of :attr:`artifact` with file ``name`` replaced by ``content`` (and its
        sha256 in ``calibration.json`` updated to match when ``update_sha``)."""
        from robofail.monitor.artifact import file_sha256

        copy = self.out("artifact")
        shutil.copytree(self.artifact, copy)
        (copy / name).write_bytes(content)
        if update_sha:
            path = copy / "calibration.json"
            data = json.loads(path.read_text())
            for spec in data["scores"].values():
                if spec.get("file") == name:
                    spec["sha256"] = file_sha256(copy / name)
            path.write_text(json.dumps(data))
        return copy

    @cached_property
    def policy(self) -> Path:
        """An (untrained) saved flow policy for the synthetic dataset."""
        import torch

        from robofail.policy.flow import FlowChunkModel, FlowChunkPolicy, FlowPolicyConfig

        config = FlowPolicyConfig(
            task="synthetic",
            state_names=["x", "y"],
            action_names=["dx", "dy", "dz"],
            position_dims=[0, 1],
            obs_horizon=1,
            horizon=H,
            exec_horizon=2,
            embed_dim=D,
            hidden=16,
            blocks=1,
            time_features=4,
            inference_steps=2,
        )
        torch.manual_seed(0)  # an untrained policy, the same on every run
        return FlowChunkPolicy(FlowChunkModel(config)).save(self.root / "policy")

    def edited_policy(self, name: str, content: bytes | None) -> Path:
        """A copy of :attr:`policy` with file ``name`` replaced by ``content`` (None: removed)."""
        copy = self.out("policy")
        shutil.copytree(self.policy, copy)
        if content is None:
            (copy / name).unlink()
        else:
            (copy / name).write_bytes(content)
        return copy

    @cached_property
    def recovery(self) -> Path:
        """An (untrained) exported recovery policy for the synthetic task, state (2,)."""
        import onnx

        from robofail.recovery.model import RecoveryConfig, build_network, export_onnx

        config = RecoveryConfig(
            task="synthetic",
            state_names=["x", "y"],
            action_names=["dx", "dy", "dz"],
            action_low=[-1.0] * A,
            action_high=[1.0] * A,
            horizon=H,
            exec_horizon=2,
            hidden=8,
            layers=1,
        )
        net = build_network(config, np.zeros(2), np.ones(2), seed=0).eval()
        path = self.root / "recovery.onnx"
        onnx.save(export_onnx(net, config), path)
        return path

    def recovery_with_metadata(self, **changes: str) -> Path:
        """A copy of :attr:`recovery` with metadata entries changed."""
        import onnx

        model = onnx.load(self.recovery)
        for entry in model.metadata_props:
            if entry.key in changes:
                entry.value = changes[entry.key]
        path = self.out("recovery.onnx")
        onnx.save(model, path)
        return path

    def damaged(self, source: Path, how: str) -> Path:
        """A damaged copy of file ``source``: ``truncated`` (half), ``garbage`` (random bytes),
        ``empty`` (0 bytes) or ``pickle`` (a pickle that would create :attr:`marker`)."""
        data = source.read_bytes()
        content = {
            "truncated": data[: len(data) // 2],
            "garbage": np.random.default_rng(0).bytes(4096),
            "empty": b"",
        }.get(how)
        if how == "pickle":
            content = self.pickle_bytes()
        return self.file(source.name, content)

    @property
    def marker(self) -> Path:
        """The file a pickle payload creates when it is executed; it must never appear."""
        return self.root / MARKER_NAME

    def pickle_bytes(self) -> bytes:
        """A pickle whose loading would create :attr:`marker`."""
        return pickle.dumps(PickleBomb(self.marker))

    @cached_property
    def blocker(self) -> Path:
        """A regular file, so that ``blocker/x`` cannot be created."""
        return self.file("blocker", "a regular file")

    def h5_edit(self, source: Path, edit: Callable[[Any], None]) -> Path:
        """A copy of HDF5 file ``source`` changed by ``edit(h5py.File)``."""
        import h5py

        copy = self.out(source.name)
        shutil.copy(source, copy)
        with h5py.File(copy, "a") as handle:
            edit(handle)
        return copy

    def shards_edit(self, edit: Callable[[Path], None]) -> Path:
        """A copy of :attr:`shards` changed by ``edit(folder)``."""
        copy = self.out("shards")
        shutil.copytree(self.shards, copy)
        edit(copy)
        return copy

    def spec(self, text: str, suffix: str = ".yaml") -> Path:
        """A spec file with ``text``."""
        return self.file(f"spec{suffix}", text)


def _load_monitor(fx: Fixtures, folder: Path | None = None, fingerprint: str = FINGERPRINT) -> Any:
    """The monitor of ``folder`` (default: the fixtures' artifact), not reset."""
    from robofail.monitor import Monitor

    return Monitor.load(folder or fx.artifact, policy_fingerprint=fingerprint)


def _manifest_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "manifest.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return edit


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One entry point with one bad input.

    Attributes:
        entry: the entry point, e.g. ``robofail calibrate`` or ``Monitor.update``.
        input: what is wrong with the input, in a few words.
        call: for the CLI, ``fixtures -> argv``; for the API, ``fixtures -> None`` making the
            call.
        cli: whether ``call`` returns an argv for ``robofail.cli.main``.
        absent: ``fixtures -> paths`` that must not exist afterwards (no half-written output).
    """

    entry: str
    input: str
    call: Callable[[Fixtures], Any]
    cli: bool = False
    absent: Callable[[Fixtures], Sequence[Path]] | None = None

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.input}"


@dataclass
class Outcome:
    """What came back from one case."""

    case: Case
    came_back: str
    ok: bool
    why: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "entry": self.case.entry,
            "input": self.case.input,
            "came_back": self.came_back,
            "ok": self.ok,
            "why": self.why,
        }


def _clean(text: str) -> str:
    return " ".join(text.split())


def run_case(case: Case, fixtures: Fixtures) -> Outcome:
    """Run one case and judge what came back (see the module docstring)."""
    fixtures.kept.clear()
    outcome = _run_cli(case, fixtures) if case.cli else _run_api(case, fixtures)
    changed = [
        str(p) for p, digest in fixtures.kept.items() if not p.exists() or _digest(p) != digest
    ]
    if outcome.ok and changed:
        outcome.ok, outcome.why = False, f"changed or deleted: {', '.join(changed)}"
    if outcome.ok and case.absent is not None:
        left = [str(p) for p in case.absent(fixtures) if p.exists()]
        if left:
            outcome.ok, outcome.why = False, f"left behind: {', '.join(left)}"
    if fixtures.marker.exists():
        outcome.ok, outcome.why = False, "a pickle payload was executed"
    return outcome


def _run_api(case: Case, fixtures: Fixtures) -> Outcome:
    try:
        case.call(fixtures)
    except RobofailError as exc:
        return Outcome(case, f"{type(exc).__name__}: {_clean(str(exc))}", True)
    except Exception as exc:  # the point of the sweep: anything else is a finding
        return Outcome(
            case, f"{type(exc).__name__}: {_clean(str(exc))}", False, "not a robofail error"
        )
    return Outcome(case, "accepted (no error)", False, "accepted silently")


def _run_cli(case: Case, fixtures: Fixtures) -> Outcome:
    from robofail.cli import main

    argv = [str(arg) for arg in case.call(fixtures)]
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # an exception escaping main() is a traceback for the user
        return Outcome(
            case,
            f"traceback: {type(exc).__name__}: {_clean(str(exc))}",
            False,
            "exception escaped the CLI",
            {"argv": argv},
        )
    lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
    shown = lines[0] if len(lines) == 1 else f"{len(lines)} stderr lines: " + " | ".join(lines)
    came_back = f"exit {status}: {_clean(shown)}"
    details = {"argv": argv, "stderr": stderr.getvalue()}
    if status != 2:
        return Outcome(case, came_back, False, f"exit status {status}, not 2", details)
    if len(lines) != 1 or "Traceback" in stderr.getvalue():
        return Outcome(case, came_back, False, "not a one-line error", details)
    return Outcome(case, came_back, True, "", details)


def cli(
    verb: str,
    what: str,
    argv: Callable[[Fixtures], Sequence[Any]],
    absent: Callable[[Fixtures], Sequence[Path]] | None = None,
) -> Case:
    """A CLI case: ``robofail VERB`` with ``argv(fixtures)`` (the verb included)."""
    return Case(f"robofail {verb}".strip(), what, argv, True, absent)


def api(entry: str, what: str, call: Callable[[Fixtures], Any]) -> Case:
    """A Python API case: ``call(fixtures)`` must raise a robofail error."""
    return Case(entry, what, call)


def _update(embedding: Any, chunks: Any) -> Callable[[Fixtures], Any]:
    """A Monitor.update case on a fresh, reset monitor of the fixtures' artifact."""

    def call(fx: Fixtures) -> Any:
        return fx.monitor().update(embedding, chunks)

    return call


def _e(value: float = 0.0, shape: tuple[int, ...] = (D,), dtype: Any = np.float32) -> Any:
    return np.full(shape, value, dtype=dtype)


def _c(value: float = 0.0, shape: tuple[int, ...] = (B, H, A), dtype: Any = np.float32) -> Any:
    chunks = np.random.default_rng(0).normal(scale=0.01, size=shape)
    if value:
        chunks.flat[0] = value
    return chunks.astype(dtype)


def _conformal(values: Any, alpha: Any, delta: Any = None) -> Callable[[Fixtures], Any]:
    def call(fx: Fixtures) -> Any:
        from robofail.monitor.conformal import conformal_threshold

        return conformal_threshold(values, alpha, delta)

    return call


def _spec_file(text: str, suffix: str = ".yaml", task: str = "pick_place"):
    def call(fx: Fixtures) -> Any:
        from robofail.failgen.spec import load_spec

        return load_spec(fx.spec(text, suffix), task)

    return call


def _spec_data(data: Any):
    def call(fx: Fixtures) -> Any:
        from robofail.failgen.spec import parse_spec

        return parse_spec(data, name="<sweep>")

    return call


def _open(path: Callable[[Fixtures], Path], then: Callable[[Any], Any] | None = None):
    def call(fx: Fixtures) -> Any:
        from robofail.data import open_dataset

        with open_dataset(path(fx)) as dataset:
            return list(dataset) if then is None else then(dataset)

    return call


def _monitor_load(folder: Callable[[Fixtures], Path], **kwargs: Any):
    def call(fx: Fixtures) -> Any:
        from robofail.monitor import Monitor

        return Monitor.load(folder(fx), **kwargs)

    return call


def _recovery_load(path: Callable[[Fixtures], Path], **kwargs: Any):
    def call(fx: Fixtures) -> Any:
        from robofail.recovery import RecoveryPolicy

        return RecoveryPolicy.load(path(fx), **kwargs)

    return call


def _act(state: Any, failure_type: str | None = None):
    def call(fx: Fixtures) -> Any:
        from robofail.recovery import RecoveryPolicy

        return RecoveryPolicy.load(fx.recovery).act(state, failure_type)

    return call


def _supervisor(
    *, make: Callable[[Fixtures], dict[str, Any]] | None = None, obs: Any = None, steps: int = 0
):
    """Build a Supervisor (``make(fx)`` overrides its arguments); with ``obs``, reset it, act
    ``steps`` times on a valid observation, then once on ``obs``; with neither, act without
    ``reset()``."""

    def call(fx: Fixtures) -> Any:
        from robofail.recovery import RecoveryPolicy
        from robofail.recovery.supervisor import Supervisor

        arguments: dict[str, Any] = {
            "policy": SyntheticChunkPolicy(),
            "monitor": fx.monitor(),
            "recovery": RecoveryPolicy.load(fx.recovery),
        }
        arguments.update(make(fx) if make else {})
        supervisor = Supervisor(**arguments)
        if make is not None:
            return supervisor
        if obs is None:
            return supervisor.act({"state": np.zeros(2, np.float32)})  # no reset()
        supervisor.reset()
        for _ in range(steps):
            supervisor.act({"state": np.zeros(2, np.float32)})
        return supervisor.act(obs)

    return call


def _with_notes(folder: Path, name: str = "notes.txt") -> Path:
    """``folder`` (created if missing) with a file of the user's, ``name``, in it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("the user's notes")
    return folder


def _fifo(fx: Fixtures) -> Path:
    """A named pipe: opening it for reading would wait for a writer forever."""
    path = fx.out("pipe.h5")
    os.mkfifo(path)
    return path


def _policy_of_kind(fx: Fixtures, kind: str) -> Path:
    """A copy of the fixtures' policy whose config.json names another ``kind``."""
    record = json.loads((fx.policy / "config.json").read_text())
    return fx.edited_policy("config.json", json.dumps({**record, "kind": kind}).encode())


def _run_folder(fx: Fixtures) -> Path:
    """A run folder with an empty run record (all report sections say what is missing)."""
    return fx.file("run.json", "{}").parent


def _artifact_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Fixtures], Path]:
    return lambda fx: fx.edited_artifact(change)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit of a JSON dict setting the value at ``a/b/c``."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _ace_spec(data: dict[str, Any]) -> dict[str, Any]:
    return data["scores"]["ace"]


SPEC_OK = "task: pick_place\nperturbations:\n  - kind: grasp_miss\n"

# fmt: off
CASES: list[Case] = [
    # ------------------------------------------------------------------ CLI: parser, tasks
    cli("", "no verb", lambda fx: []),
    cli("", "unknown verb", lambda fx: ["frobnicate"]),
    cli("tasks", "unknown option", lambda fx: ["tasks", "--bogus"]),
    # ------------------------------------------------------------------ demos
    cli("demos", "unknown task", lambda fx: ["demos", "--task", "stack", "-n", "2", "--out",
                                            fx.out("d.h5")]),
    cli("demos", "-n 0", lambda fx: ["demos", "--task", "push", "-n", "0", "--out", "x.h5"]),
    cli("demos", "-n nan", lambda fx: ["demos", "--task", "push", "-n", "nan", "--out", "x.h5"]),
    *[
        cli("demos", f"--noise {value}", lambda fx, v=value: [
            "demos", "--task", "push", "-n", "1", "--noise", v, "--out", fx.out("d.h5")])
        for value in ("nan", "inf", "-0.5")
    ],
    cli("demos", "--out not .h5", lambda fx: ["demos", "--task", "push", "-n", "1", "--out",
                                             fx.out("d.txt")]),
    cli("demos", "--out under a file", lambda fx: ["demos", "--task", "push", "-n", "1",
                                                  "--out", fx.blocker / "d.h5"]),
    cli("demos", "--out in an unwritable folder", lambda fx: [
        "demos", "--task", "push", "-n", "1", "--out", UNWRITABLE / "d.h5"]),
    cli("demos", "--out exists, no --overwrite", lambda fx: [
        "demos", "--task", "push", "-n", "1", "--out", fx.file("d.h5", "keep")]),
    cli("demos", "--workers 0", lambda fx: ["demos", "--task", "push", "-n", "1", "--workers",
                                           "0", "--out", fx.out("d.h5")]),
    cli("demos", "--workers 100000 (processes beyond twice the CPUs)", lambda fx: [
        "demos", "--task", "push", "-n", "1", "--workers", "100000", "--out", fx.out("d.h5")]),
    # ------------------------------------------------------------------ train-policy
    cli("train-policy", "--demos PATH:FILTER (takes a whole dataset)", lambda fx: [
        "train-policy", "--demos", f"{fx.demos}:success", "--out", fx.out("p")]),
    cli("train-policy", "missing --demos file", lambda fx: [
        "train-policy", "--demos", fx.out("none.h5"), "--out", fx.out("p")]),
    *[
        cli("train-policy", f"{how} --demos file", lambda fx, h=how: [
            "train-policy", "--demos", fx.damaged(fx.demos, h), "--out", fx.out("p")])
        for how in ("truncated", "garbage", "empty")
    ],
    cli("train-policy", "demos of another task", lambda fx: [
        "train-policy", "--task", "pick_place", "--demos", fx.demos, "--out", fx.out("p")]),
    cli("train-policy", "demos without a success", lambda fx: [
        "train-policy", "--demos", fx.failures, "--out", fx.out("p"), "--epochs", "1"]),
    cli("train-policy", "--position-dims a,b", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.out("p"), "--position-dims", "a,b"]),
    cli("train-policy", "--position-dims out of range", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.out("p"), "--position-dims", "7"]),
    cli("train-policy", "--exec-horizon > --horizon", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.out("p"), "--horizon", "4",
        "--exec-horizon", "9"]),
    cli("train-policy", "--image without images", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.out("p"), "--image"]),
    cli("train-policy", "--out is a file", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.blocker, "--epochs", "1"]),
    cli("train-policy", "--out under a file", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.blocker / "p", "--epochs", "1",
        "--horizon", "4", "--exec-horizon", "2", "--batch-size", "8"]),
    cli("train-policy", "--epochs 0", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.out("p"), "--epochs", "0"]),
    cli("train-policy", "--threads -1", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.out("p"), "--threads", "-1"]),
    # ------------------------------------------------------------------ rollout
    cli("rollout", "missing --policy folder", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.out("p"), "-n", "1", "--out",
        fx.out("r.h5")]),
    cli("rollout", "corrupt policy config.json", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.edited_policy("config.json", b"{"),
        "-n", "1", "--out", fx.out("r.h5")]),
    cli("rollout", "pickle as policy config.json", lambda fx: [
        "rollout", "--task", "push", "--policy",
        fx.edited_policy("config.json", fx.pickle_bytes()), "-n", "1", "--out", fx.out("r.h5")]),
    cli("rollout", "truncated model.safetensors", lambda fx: [
        "rollout", "--task", "push", "--policy",
        fx.edited_policy("model.safetensors", fx.policy.joinpath("model.safetensors")
                         .read_bytes()[:100]),
        "-n", "1", "--out", fx.out("r.h5")]),
    cli("rollout", "pickle as model.safetensors", lambda fx: [
        "rollout", "--task", "push", "--policy",
        fx.edited_policy("model.safetensors", fx.pickle_bytes()), "-n", "1",
        "--out", fx.out("r.h5")]),
    cli("rollout", "policy of another task", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.policy, "-n", "1", "--out",
        fx.out("r.h5")]),
    cli("rollout", "both --task and --env", lambda fx: [
        "rollout", "--task", "push", "--env", "CartPole-v1", "--policy", fx.policy, "-n", "1",
        "--out", fx.out("r.h5")]),
    cli("rollout", "unknown --env id", lambda fx: [
        "rollout", "--env", "NoSuchEnv-v0", "--policy", fx.policy, "-n", "1", "--out",
        fx.out("r.h5")]),
    cli("rollout", "--env-kwargs not JSON", lambda fx: [
        "rollout", "--task", "push", "--env-kwargs", "{oops", "--policy", fx.policy, "-n", "1",
        "--out", fx.out("r.h5")]),
    cli("rollout", "--env-kwargs a list", lambda fx: [
        "rollout", "--task", "push", "--env-kwargs", "[1, 2]", "--policy", fx.policy, "-n",
        "1", "--out", fx.out("r.h5")]),
    cli("rollout", "--env-kwargs unknown keyword", lambda fx: [
        "rollout", "--task", "push", "--env-kwargs", '{"colour": 3}', "--policy", fx.policy,
        "-n", "1", "--out", fx.out("r.h5")]),
    cli("rollout", "--samples 0", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.policy, "-n", "1", "--samples", "0",
        "--out", fx.out("r.h5")]),
    # ------------------------------------------------------------------ generate
    cli("generate", "unknown task", lambda fx: [
        "generate", "--task", "stack", "--spec", "failures", "-n", "2", "--out", fx.out("g")]),
    cli("generate", "unknown spec name", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "nosuch", "-n", "2", "--out",
        fx.out("g")]),
    *[
        cli("generate", f"spec: {what}", lambda fx, t=text, s=suffix: [
            "generate", "--task", "pick_place", "--spec", fx.spec(t, s), "-n", "2", "--out",
            fx.out("g")])
        for what, text, suffix in [
            ("malformed YAML", "task: [pick_place\nperturbations: {", ".yaml"),
            ("truncated JSON", '{"task": "pick_place", "perturb', ".json"),
            ("a list", "- task: pick_place\n", ".yaml"),
            ("unknown field", SPEC_OK + "colour: red\n", ".yaml"),
            ("unknown kind", "task: pick_place\nperturbations:\n  - kind: gremlins\n", ".yaml"),
            ("weight NaN", SPEC_OK + "    weight: .nan\n", ".yaml"),
            ("weight true", SPEC_OK + "    weight: true\n", ".yaml"),
            ("another task", "task: push\n", ".yaml"),
            ("python object tag", "!!python/object/apply:os.system ['true']\n", ".yaml"),
            ("policy source without --policy",
             "task: pick_place\nsource: policy\nperturbations:\n  - kind: push\n", ".yaml"),
        ]
    ],
    cli("generate", "spec: binary garbage", lambda fx: [
        "generate", "--task", "pick_place", "--spec", fx.file("spec.yaml", bytes(range(256))),
        "-n", "2", "--out", fx.out("g")]),
    cli("generate", "--resume and --overwrite", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--out",
        fx.out("g"), "--resume", "--overwrite"]),
    cli("generate", "--out is a file", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--out",
        fx.blocker]),
    cli("generate", "--out under a file", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--out",
        fx.blocker / "g"]),
    cli("generate", "--out in an unwritable folder", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--out",
        UNWRITABLE / "g"]),
    cli("generate", "--resume with a corrupt manifest", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--resume",
        "--out", fx.file("manifest.json", "{").parent]),
    cli("generate", "--shard-size 0", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--shard-size",
        "0", "--out", fx.out("g")]),
    cli("generate", "--address without ray", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "2", "--address",
        "ray://x:1", "--out", fx.out("g")]),
    cli("generate", "--policy that is not a policy", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "policy_failures", "-n", "2",
        "--policy", fx.out("p"), "--out", fx.out("g")]),
    # ------------------------------------------------------------------ discover
    cli("discover", "unknown --kind", lambda fx: [
        "discover", "--task", "pick_place", "--spec", "failures", "--kind", "gremlins", "-n",
        "20", "--out", fx.out("d")]),
    cli("discover", "-n 5 (too few)", lambda fx: [
        "discover", "--task", "pick_place", "--spec", "failures", "--kind", "slip", "-n", "5",
        "--out", fx.out("d")]),
    *[
        cli("discover", f"--initial-fraction {value}", lambda fx, v=value: [
            "discover", "--task", "pick_place", "--spec", "failures", "--kind", "slip", "-n",
            "20", "--initial-fraction", v, "--out", fx.out("d")])
        for value in ("0", "nan", "1.5")
    ],
    cli("discover", "nominal spec (nothing to search)", lambda fx: [
        "discover", "--task", "pick_place", "--spec", "nominal", "-n", "20", "--out",
        fx.out("d")]),
    cli("discover", "--out is a file", lambda fx: [
        "discover", "--task", "pick_place", "--spec", "failures", "--kind", "slip", "-n", "20",
        "--out", fx.blocker]),
    # ------------------------------------------------------------------ calibrate
    *[
        cli("calibrate", f"--alpha {value}", lambda fx, v=value: [
            "calibrate", "--rollouts", fx.rollouts, "--alpha", v, "--out", fx.out("c")])
        for value in ("1.5", "0", "-0.1", "nan", "1", "abc", "1e-300", "5e-324")
    ],
    cli("calibrate", "--delta 1", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--delta", "1", "--out", fx.out("c")]),
    cli("calibrate", "too few rollouts for alpha 0.001", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--alpha", "0.001", "--out", fx.out("c")],),
    cli("calibrate", "empty calibration set (filter)", lambda fx: [
        "calibrate", "--rollouts", f"{fx.rollouts}:failure", "--out", fx.out("c")]),
    cli("calibrate", "missing --rollouts", lambda fx: [
        "calibrate", "--rollouts", fx.out("none.h5"), "--out", fx.out("c")]),
    *[
        cli("calibrate", f"{how} --rollouts", lambda fx, h=how: [
            "calibrate", "--rollouts", fx.damaged(fx.rollouts, h), "--out", fx.out("c")])
        for how in ("truncated", "garbage", "pickle")
    ],
    cli("calibrate", "rollouts without monitor extras", lambda fx: [
        "calibrate", "--rollouts", fx.demos, "--out", fx.out("c")]),
    cli("calibrate", "unknown :FILTER", lambda fx: [
        "calibrate", "--rollouts", f"{fx.rollouts}:nofilter", "--out", fx.out("c")]),
    cli("calibrate", "rollouts of two policies", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, fx.other_rollouts, "--out", fx.out("c")]),
    cli("calibrate", "NaN embeddings in the rollouts", lambda fx: [
        "calibrate", "--rollouts", fx.nan_rollouts, "--alpha", "0.2", "--training-steps", "5",
        "--out", fx.out("c")]),
    cli("calibrate", "--out exists, no --overwrite", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--out", fx.artifact]),
    cli("calibrate", "--out is a file", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--out", fx.blocker, "--overwrite"]),
    cli("calibrate", "--out under a file", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--alpha", "0.2", "--training-steps", "5",
        "--out", fx.blocker / "c"]),
    cli("calibrate", "--out in an unwritable folder", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--alpha", "0.2", "--training-steps", "5",
        "--out", UNWRITABLE / "c"]),
    cli("calibrate", "--position-dims x", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--position-dims", "x", "--out", fx.out("c")]),
    cli("calibrate", "--position-dims out of range", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--position-dims", "9", "--alpha", "0.2",
        "--training-steps", "5", "--out", fx.out("c")]),
    cli("calibrate", "--policy not a policy folder", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--policy", fx.out("p"), "--out",
        fx.out("c")]),
    cli("calibrate", "--policy with corrupt config.json", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--policy",
        fx.edited_policy("config.json", b"\x00\xff"), "--out", fx.out("c")]),
    cli("calibrate", "--policy another policy", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--policy", fx.policy, "--out", fx.out("c")]),
    cli("calibrate", "--val-failures of another policy", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--val-failures", fx.other_rollouts, "--out",
        fx.out("c")]),
    cli("calibrate", "fractions leave no threshold split", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--fit-fraction", "0.9",
        "--validation-fraction", "0.2", "--out", fx.out("c")]),
    *[
        cli("calibrate", f"--training-steps {value}", lambda fx, v=value: [
            "calibrate", "--rollouts", fx.rollouts, "--alpha", "0.2", "--training-steps", v,
            "--out", fx.out("c")])
        for value in ("0", "-5")
    ],
    # ------------------------------------------------------------------ evaluate
    cli("evaluate", "missing --monitor folder", lambda fx: [
        "evaluate", "--monitor", fx.out("none"), "--rollouts", fx.rollouts]),
    cli("evaluate", "--monitor without calibration.json", lambda fx: [
        "evaluate", "--monitor", fx.file("x", "").parent, "--rollouts", fx.rollouts]),
    cli("evaluate", "artifact of another policy", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.other_rollouts]),
    cli("evaluate", "artifact of another schema version", lambda fx: [
        "evaluate", "--monitor", fx.edited_artifact(_set("schema_version", 99)), "--rollouts",
        fx.rollouts]),
    cli("evaluate", "rollouts of another embedding size", lambda fx: [
        "evaluate", "--monitor", fx.edited_artifact(_set("policy_fingerprint", "")),
        "--rollouts", fx.small_embeddings]),
    cli("evaluate", "NaN embeddings in the rollouts", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.nan_rollouts]),
    cli("evaluate", "no episodes (empty filter)", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", f"{fx.rollouts}:failure"]),
    cli("evaluate", "unknown --methods", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--methods", "magic"]),
    cli("evaluate", "--json is a folder", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--json",
        fx.root]),
    cli("evaluate", "--json under a file", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--json",
        fx.blocker / "m.json"]),
    cli("evaluate", "--plots under a file", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--plots",
        fx.blocker / "plots"]),
    # ------------------------------------------------------------------ inspect
    cli("inspect", "missing file", lambda fx: ["inspect", fx.out("none.h5")]),
    cli("inspect", "a named pipe (would block reading)", lambda fx: ["inspect", _fifo(fx)]),
    cli("inspect", "unknown :FILTER", lambda fx: ["inspect", f"{fx.rollouts}:nosuch"]),
    *[
        cli("inspect", f"{how} file", lambda fx, h=how: ["inspect", fx.damaged(fx.rollouts, h)])
        for how in ("truncated", "garbage", "empty", "pickle")
    ],
    cli("inspect", "HDF5 file of another layout", lambda fx: [
        "inspect", fx.h5_edit(fx.rollouts, lambda f: f.pop("mask"))]),
    cli("inspect", "HDF5 file of another schema version", lambda fx: [
        "inspect", fx.h5_edit(fx.rollouts,
                              lambda f: f["data"].attrs.__setitem__("robofail_schema", 99))]),
    cli("inspect", "folder without manifest", lambda fx: ["inspect", fx.file("x", "").parent]),
    cli("inspect", "corrupt manifest.json", lambda fx: [
        "inspect", fx.shards_edit(lambda f: (f / "manifest.json").write_text('{"shards": ['))]),
    cli("inspect", "manifest of another schema version", lambda fx: [
        "inspect", fx.shards_edit(_manifest_edit(_set("robofail_schema", 2)))]),
    cli("inspect", "manifest lists a missing shard", lambda fx: [
        "inspect", fx.shards_edit(lambda f: (f / "shard_00001.h5").unlink())]),
    cli("inspect", "manifest points outside the folder", lambda fx: [
        "inspect", fx.shards_edit(_manifest_edit(
            lambda m: m["shards"][0].__setitem__("file", "../rollouts.h5")))]),
    cli("inspect", "truncated shard", lambda fx: [
        "inspect", fx.shards_edit(lambda f: (f / "shard_00000.h5").write_bytes(
            (f / "shard_00000.h5").read_bytes()[:500]))]),
    # ------------------------------------------------------------------ Monitor.load
    api("Monitor.load", "missing folder", _monitor_load(lambda fx: fx.out("none"))),
    api("Monitor.load", "folder without calibration.json",
        _monitor_load(lambda fx: fx.file("x", "").parent)),
    api("Monitor.load", "corrupt calibration.json", _monitor_load(
        lambda fx: fx.artifact_with_file("calibration.json", b'{"alpha": ', update_sha=False))),
    api("Monitor.load", "pickle as calibration.json", _monitor_load(
        lambda fx: fx.artifact_with_file("calibration.json", fx.pickle_bytes(),
                                         update_sha=False))),
    api("Monitor.load", "calibration.json is a list", _monitor_load(
        lambda fx: fx.artifact_with_file("calibration.json", b"[1, 2]", update_sha=False))),
    api("Monitor.load", "another schema version",
        _monitor_load(_artifact_edit(_set("schema_version", 2)))),
    api("Monitor.load", "another artifact kind",
        _monitor_load(_artifact_edit(_set("kind", "something_else")))),
    api("Monitor.load", "artifact of another policy",
        _monitor_load(lambda fx: fx.artifact, policy_fingerprint=OTHER_FINGERPRINT)),
    api("Monitor.load", "unknown method", _monitor_load(lambda fx: fx.artifact, method="magic")),
    api("Monitor.load", "embedding_dim not a number",
        _monitor_load(_artifact_edit(_set("embedding_dim", "eight")))),
    api("Monitor.load", "embedding_dim differs from the ONNX model",
        _monitor_load(_artifact_edit(_set("embedding_dim", D + 1)))),
    api("Monitor.load", "alpha NaN", _monitor_load(_artifact_edit(_set("alpha", math.nan)))),
    api("Monitor.load", "ONNX file changed since calibration", _monitor_load(
        lambda fx: fx.artifact_with_file("rnd.onnx", b"\x08\x07", update_sha=False))),
    api("Monitor.load", "ONNX file garbage (sha256 matching)", _monitor_load(
        lambda fx: fx.artifact_with_file("rnd.onnx", b"garbage" * 10, update_sha=True))),
    api("Monitor.load", "pickle as ONNX file (sha256 matching)", _monitor_load(
        lambda fx: fx.artifact_with_file("rnd.onnx", fx.pickle_bytes(), update_sha=True))),
    api("Monitor.load", "ONNX file missing", _monitor_load(
        lambda fx: fx.edited_artifact(_set("scores/rnd/file", "gone.onnx")))),
    api("Monitor.load", "ONNX path outside the artifact", _monitor_load(
        lambda fx: fx.edited_artifact(_set("scores/rnd/file", "../../rollouts.h5")))),
    api("Monitor.load", "threshold NaN", _monitor_load(
        _artifact_edit(_set("methods/robofail/thresholds", [[math.nan], [1.0]])))),
    api("Monitor.load", "thresholds empty", _monitor_load(
        _artifact_edit(_set("methods/robofail/thresholds", [[], []])))),
    api("Monitor.load", "window 0",
        _monitor_load(_artifact_edit(_set("methods/robofail/windows", [0, 1])))),
    api("Monitor.load", "unknown combine rule",
        _monitor_load(_artifact_edit(_set("methods/robofail/combine", "xor")))),
    api("Monitor.load", "method watches an unknown score",
        _monitor_load(_artifact_edit(_set("methods/robofail/scores", ["rnd", "magic"])))),
    api("Monitor.load", "default_method not a method",
        _monitor_load(_artifact_edit(_set("default_method", "magic")))),
    api("Monitor.load", "unknown score type",
        _monitor_load(_artifact_edit(_set("scores/ace/type", "magic")))),
    api("Monitor.load", "score entry not an object",
        _monitor_load(_artifact_edit(_set("scores/ace", [1, 2])))),
    api("Monitor.load", "ACE cell not numbers",
        _monitor_load(_artifact_edit(_set("scores/ace/cell", "abc")))),
    api("Monitor.load", "ACE cell 0", _monitor_load(_artifact_edit(_set("scores/ace/cell",
                                                                        [0.0, 0.0])))),
    api("Monitor.load", "ACE position dim out of range",
        _monitor_load(_artifact_edit(_set("scores/ace/position_dims", [0, 7])))),
    api("Monitor.load", "ACE cell count differs from position dims",
        _monitor_load(_artifact_edit(_set("scores/ace/cell", [0.1])))),
    api("Monitor.load", "ACE field missing", _monitor_load(
        _artifact_edit(lambda data: _ace_spec(data).pop("cumulative")))),
    api("Monitor.load", "STAC offset not a number",
        _monitor_load(_artifact_edit(_set("scores/ace", {"type": "stac", "offset": "x"})))),
    api("Monitor.load", "STAC offset >= horizon",
        _monitor_load(_artifact_edit(_set("scores/ace", {"type": "stac", "offset": H})))),
    # ------------------------------------------------------------------ Monitor.update
    api("Monitor.update", "before reset()", lambda fx: _load_monitor(fx).update(_e(), _c())),
    api("Monitor.update", "embedding NaN", _update(_e(math.nan), _c())),
    api("Monitor.update", "embedding inf", _update(_e(math.inf), _c())),
    api("Monitor.update", "chunks NaN", _update(_e(), _c(math.nan))),
    api("Monitor.update", "chunks -inf", _update(_e(), _c(-math.inf))),
    api("Monitor.update", "embedding huge (1e38)", _update(_e(1e38), _c())),
    api("Monitor.update", "chunks huge (1e30)", _update(_e(), _c(1e30))),
    api("Monitor.update", "embedding shape (D+1,)", _update(_e(shape=(D + 1,)), _c())),
    api("Monitor.update", "embedding shape (1, D)", _update(_e(shape=(1, D)), _c())),
    api("Monitor.update", "embedding 0-d", _update(np.float32(0.0), _c())),
    api("Monitor.update", "chunks shape (B, H, A+1)", _update(_e(), _c(shape=(B, H, A + 1)))),
    api("Monitor.update", "chunks shape (H, A)", _update(_e(), _c(shape=(H, A)))),
    api("Monitor.update", "chunks B=1", _update(_e(), _c(shape=(1, H, A)))),
    api("Monitor.update", "chunks B=0", _update(_e(), _c(shape=(0, H, A)))),
    api("Monitor.update", "embedding int dtype", _update(_e(dtype=np.int64), _c())),
    api("Monitor.update", "chunks int dtype", _update(_e(), _c(dtype=np.int32))),
    api("Monitor.update", "chunks complex dtype", _update(_e(), _c(dtype=np.complex64))),
    api("Monitor.update", "chunks bool dtype", _update(_e(), _c(dtype=bool))),
    api("Monitor.update", "embedding object dtype", _update(_e(dtype=object), _c())),
    api("Monitor.update", "embedding a list", _update([0.0] * D, _c())),
    api("Monitor.update", "chunks None", _update(_e(), None)),
    # ------------------------------------------------------------------ conformal_threshold
    *[
        api("conformal_threshold", f"alpha {alpha!r}", _conformal(np.arange(100.0), alpha))
        for alpha in (0.0, 1.0, -0.1, 1.5, math.nan, math.inf, "0.1", True, None, 1e-300)
    ],
    api("conformal_threshold", "delta 1", _conformal(np.arange(100.0), 0.1, 1.0)),
    api("conformal_threshold", "delta NaN", _conformal(np.arange(100.0), 0.1, math.nan)),
    api("conformal_threshold", "empty calibration set", _conformal(np.array([]), 0.1)),
    api("conformal_threshold", "too few values (5 at alpha 0.05)",
        _conformal(np.arange(5.0), 0.05)),
    api("conformal_threshold", "values with NaN", _conformal(np.r_[np.arange(50.0), np.nan],
                                                             0.1)),
    api("conformal_threshold", "values with inf", _conformal(np.r_[np.arange(50.0), np.inf],
                                                             0.1)),
    api("conformal_threshold", "values 2-D", _conformal(np.zeros((20, 5)), 0.1)),
    api("conformal_threshold", "values strings", _conformal(np.array(["a"] * 50), 0.1)),
    api("conformal_threshold", "values None", _conformal(None, 0.1)),
    # ------------------------------------------------------------------ load_spec / parse_spec
    api("load_spec", "missing file / unknown name", lambda fx: __import__(
        "robofail.failgen.spec", fromlist=["load_spec"]).load_spec("nosuch.yaml", "pick_place")),
    api("load_spec", "malformed YAML", _spec_file("task: [pick_place\nperturbations: {")),
    api("load_spec", "truncated JSON", _spec_file('{"task": "pick_pl', ".json")),
    api("load_spec", "binary garbage", lambda fx: __import__(
        "robofail.failgen.spec", fromlist=["load_spec"]).load_spec(
        fx.file("spec.yaml", bytes(range(256))), "pick_place")),
    api("load_spec", "pickle as spec", lambda fx: __import__(
        "robofail.failgen.spec", fromlist=["load_spec"]).load_spec(
        fx.file("spec.yaml", fx.pickle_bytes()), "pick_place")),
    api("load_spec", "python object tag", _spec_file(
        f"!!python/object/apply:pathlib.Path.touch ['{MARKER_NAME}']\n")),
    api("load_spec", "empty file", _spec_file("")),
    api("load_spec", "spec for another task", _spec_file("task: push\n")),
    api("load_spec", "unknown top-level field", _spec_file(SPEC_OK + "colour: red\n")),
    api("parse_spec", "not a mapping", _spec_data([1, 2])),
    api("parse_spec", "task missing", _spec_data({"perturbations": []})),
    api("parse_spec", "task not a string", _spec_data({"task": 5})),
    api("parse_spec", "unknown source", _spec_data({"task": "pick_place", "source": "oracle"})),
    api("parse_spec", "unknown keep", _spec_data({"task": "pick_place", "keep": "some"})),
    api("parse_spec", "perturbations a mapping",
        _spec_data({"task": "pick_place", "perturbations": {"kind": "slip"}})),
    *[
        api("parse_spec", f"perturbation entry: {what}",
            _spec_data({"task": "pick_place", "perturbations": [entry]}))
        for what, entry in [
            ("not a mapping", "slip"),
            ("kind missing", {"weight": 1}),
            ("unknown kind", {"kind": "gremlins"}),
            ("kind not a string", {"kind": [1]}),
            ("unknown field", {"kind": "slip", "colour": "red"}),
            ("weight 0", {"kind": "slip", "weight": 0}),
            ("weight NaN", {"kind": "slip", "weight": math.nan}),
            ("weight inf", {"kind": "slip", "weight": math.inf}),
            ("weight a string", {"kind": "slip", "weight": "2"}),
            ("weight a bool", {"kind": "slip", "weight": True}),
            ("params a list", {"kind": "slip", "params": [1, 2]}),
            ("unknown parameter", {"kind": "slip", "params": {"colour": 1}}),
            ("parameter out of range", {"kind": "slip", "params": {"release_after": [0, 10**6]}}),
            ("parameter low > high", {"kind": "slip", "params": {"release_after": [6, 2]}}),
            ("parameter three values", {"kind": "slip", "params": {"release_after": [1, 2, 3]}}),
            ("parameter NaN", {"kind": "slip", "params": {"release_after": math.nan}}),
            ("parameter a string", {"kind": "slip", "params": {"release_after": "3"}}),
            ("parameter a bool", {"kind": "slip", "params": {"release_after": True}}),
            ("integer parameter 2.5", {"kind": "slip", "params": {"release_after": 2.5}}),
            ("parameter a mapping", {"kind": "slip", "params": {"release_after": {"a": 1}}}),
        ]
    ],
    api("parse_spec", "demo-level kind with source policy", _spec_data(
        {"task": "pick_place", "source": "policy", "perturbations": [{"kind": "slip"}]})),
    # ------------------------------------------------------------------ store readers
    api("open_dataset", "missing path", _open(lambda fx: fx.out("none.h5"))),
    *[
        api("open_dataset", f"{how} file", _open(lambda fx, h=how: fx.damaged(fx.rollouts, h)))
        for how in ("truncated", "garbage", "empty", "pickle")
    ],
    api("open_dataset", "HDF5 file of another layout",
        _open(lambda fx: fx.h5_edit(fx.rollouts, lambda f: f.pop("mask")))),
    api("open_dataset", "HDF5 file of another schema version", _open(
        lambda fx: fx.h5_edit(fx.rollouts,
                              lambda f: f["data"].attrs.__setitem__("robofail_schema", 2)))),
    api("open_dataset", "demo with a missing array", _open(
        lambda fx: fx.h5_edit(fx.rollouts, lambda f: f.pop("data/demo_1/actions")))),
    api("open_dataset", "demo with a corrupt label", _open(lambda fx: fx.h5_edit(
        fx.rollouts, lambda f: f["data/demo_1"].attrs.__setitem__("label", "{oops")))),
    api("open_dataset", "demo with a wrong num_samples", _open(lambda fx: fx.h5_edit(
        fx.rollouts, lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", 3)))),
    api("open_dataset", "folder without manifest", _open(lambda fx: fx.file("x", "").parent)),
    api("open_dataset", "corrupt manifest.json", _open(
        lambda fx: fx.shards_edit(lambda f: (f / "manifest.json").write_text("{")))),
    api("open_dataset", "pickle as manifest.json", _open(lambda fx: fx.shards_edit(
        lambda f: (f / "manifest.json").write_bytes(fx.pickle_bytes())))),
    api("open_dataset", "manifest index listed twice", _open(lambda fx: fx.shards_edit(
        _manifest_edit(lambda m: m["shards"][1].__setitem__("indices", [0, 1]))))),
    api("open_dataset", "manifest lists a missing shard", _open(
        lambda fx: fx.shards_edit(lambda f: (f / "shard_00001.h5").unlink()))),
    api("open_dataset", "manifest shard of another size", _open(lambda fx: fx.shards_edit(
        _manifest_edit(lambda m: m["shards"][0].__setitem__("bytes", 12))))),
    api("Dataset[i]", "index out of range", _open(lambda fx: fx.rollouts, lambda d: d[len(d)])),
    api("Dataset[i]", "index not an int", _open(lambda fx: fx.rollouts, lambda d: d["demo_1"])),
    api("Dataset.mask", "unknown filter", _open(lambda fx: fx.rollouts, lambda d: d.mask("x"))),
    api("write_episodes", "path under a file", lambda fx: __import__(
        "robofail.data", fromlist=["write_episodes"]).write_episodes(
        fx.blocker / "x.h5", synthetic_episodes(1, 0), synthetic_info())),
    api("write_episodes", "path in an unwritable folder", lambda fx: __import__(
        "robofail.data", fromlist=["write_episodes"]).write_episodes(
        UNWRITABLE / "x.h5", synthetic_episodes(1, 0), synthetic_info())),
    api("write_episodes", "not an Episode", lambda fx: __import__(
        "robofail.data", fromlist=["write_episodes"]).write_episodes(
        fx.out("x.h5"), [{"actions": []}], synthetic_info())),
    # ------------------------------------------------------------------ RecoveryPolicy
    api("RecoveryPolicy.load", "missing file", _recovery_load(lambda fx: fx.out("r.onnx"))),
    *[
        api("RecoveryPolicy.load", f"{how} file",
            _recovery_load(lambda fx, h=how: fx.damaged(fx.recovery, h)))
        for how in ("truncated", "garbage", "empty", "pickle")
    ],
    api("RecoveryPolicy.load", "an ONNX model that is not a recovery policy",
        _recovery_load(lambda fx: fx.artifact / "rnd.onnx")),
    api("RecoveryPolicy.load", "another schema version",
        _recovery_load(lambda fx: fx.recovery_with_metadata(schema="99"))),
    api("RecoveryPolicy.load", "corrupt metadata",
        _recovery_load(lambda fx: fx.recovery_with_metadata(horizon="[oops"))),
    api("RecoveryPolicy.load", "metadata horizon differs from the graph",
        _recovery_load(lambda fx: fx.recovery_with_metadata(horizon="9"))),
    api("RecoveryPolicy.load", "another task",
        _recovery_load(lambda fx: fx.recovery, task="pick_place")),
    api("RecoveryPolicy.load", "other state names",
        _recovery_load(lambda fx: fx.recovery, state_names=["a", "b"])),
    api("RecoveryPolicy.act", "state NaN", _act(np.array([np.nan, 0.0], np.float32))),
    api("RecoveryPolicy.act", "state shape (3,)", _act(np.zeros(3, np.float32))),
    api("RecoveryPolicy.act", "state int dtype", _act(np.zeros(2, np.int64))),
    api("RecoveryPolicy.act", "state a list", _act([0.0, 0.0])),
    # ------------------------------------------------------------------ Supervisor
    api("Supervisor", "samples 1", _supervisor(make=lambda fx: {"samples": 1})),
    api("Supervisor", "max_recovery_steps 0",
        _supervisor(make=lambda fx: {"max_recovery_steps": 0})),
    api("Supervisor", "monitor of another policy", _supervisor(make=lambda fx: {
        "monitor": _load_monitor(fx, fx.edited_artifact(
            _set("policy_fingerprint", OTHER_FINGERPRINT)), fingerprint="")})),
    api("Supervisor", "recovery for other actions", _supervisor(make=lambda fx: {
        "recovery": __import__("robofail.recovery", fromlist=["RecoveryPolicy"]).RecoveryPolicy
        .load(fx.recovery_with_metadata(action_names='["a", "b", "c"]'))})),
    api("Supervisor.act", "before reset()", _supervisor()),
    api("Supervisor.act", "observation not a dict", _supervisor(obs=np.zeros(2), steps=1)),
    api("Supervisor.act", "observation without state", _supervisor(obs={"image": 1}, steps=1)),
    api("Supervisor.act", "state NaN",
        _supervisor(obs={"state": np.full(2, np.nan, np.float32)}, steps=2)),
    api("Supervisor.act", "state wrong shape",
        _supervisor(obs={"state": np.zeros(5, np.float32)}, steps=2)),
    # ------------------------------------------------------------------ outputs: nothing lost
    cli("demos", "--noise 2 (actions lie in [-1, 1])", lambda fx: [
        "demos", "--task", "push", "-n", "1", "--noise", "2", "--out", fx.out("d.h5")]),
    cli("demos", "--seed -1", lambda fx: [
        "demos", "--task", "push", "-n", "1", "--seed", "-1", "--out", fx.out("d.h5")]),
    cli("generate", "--seed -1 with --overwrite keeps the dataset", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "1", "--seed", "-1",
        "--backend", "inprocess", "--out", fx.keep(fx.copy(fx.shards)), "--overwrite"]),
    cli("generate", "--workers 100000 with --overwrite keeps the dataset", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "1", "--workers",
        "100000", "--out", fx.keep(fx.copy(fx.shards)), "--overwrite"]),
    cli("generate", "--seed 2**32", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "1", "--seed",
        str(2**32), "--out", fx.out("g")]),
    cli("train-policy", "--out holds a policy, no --overwrite", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.keep(fx.copy(fx.policy))]),
    cli("train-policy", "--overwrite on a folder holding other files", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.keep(_with_notes(fx.copy(fx.policy))),
        "--overwrite"]),
    *[
        cli("train-policy", what, lambda fx, extra=extra: [
            "train-policy", "--demos", fx.demos, "--out", fx.out("p"), *extra])
        for what, extra in (
            ("--threads beyond the CPU count", ("--threads", "100000")),
            ("--horizon longer than every demo", ("--horizon", "5000")),
            ("--position-dims ,", ("--position-dims", ",")),
            ("--seed -1", ("--seed", "-1")),
        )
    ],
    cli("rollout", "--out not an .h5 file", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.policy, "-n", "1", "--out",
        fx.out("r.txt")]),
    cli("rollout", "--policy holds a recovery policy", lambda fx: [
        "rollout", "--task", "push", "--policy", _policy_of_kind(fx, "robofail_recovery_model"),
        "-n", "1", "--out", fx.out("r.h5")]),
    cli("calibrate", "--overwrite on a folder holding other files", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--alpha", "0.2", "--training-steps", "5",
        "--out", fx.keep(_with_notes(fx.copy(fx.artifact))), "--overwrite"]),
    cli("calibrate", "--policy is a file", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--policy", fx.recovery, "--out", fx.out("c")]),
    cli("calibrate", "--position-dims 0,0", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--position-dims", "0,0", "--out", fx.out("c")]),
    cli("calibrate", "--val-failures without a failure", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--val-failures", f"{fx.rollouts}:success",
        "--out", fx.out("c")]),
    cli("calibrate", "--seed -1", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--seed", "-1", "--out", fx.out("c")]),
    cli("evaluate", "--json is the artifact's calibration.json", lambda fx: [
        "evaluate", "--monitor", (art := fx.keep(fx.copy(fx.artifact))), "--rollouts",
        fx.rollouts, "--json", art / "calibration.json"]),
    cli("evaluate", "--json is a dataset", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--json",
        fx.keep(fx.copy(fx.demos))]),
    cli("evaluate", "--methods ,", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--methods", ","]),
    cli("evaluate", "--methods empty", lambda fx: [
        "evaluate", "--monitor", fx.artifact, "--rollouts", fx.rollouts, "--methods", ""]),
    *[
        cli("closed-loop", what, lambda fx, tail=tail: [
            "closed-loop", "--task", "pick_place", "--policy", fx.policy, "--monitor",
            fx.artifact, "--recovery", fx.recovery, "--spec", "policy_failures", "-n", "1",
            *tail(fx)])
        for what, tail in (
            ("--json in an unwritable folder", lambda fx: ["--json", UNWRITABLE / "a.json"]),
            ("--json under a file", lambda fx: ["--json", fx.blocker / "a.json"]),
            ("--json is a dataset", lambda fx: ["--json", fx.keep(fx.copy(fx.demos))]),
            ("--plot not a .png file", lambda fx: ["--plot", fx.out("plot.txt")]),
            ("--plot is a PNG-less name", lambda fx: ["--plot", fx.out("plots")]),
            ("--plot exists and is not a PNG", lambda fx: [
                "--plot", fx.keep(fx.file("mine.png", "not a png"))]),
            ("--seed -1", lambda fx: ["--seed", "-1"]),
            ("--plot is another program's PNG", lambda fx: ["--plot", fx.keep(fx.file(
                "b.png", b"\x89PNG\r\n\x1a\n....tEXtSoftware\x00matplotlib"))]),
            ("--reset-seconds 1e308", lambda fx: ["--reset-seconds", "1e308"]),
        )
    ],
    cli("export", "--out is the policy's weights", lambda fx: [
        "export", "--recovery", fx.out("r"), "--out", fx.keep(fx.copy(
            fx.policy / "model.safetensors"))]),
    cli("export", "--out exists and is not a recovery model", lambda fx: [
        "export", "--recovery", fx.out("r"), "--out", fx.keep(fx.file("x.onnx", b"mine"))]),
    cli("export", "--out under a file", lambda fx: [
        "export", "--recovery", fx.out("r"), "--out", fx.blocker / "r.onnx"]),
    cli("export", "--recovery is a base policy", lambda fx: [
        "export", "--recovery", fx.policy, "--out", fx.out("r.onnx")]),
    cli("train-recovery", "--out ends in .onnx", lambda fx: [
        "train-recovery", "--data", fx.demos, "--out", fx.out("r.onnx")]),
    cli("train-recovery", "--overwrite on a folder holding other files", lambda fx: [
        "train-recovery", "--data", fx.demos, "--out", fx.keep(_with_notes(fx.out("r"))),
        "--overwrite"]),
    cli("train-recovery", "--seed 2**70", lambda fx: [
        "train-recovery", "--data", fx.demos, "--out", fx.out("r"), "--seed", str(2**70)]),
    cli("recovery-data", "--noise 1e30", lambda fx: [
        "recovery-data", "--task", "pick_place", "--failures", fx.shards, "--out",
        fx.out("r.h5"), "--noise", "1e30"]),
    cli("recovery-data", "--beta without --learner", lambda fx: [
        "recovery-data", "--task", "pick_place", "--failures", fx.shards, "--out",
        fx.out("r.h5"), "--beta", "0.5"]),
    cli("recovery-data", "--out is a dataset folder", lambda fx: [
        "recovery-data", "--task", "pick_place", "--failures", fx.shards, "--out",
        fx.keep(fx.copy(fx.shards))]),
    cli("quickstart", "--out under a file", lambda fx: ["quickstart", "--out", fx.blocker / "q"]),
    cli("quickstart", "--out in an unwritable folder", lambda fx: [
        "quickstart", "--out", UNWRITABLE / "q"]),
    cli("quickstart", "--seed -1", lambda fx: ["quickstart", "--seed", "-1", "--out",
                                               fx.out("q")]),
    cli("report", "a folder that holds no run", lambda fx: ["report", fx.file("x", "").parent]),
    cli("report", "--out is a dataset", lambda fx: [
        "report", _run_folder(fx), "--out", fx.keep(fx.copy(fx.demos))]),
    cli("report", "--out exists and is not a report", lambda fx: [
        "report", _run_folder(fx), "--out", fx.keep(fx.file("x.html", "<html>mine</html>"))]),
    cli("inspect", "a JSON file", lambda fx: ["inspect", fx.file("metrics.json", "{}")]),
    cli("train-policy", "--overwrite on a policy folder holding a hidden file", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.keep(_with_notes(fx.copy(fx.policy),
                                                                          ".notes")),
        "--overwrite"]),
    cli("train-policy", "--overwrite on a recovery policy's folder", lambda fx: [
        "train-policy", "--demos", fx.demos, "--out", fx.keep(_policy_of_kind(
            fx, "robofail_recovery_model")), "--overwrite"]),
    cli("generate", "--overwrite on a dataset folder holding other files", lambda fx: [
        "generate", "--task", "pick_place", "--spec", "failures", "-n", "1", "--backend",
        "inprocess", "--out", fx.keep(_with_notes(fx.copy(fx.shards))), "--overwrite"]),
    cli("export-dataset", "--out inside the source folder", lambda fx: [
        "export-dataset", (src := fx.keep(fx.copy(fx.shards))), "--format", "robomimic",
        "--out", src / "shard_00000.h5", "--overwrite"]),
    cli("export-dataset", "lerobot --out named .h5", lambda fx: [
        "export-dataset", fx.shards, "--format", "lerobot", "--out", fx.out("l.h5")]),
    cli("rollout", "--samples 1", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.policy, "-n", "1", "--samples", "1",
        "--out", fx.out("r.h5")]),
    cli("rollout", "--samples 10**9", lambda fx: [
        "rollout", "--task", "push", "--policy", fx.policy, "-n", "1", "--samples",
        str(10**9), "--out", fx.out("r.h5")]),
    cli("render", "--out exists, no --overwrite", lambda fx: [
        "render", f"{fx.demos}:0", "--out", fx.keep(fx.file("v.mp4", b"my video"))]),
    cli("render", "--fps 1e-300", lambda fx: [
        "render", f"{fx.demos}:0", "--fps", "1e-300", "--out", fx.out("v.mp4")]),
    cli("calibrate", "the same rollouts twice", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, fx.rollouts, "--alpha", "0.2",
        "--training-steps", "5", "--out", fx.out("c")]),
    cli("calibrate", "--policy whose config.json is a list", lambda fx: [
        "calibrate", "--rollouts", fx.rollouts, "--policy", fx.edited_policy(
            "config.json", b"[]"), "--out", fx.out("c")]),
    cli("evaluate", "--monitor is calibration.json itself", lambda fx: [
        "evaluate", "--monitor", fx.artifact / "calibration.json", "--rollouts", fx.rollouts]),
    cli("train-recovery", "the same data twice", lambda fx: [
        "train-recovery", "--data", fx.demos, fx.demos, "--out", fx.out("r")]),
    cli("recovery-data", "--check-every without --learner", lambda fx: [
        "recovery-data", "--task", "pick_place", "--failures", fx.shards, "--out",
        fx.out("r.h5"), "--check-every", "5"]),
    cli("quickstart", "--out holds the user's files", lambda fx: [
        "quickstart", "--out", fx.keep(fx.file("demos.h5", "my demos").parent)]),
    cli("quickstart", "--out holds a run.json of another program", lambda fx: [
        "quickstart", "--out", fx.keep(fx.file("run.json", "[1, 2]").parent)]),
    cli("quickstart", "--seed 2**32 - 1 (stages add up to 6)", lambda fx: [
        "quickstart", "--seed", str(2**32 - 1), "--out", fx.out("q")]),
]
"""Every case of the sweep, in table order."""
# fmt: on


# --------------------------------------------------------------------------- table and main


def run_all(cases: Sequence[Case], fixtures: Fixtures) -> list[Outcome]:
    """Run every case in order."""
    return [run_case(case, fixtures) for case in cases]


def markdown_table(outcomes: Sequence[Outcome]) -> str:
    """Entry point | input | what came back | ok."""
    lines = ["| entry point | bad input | what came back | ok |", "|---|---|---|---|"]
    for outcome in outcomes:
        came_back = outcome.came_back.replace("|", "\\|")
        if len(came_back) > 160:
            came_back = came_back[:157] + "..."
        verdict = "yes" if outcome.ok else f"**NO**: {outcome.why}"
        lines.append(f"| {outcome.case.entry} | {outcome.case.input} | {came_back} | {verdict} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "bad_inputs.json"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="robofail_bad_inputs_") as temp:
        outcomes = run_all(CASES, Fixtures(Path(temp)))
    for outcome in outcomes:  # the same text on every run: the temporary folder as $TMP
        outcome.came_back = outcome.came_back.replace(temp, "$TMP")
    print(markdown_table(outcomes))
    failed = [o for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} cases refused as they should")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "bad_inputs",
        "cases": len(outcomes),
        "failed": len(failed),
        "outcomes": [o.row() for o in outcomes],
        "command": " ".join(["python", *sys.argv]),
    }
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
