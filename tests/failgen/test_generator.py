"""The failure generator: the same bytes from every backend, kill + resume, exact replay from the
stored onset state, the summary, and one-line CLI errors that leave nothing behind.

The tests use two small perturbations of their own (``test_drop``, ``test_heavy``) so they do not
depend on the built-in ones; worker processes import this module to unpickle them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from robofail.cli import main
from robofail.data import open_dataset
from robofail.failgen import perturbation as perturbation_module
from robofail.failgen.generator import generate, run_perturbed_episode
from robofail.failgen.perturbation import REGISTRY, Param, Perturbation
from robofail.tasks import make_env

REPO = Path(__file__).resolve().parents[2]


class DropGrasp(Perturbation):
    """Opens the gripper for good from step ``after`` on (demo-level)."""

    kind = "test_drop"
    level = "demo"
    doc = "the gripper opens for good from step `after` on"
    params: ClassVar[dict[str, Param]] = {
        "after": Param(0, 100, (10, 25), integer=True, units="steps")
    }

    @classmethod
    def unsupported_reason(cls, env: Any) -> str:
        return "push has no gripper" if env.task_name == "push" else ""

    def on_keyframe(self, phase: str, keyframe: Any, step: int) -> Any:
        if step < self.after:
            return keyframe
        self.mark_onset(step)
        return replace(keyframe, grip=-1.0)


class HeavyObject(Perturbation):
    """Scales the manipulated object's mass (env-level)."""

    kind = "test_heavy"
    level = "env"
    doc = "the manipulated object is `scale` times heavier"
    params: ClassVar[dict[str, Param]] = {"scale": Param(0.1, 10, (1, 4), units="x nominal")}

    def on_reset(self, env: Any, rng: np.random.Generator) -> None:
        body = env.model.body(env.object_body).id
        self._nominal = float(env.model.body_mass[body])
        env.model.body_mass[body] = self._nominal * self.scale
        self.mark_onset(0)

    def restore(self, env: Any) -> None:
        env.model.body_mass[env.model.body(env.object_body).id] = self._nominal


TEST_KINDS = {cls.kind: cls for cls in (DropGrasp, HeavyObject)}


def use_test_perturbations() -> None:
    """In a fresh process: register the test kinds and leave the built-in modules unimported."""
    REGISTRY.update(TEST_KINDS)
    perturbation_module._load_builtin = lambda: None


def patch_test_perturbations(patch: pytest.MonkeyPatch) -> None:
    """Register the test kinds and skip the built-in modules until ``patch`` is undone."""
    for kind, cls in TEST_KINDS.items():
        patch.setitem(REGISTRY, kind, cls)
    patch.setattr(perturbation_module, "_load_builtin", lambda: None)


@pytest.fixture(autouse=True)
def _test_perturbations(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_test_perturbations(monkeypatch)


SPEC = {
    "task": "pick_place",
    "keep": "failures",
    "perturbations": [
        {"kind": "test_drop", "weight": 2},
        {"kind": "test_heavy", "params": {"scale": [1, 3]}},
    ],
}


def write_spec(folder: Path, name: str = "spec.json", **changes: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps({**SPEC, **changes}))
    return path


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def assert_same_dataset(a: Path, b: Path) -> None:
    """Every array and label equal, the same shards with the same indices, identical bytes."""
    with open_dataset(a) as first, open_dataset(b) as second:
        assert first.info == second.info
        assert first.episode_names() == second.episode_names()
        assert first.labels() == second.labels()
        for x, y in zip(first, second, strict=True):
            assert x.obs.keys() == y.obs.keys()
            for key in x.obs:
                np.testing.assert_array_equal(x.obs[key], y.obs[key])
            for name in ("actions", "rewards", "dones", "states", "phases", "final_state"):
                np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
            assert x.extras.keys() == y.extras.keys()
    assert manifest(a)["shards"] == manifest(b)["shards"]
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """In-process run of 12 episodes, 5 indices per shard."""
    folder = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch_test_perturbations(patch)
        summary = generate(
            "pick_place",
            write_spec(folder),
            12,
            folder / "out",
            backend="inprocess",
            shard_size=5,
            progress=False,
        )
    return folder / "out", summary


def test_keeps_failures_and_records_dropped_indices(reference: tuple[Path, Any]) -> None:
    out, summary = reference
    shards = manifest(out)["shards"]
    covered = [sorted(s["indices"] + s["skipped"]) for s in shards]
    assert covered == [list(range(0, 5)), list(range(5, 10)), [10, 11]]
    with open_dataset(out) as dataset:
        labels = dataset.labels()
        info = dataset.info
    assert labels and not any(label.success for label in labels)
    assert {label.failure_type for label in labels} <= {"test_drop", "test_heavy"}
    for label in labels:
        assert label.perturbation["kind"] == label.failure_type
        assert 0 <= label.onset_step <= label.failure_step
        assert label.phase_at_onset
    assert summary.attempted == 12 and summary.kept == len(labels) < 12
    assert sum(s.failed for s in summary.kinds.values()) == len(labels)
    assert info.extra["seed"] == 0 and info.extra["source"] == "expert"
    assert info.extra["spec"]["perturbations"][0]["kind"] == "test_drop"
    assert len(info.extra["spec_fingerprint"]) == 16
    assert "test_drop" in summary.table()


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_backends_and_worker_counts_write_identical_bytes(
    reference: tuple[Path, Any], tmp_path: Path, backend: str
) -> None:
    out = tmp_path / backend
    generate(
        "pick_place",
        write_spec(tmp_path),
        12,
        out,
        backend=backend,
        workers=2,
        shard_size=5,
        progress=False,
    )
    assert_same_dataset(reference[0], out)


def test_killed_run_resumes_to_the_uninterrupted_dataset(tmp_path: Path) -> None:
    spec, out, n = write_spec(tmp_path), tmp_path / "killed", 32
    command = [
        sys.executable,
        "-c",
        "import sys; from tests.failgen.test_generator import use_test_perturbations; "
        "use_test_perturbations(); from robofail.cli import main; sys.exit(main(sys.argv[1:]))",
        *("generate", "--task", "pick_place", "--spec", str(spec), "-n", str(n)),
        *("--out", str(out), "--shard-size", "4", "--backend", "inprocess"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "manifest.json").is_file() and manifest(out)["shards"]:
                break
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    done = sum(len(s["indices"]) + len(s["skipped"]) for s in manifest(out)["shards"])
    assert 0 < done < n
    resume = ["generate", "--task", "pick_place", "--spec", str(spec), "-n", str(n)]
    resume += ["--out", str(out), "--shard-size", "4", "--backend", "inprocess", "--resume"]
    assert main(resume) == 0
    whole = tmp_path / "whole"
    generate("pick_place", spec, n, whole, backend="inprocess", shard_size=4, progress=False)
    assert_same_dataset(whole, out)
    summary = generate(
        "pick_place", spec, n, out, backend="inprocess", shard_size=4, resume=True, progress=False
    )
    assert summary.attempted == 0 and summary.already_done == n


def test_stored_failure_replays_exactly_from_its_onset_state(reference: tuple[Path, Any]) -> None:
    env = make_env("pick_place")
    with open_dataset(reference[0]) as dataset:
        drops = [e for e in dataset if e.label.failure_type == "test_drop"]
    assert drops
    for episode in drops:
        onset = episode.label.onset_step
        obs = env.set_state(episode.states[onset], steps=onset)
        np.testing.assert_array_equal(obs["state"], episode.obs["state"][onset])
        for t in range(onset, episode.length):  # demo-level: the stored actions are what ran
            if t > onset:
                np.testing.assert_array_equal(env.get_state(), episode.states[t])
            env.step(episode.actions[t])
        np.testing.assert_array_equal(env.get_state(), episode.final_state)


def test_run_perturbed_episode_takes_explicit_parameters() -> None:
    nominal = run_perturbed_episode("pick_place", None, seed=3, index=1)
    assert nominal.label.success and nominal.label.perturbation == {}
    dropped = run_perturbed_episode("pick_place", DropGrasp(after=12), seed=3, index=1)
    assert dropped.label.perturbation == {"kind": "test_drop", "after": 12}
    assert dropped.label.onset_step == 12 and dropped.label.seed == nominal.label.seed
    np.testing.assert_array_equal(dropped.states[:12], nominal.states[:12])
    heavy = run_perturbed_episode("pick_place", HeavyObject(scale=2.0), seed=3, index=1)
    again = run_perturbed_episode("pick_place", None, seed=3, index=1)
    np.testing.assert_array_equal(again.states, nominal.states)  # the mass edit was undone
    assert heavy.label.onset_step == 0


def bad_spec_file(tmp_path: Path, case: str) -> Path:
    if case == "malformed":
        path = tmp_path / "bad.yaml"
        path.write_text("task: [pick_place\nperturbations: {")
        return path
    changes = {
        "unknown perturbation": {"perturbations": [{"kind": "no_such_fault"}]},
        "out of range": {"perturbations": [{"kind": "test_drop", "params": {"after": [0, 999]}}]},
        "other task": {"task": "push"},
        "policy without --policy": {
            "source": "policy",
            "perturbations": [{"kind": "test_heavy"}],
        },
    }[case]
    return write_spec(tmp_path, **changes)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown perturbation", "no_such_fault"),
        ("out of range", "outside its allowed range"),
        ("malformed", "not valid YAML/JSON"),
        ("other task", "for task 'push'"),
        ("policy without --policy", "--policy"),
    ],
)
def test_cli_bad_spec_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    spec = bad_spec_file(tmp_path, case)
    before = sorted(tmp_path.rglob("*"))
    out = tmp_path / "out"
    args = ["generate", "--task", "pick_place", "--spec", str(spec), "-n", "2", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before


def test_cli_unsupported_perturbation_names_kind_and_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, task="push", perturbations=[{"kind": "test_drop"}])
    out = tmp_path / "out"
    args = ["generate", "--task", "push", "--spec", str(spec), "-n", "2", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'test_drop'" in err and "'push'" in err
    assert not out.exists()


def test_cli_existing_out_needs_resume_or_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    base = ["generate", "--task", "pick_place", "--spec", str(spec), "-n", "3", "--out", str(out)]
    assert main([*base, "--backend", "inprocess"]) == 0
    capsys.readouterr()
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    for extra, message in (
        ([], "--resume"),
        (["--resume", "--seed", "1"], "another seed"),
        (["--resume", "--overwrite"], "not both"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    assert main([*base, "--backend", "inprocess", "--overwrite", "--seed", "1"]) == 0
    with open_dataset(out) as dataset:
        assert dataset.info.extra["seed"] == 1
