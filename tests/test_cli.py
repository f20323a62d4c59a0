"""The `robofail` command: verbs work on real files, and bad input gives one line and status 2."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from robofail.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robofail.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "pick_place_demos.h5"
    result = run_cli(
        "demos", "--task", "pick_place", "-n", "4", "--out", str(out), "--noise", "0.1"
    )
    assert result.returncode == 0, result.stderr
    assert "success rate" in result.stdout and "4 episodes" in result.stdout
    return out


def test_help_lists_the_verbs():
    result = run_cli("--help")
    assert result.returncode == 0
    for verb in ("tasks", "demos", "inspect"):
        assert verb in result.stdout


def test_every_verb_help_shows_an_example(capsys):
    import argparse

    from robofail.cli import build_parser

    (subparsers,) = [
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    for name in subparsers.choices:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text.lower() and f"robofail {name}" in text.split("example")[-1], (
            f"robofail {name} --help has no example"
        )


def test_tasks_lists_names_with_obs_and_actions(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("pick_place", "push", "peg_insert", "robofail/PickPlace-v0", "ee_x", "grip"):
        assert name in out


def test_demos_file_reads_back_with_plain_h5py(demos_file):
    with h5py.File(demos_file, "r") as f:
        demos = sorted(f["data"].keys())
        assert demos == [f"demo_{i}" for i in range(4)]
        total = 0
        for name in demos:
            demo = f["data"][name]
            steps = int(demo.attrs["num_samples"])
            total += steps
            assert demo["obs/state"].shape[0] == steps and demo["obs/state"].dtype == np.float32
            assert demo["actions"].shape == (steps, 5)
            for key in ("rewards", "dones", "states", "phases"):
                assert demo[key].shape[0] == steps
            assert demo["states"].dtype == np.float64
            assert isinstance(demo.attrs["success"], (bool, np.bool_))
        assert int(f["data"].attrs["total"]) == total
        success = {n.decode() for n in f["mask/success"][()]}
        failure = {n.decode() for n in f["mask/failure"][()]}
        assert success | failure == set(demos) and not success & failure
        assert "pick_place" in f["data"].attrs["env_args"].decode()


def test_same_seed_gives_the_same_dataset_whatever_the_workers(tmp_path, demos_file):
    out = tmp_path / "again.h5"
    args = ["demos", "--task", "pick_place", "-n", "4", "--noise", "0.1", "--workers", "2"]
    assert run_cli(*args, "--out", str(out)).returncode == 0
    with h5py.File(demos_file, "r") as a, h5py.File(out, "r") as b:
        for name in a["data"]:
            for key in ("actions", "states", "obs/state"):
                np.testing.assert_array_equal(a["data"][name][key][()], b["data"][name][key][()])


def test_inspect_summarises(capsys, demos_file):
    assert main(["inspect", str(demos_file), "--lengths"]) == 0
    out = capsys.readouterr().out
    assert "4 episodes" in out and "success rate" in out and "length: mean" in out


def test_inspect_takes_a_filter(capsys, demos_file):
    with h5py.File(demos_file, "r") as f:
        counts = {name: len(f["mask"][name][()]) for name in ("success", "failure")}
    for name, n in counts.items():
        assert main(["inspect", f"{demos_file}:{name}"]) == 0
        out = capsys.readouterr().out
        assert f"{n} episodes" in out
        if n:
            successes = n if name == "success" else 0
            assert f"({successes}/{n})" in out
    assert sum(counts.values()) == 4


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_task_lists_valid_names(tmp_path):
    result = run_cli("demos", "--task", "stack", "-n", "2", "--out", str(tmp_path / "x.h5"))
    assert_one_line_error(result, "unknown task 'stack'", "pick_place, push, peg_insert")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("count", ["0", "-3", "many"])
def test_bad_episode_count(tmp_path, count):
    result = run_cli("demos", "--task", "push", "-n", count, "--out", str(tmp_path / "x.h5"))
    assert_one_line_error(result, "-n")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_path(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("keep me")
    result = run_cli("demos", "--task", "pick_place", "-n", "1", "--out", str(blocker / "d.h5"))
    assert_one_line_error(result, "is a file")
    assert blocker.read_text() == "keep me"


def test_existing_output_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "d.h5"
    out.write_bytes(b"precious")
    result = run_cli("demos", "--task", "pick_place", "-n", "1", "--out", str(out))
    assert_one_line_error(result, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"


def test_corrupt_hdf5_names_the_file(tmp_path, demos_file):
    broken = tmp_path / "broken.h5"
    data = demos_file.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    result = run_cli("inspect", str(broken))
    assert_one_line_error(result, "broken.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_one_line_error(run_cli("inspect", str(garbage)), "garbage.h5")


def test_worker_and_thread_limits_follow_the_cpus_this_process_may_use(monkeypatch):
    import argparse
    import os

    from robofail import cli_args
    from robofail.parallel import max_local_workers

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this OS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # e.g. `taskset -c 0`
    assert max_local_workers() == 2
    assert cli_args.threads("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="may use 1 CPUs"):
        cli_args.threads("2")
