import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def sweep_files(tmp_path_factory: pytest.TempPathFactory):
    """Small valid files (rollouts, a calibration artifact, a policy, a recovery ONNX...) and
    damaged copies of them, built on first use: ``benchmarks/bad_inputs.py``'s Fixtures, shared
    by the hardening tests (bad inputs, untrusted artifacts, fuzzing)."""
    from benchmarks.bad_inputs import Fixtures

    return Fixtures(tmp_path_factory.mktemp("sweep_files"))
