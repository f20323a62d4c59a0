"""The split that chooses robofail's settings: large enough to choose by, without costing the
threshold split the alpha shares it needs."""

import numpy as np

from robofail.cli import build_parser
from robofail.monitor.calibrate import CalibrationSettings, _candidates, split_successes
from robofail.monitor.episodes import MonitoredEpisode


def _successes(n: int) -> list[MonitoredEpisode]:
    return [
        MonitoredEpisode(
            name=f"e{i}", embeddings=np.zeros((3, 1), np.float32),
            chunks=np.zeros((3, 2, 1, 1), np.float32), inference_steps=np.arange(3) * 4,
            length=12, success=True, nominal=True, failure_step=-1, failure_type="none",
            family="nominal",
        )
        for i in range(n)
    ]  # fmt: skip


def test_default_split_is_30_40_30_and_disjoint():
    episodes = _successes(554)
    fit, threshold, validation = split_successes(episodes, CalibrationSettings())
    assert (len(fit), len(threshold), len(validation)) == (166, 222, 166)
    names = [e.name for e in fit + threshold + validation]
    assert len(set(names)) == len(names) == 554


def test_default_split_keeps_the_alpha_shares_of_the_bench_data():
    """With the bench's ~550-620 calibration successes the threshold split still admits alpha/4
    at alpha 0.05 and alpha/8 at alpha 0.1 (delta 0.1), as the 0.15 validation share did."""
    for alpha, lowest in ((0.05, 0.25), (0.1, 0.125)):
        settings = CalibrationSettings(alpha=alpha)
        _, threshold, _ = split_successes(_successes(554), settings)
        levels = {
            c.level for c in _candidates("robofail", settings, len(threshold), {"rnd", "ace"})
        }
        assert min(levels) == lowest


def test_cli_default_matches_the_library_default():
    args = build_parser().parse_args(["calibrate", "--rollouts", "x.h5", "--out", "c"])
    assert args.validation_fraction == CalibrationSettings().validation_fraction == 0.3
