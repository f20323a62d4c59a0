"""The benches reuse what they made only while its inputs are unchanged.
``benchmarks/bench_monitor_quality.py`` calibrates once and judges every test set with that
monitor: a calibration is reused only while its datasets, settings and policy are the ones it
was made from and its artifact has not been replaced since. ``benchmarks/bench_closed_loop.py``
makes the recovery data and policies again when the monitor changed. Runs no benchmark."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from benchmarks.bench_closed_loop import MONITOR_RECORD, drop_if_monitor_changed
from benchmarks.bench_monitor_quality import (
    CALIBRATION_ROLLOUTS,
    bench_record,
    calibration_inputs,
    reused_calibration,
)
from robofail.monitor.artifact import CALIBRATION_FILE
from robofail.monitor.calibrate import CalibrationSettings

VALIDATION = ("val_failures",)


def task_folder(tmp_path: Path) -> Path:
    """A bench task folder: the calibration files and one validation dataset folder."""
    folder = tmp_path / "pick_place"
    (folder / "val_failures").mkdir(parents=True)
    (folder / "val_failures" / "shard_00000.h5").write_bytes(b"x" * 10)
    for name in CALIBRATION_ROLLOUTS:
        (folder / name).write_bytes(b"y" * 20)
    return folder


def calibrated(folder: Path, inputs: dict) -> Path:
    """An artifact folder with its bench record, as ``run_task`` leaves them."""
    out = folder / "calib_alpha0.1"
    out.mkdir()
    written = json.dumps({"kind": "calibration", "alpha": 0.1}).encode()
    (out / CALIBRATION_FILE).write_bytes(written)
    record = {"inputs": inputs, "seconds": 12.5, "sha256": hashlib.sha256(written).hexdigest()}
    bench_record(out).write_text(json.dumps(record))
    return out


def test_same_inputs_reuse_the_calibration(tmp_path: Path) -> None:
    folder = task_folder(tmp_path)
    inputs = calibration_inputs(folder, VALIDATION, CalibrationSettings(alpha=0.1), "abc")
    out = calibrated(folder, inputs)
    calibration, seconds = reused_calibration(out, inputs)
    assert calibration == {"kind": "calibration", "alpha": 0.1}
    assert seconds == 12.5
    assert bench_record(out).parent == folder  # beside the artifact, never inside it


def test_changed_data_settings_or_policy_recalibrate(tmp_path: Path) -> None:
    folder = task_folder(tmp_path)
    settings = CalibrationSettings(alpha=0.1)
    out = calibrated(folder, calibration_inputs(folder, VALIDATION, settings, "abc"))

    def reused(settings: CalibrationSettings, fingerprint: str) -> bool:
        inputs = calibration_inputs(folder, VALIDATION, settings, fingerprint)
        return reused_calibration(out, inputs)[0] is not None

    assert reused(settings, "abc")
    assert not reused(settings, "def")  # another policy
    assert not reused(CalibrationSettings(alpha=0.1, delta=0.01), "abc")
    (folder / "calib_more.h5").write_bytes(b"y" * 21)  # re-recorded rollouts
    assert not reused(settings, "abc")


def test_a_replaced_or_unrecorded_artifact_is_calibrated_again(tmp_path: Path) -> None:
    folder = task_folder(tmp_path)
    inputs = calibration_inputs(folder, VALIDATION, CalibrationSettings(alpha=0.1), "abc")
    out = calibrated(folder, inputs)
    (out / CALIBRATION_FILE).write_text(json.dumps({"kind": "calibration", "alpha": 0.2}))
    assert reused_calibration(out, inputs) == (None, None)
    bench_record(out).unlink()
    assert reused_calibration(out, inputs) == (None, None)


def test_recovery_outputs_are_made_again_after_the_monitor_changed(tmp_path: Path) -> None:
    monitor, out = tmp_path / "calib_alpha0.1", tmp_path / "push"
    monitor.mkdir()
    out.mkdir()
    (monitor / CALIBRATION_FILE).write_text('{"alpha": 0.1}')
    made = ["recovery.h5", "recovery_obs.h5", "dagger1.h5", "recovery.onnx"]
    for name in made:
        (out / name).write_bytes(b"x")
    (out / "recovery").mkdir()
    (out / "recovery" / "model.safetensors").write_bytes(b"x")
    (out / "obs_failures").mkdir()  # generated failures: the monitor only watched them

    drop_if_monitor_changed(out, monitor)  # no record: unknown monitor, made again
    assert sorted(p.name for p in out.iterdir()) == [MONITOR_RECORD, "obs_failures"]

    for name in made:
        (out / name).write_bytes(b"x")
    drop_if_monitor_changed(out, monitor)  # same monitor: kept
    assert all((out / name).exists() for name in made)

    (monitor / CALIBRATION_FILE).write_text('{"alpha": 0.1, "recalibrated": true}')
    drop_if_monitor_changed(out, monitor)
    assert not any((out / name).exists() for name in made)
    assert (out / "obs_failures").is_dir()
