"""robofail calibrate / evaluate from the command line: outputs, JSON contract, bad input."""

import json
import subprocess
import sys

import pytest

from robofail.monitor.artifact import METHOD_NAMES
from robofail.monitor.evaluate import METRIC_KEYS
from tests.monitor.reach_data import record


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robofail.cli", *map(str, args)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reach_cli")
    record(folder / "calib.h5", 120, seed=0)
    record(folder / "fail.h5", 20, seed=7000, failing=True)
    return folder


@pytest.fixture(scope="module")
def calibrated(data):
    out = data / "calib"
    result = run_cli(
        "calibrate", "--rollouts", data / "calib.h5",
        "--val-failures", f"{data / 'fail.h5'}:failure",
        "--alpha", "0.1", "--training-steps", "100", "--out", out,
        "--validation-fraction", "0.15",  # 120 rollouts: keep FIPER-OR's alpha/2 in reach
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "robofail" in result.stdout
    return out


def test_evaluate_writes_the_stable_json_and_plots(data, calibrated):
    metrics, plots = data / "m.json", data / "plots"
    result = run_cli(
        "evaluate", "--monitor", calibrated, "--rollouts", data / "calib.h5", data / "fail.h5",
        "--json", metrics, "--plots", plots,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(metrics.read_text())
    assert payload["alpha"] == 0.1
    assert list(payload["methods"]) == list(METHOD_NAMES)
    for values in payload["methods"].values():
        assert set(METRIC_KEYS) <= set(values)
        assert values["n_failure"] == 20 and values["n_success"] == 120
    assert (plots / "roc.png").stat().st_size > 1000
    assert (plots / "traces_robofail.png").stat().st_size > 1000


def test_evaluate_one_method(data, calibrated):
    result = run_cli(
        "evaluate", "--monitor", calibrated, "--rollouts", data / "fail.h5", "--methods", "rnd,ace"
    )
    assert result.returncode == 0, result.stderr
    assert "rnd" in result.stdout and "stac" not in result.stdout


def _one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_input_gives_one_line_and_exit_2(data, calibrated, tmp_path):
    calib = data / "calib.h5"
    _one_line_error(
        run_cli("calibrate", "--rollouts", calib, "--alpha", "1.5", "--out", tmp_path / "a"),
        "[1e-09, 1)",
    )
    _one_line_error(
        run_cli("calibrate", "--rollouts", calib, "--alpha", "0.001", "--out", tmp_path / "b"),
        "record at least",
    )
    _one_line_error(run_cli("calibrate", "--rollouts", calib, "--out", calibrated), "--overwrite")
    _one_line_error(
        run_cli("calibrate", "--rollouts", tmp_path / "nope.h5", "--out", tmp_path / "c"),
        "no such dataset",
    )
    _one_line_error(
        run_cli("evaluate", "--monitor", tmp_path, "--rollouts", calib), "calibration artifact"
    )
    _one_line_error(
        run_cli("evaluate", "--monitor", calibrated, "--rollouts", calib, "--methods", "magic"),
        "unknown method",
    )
    _one_line_error(
        run_cli("evaluate", "--monitor", calibrated, "--rollouts", f"{calib}:nofilter"),
        "no filter 'nofilter'",
    )
    for leftover in ("a", "b", "c"):
        assert not (tmp_path / leftover).exists()


def test_rollouts_without_monitor_inputs_are_refused(tmp_path):
    demos = tmp_path / "demos.h5"
    assert run_cli("demos", "--task", "push", "-n", "2", "--out", demos).returncode == 0
    _one_line_error(
        run_cli("calibrate", "--rollouts", demos, "--out", tmp_path / "c"), "embeddings"
    )
