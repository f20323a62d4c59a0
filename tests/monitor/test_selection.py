"""The split that chooses robofail's settings: large enough to choose by, without costing the
threshold split the alpha shares it needs."""

import numpy as np

from robofail.cli import build_parser
from robofail.monitor.calibrate import (
    CalibrationSettings,
    _candidates,
    expected_tpr,
    split_successes,
)
from robofail.monitor.conformal import conformal_rank
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


def test_expected_tpr_matches_redrawing_the_threshold_split():
    """The TPR a rule is chosen by is the one it will have on average once n fresh successes set
    its threshold: checked against drawing those n successes again and again."""
    rng = np.random.default_rng(0)
    successes = rng.normal(size=150)
    failures = rng.normal(loc=2.0, size=80)
    n = 200
    for alpha, delta in ((0.05, 0.1), (0.1, None), (0.0125, 0.1)):
        k = conformal_rank(n, alpha, delta)
        draws = np.sort(rng.choice(successes, size=(20000, n)), axis=1)[:, k - 1]
        simulated = np.mean(failures[None, :] > draws[:, None])
        assert abs(expected_tpr(successes, failures, n, k) - simulated) < 0.003


def test_expected_tpr_falls_with_the_rank_and_is_zero_beyond_the_split():
    """A higher threshold rank never catches more; a rank the threshold split cannot reach
    (the rule never alarms) catches nothing."""
    rng = np.random.default_rng(1)
    successes, failures = rng.normal(size=60), rng.normal(loc=1.5, size=60)
    n = 300
    tprs = [expected_tpr(successes, failures, n, k) for k in range(250, n + 2)]
    assert np.all(np.diff(tprs) <= 1e-12)
    assert tprs[0] > 0.5 and tprs[-1] == 0.0
