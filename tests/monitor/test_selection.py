"""The split that chooses robofail's settings: large enough to choose by, without costing the
threshold split the alpha shares it needs."""

import numpy as np

from robofail.cli import build_parser
from robofail.monitor.calibrate import (
    INFINITE_WEIGHT,
    CalibrationSettings,
    ScoreTable,
    _candidates,
    _select,
    expected_tpr,
    method_outcomes,
    split_successes,
)
from robofail.monitor.conformal import conformal_rank
from robofail.monitor.episodes import MonitoredEpisode
from robofail.monitor.metrics import summarise


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


def test_alpha_shares_are_tried_only_where_validation_can_judge_them():
    """With the bench's ~550 calibration successes, robofail may spend alpha/2 at alpha 0.05 and
    alpha/4 at alpha 0.1 (delta 0.1). The next share down puts the threshold at the top of the
    threshold split, above every validation success but < 1 expected, where the expected TPR
    cannot be judged: it is tried only when the validation split is large enough."""
    for alpha, lowest, below in ((0.05, 0.5, 0.25), (0.1, 0.25, 0.125)):
        settings = CalibrationSettings(alpha=alpha)
        _, threshold, validation = split_successes(_successes(554), settings)
        n = len(threshold)
        levels = {
            m: {c.level for c in _candidates("robofail", settings, n, {"rnd", "ace"}, m)}
            for m in (len(validation), 4 * n, 0)
        }
        assert min(levels[len(validation)]) == lowest
        assert conformal_rank(n, alpha * below, settings.delta) == n  # the split's maximum
        assert below in levels[4 * n]
        assert levels[0] == {1.0}


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


def _scored(n: int, failing: bool, rng: np.random.Generator) -> ScoreTable:
    """n synthetic episodes, one inference every 4 steps. Successes: 10 inferences, both scores
    standard normal. Failures run twice as long; "rnd" is raised by 1.5 from the start, "ace" by 20
    only from inference 12 on (after the successes' length)."""
    inferences = 20 if failing else 10
    episodes = [
        MonitoredEpisode(
            name=f"{'f' if failing else 's'}{i}", embeddings=np.zeros((inferences, 1), np.float32),
            chunks=np.zeros((inferences, 2, 1, 1), np.float32),
            inference_steps=np.arange(inferences) * 4, length=4 * inferences,
            success=not failing, nominal=not failing, failure_step=30 if failing else -1,
            failure_type="stuck" if failing else "none", family="test",
        )
        for i in range(n)
    ]  # fmt: skip
    table = ScoreTable(episodes)
    late = (np.arange(inferences) >= 12) * 20.0
    table.raw["rnd"] = [rng.normal(size=inferences) + 1.5 * failing for _ in episodes]
    table.raw["ace"] = [rng.normal(size=inferences) + late * failing for _ in episodes]
    return table


def test_selection_counts_only_alarms_before_the_length_cap():
    """A score that flags every failure, but only once it has outrun every success, is no
    monitor: a timeout would do as much. robofail chooses the score that flags failures while
    they still look like successes in length."""
    rng = np.random.default_rng(0)
    settings = CalibrationSettings(
        alpha=0.1, windows=(1,), styles=("constant",), alpha_levels=(1.0,),
        ace_weights=(0.0, 1.0, INFINITE_WEIGHT),
    )  # fmt: skip
    fit, threshold = _scored(60, False, rng), _scored(150, False, rng)
    validation = _scored(60, False, rng)
    failures = _scored(60, True, rng)
    for name in ("rnd", "ace"):
        validation.raw[name] += failures.raw[name]
    validation.episodes += failures.episodes
    cap = 40  # every success ends at step 40
    rule, record = _select("robofail", fit, threshold, validation, settings, True, cap)
    fresh = _scored(100, True, rng)
    caught = summarise(method_outcomes(rule, fresh, cap))["tpr"]
    assert record["weights"] == [1.0, 0.0]  # "ace" would catch every failure, all too late
    assert caught > 0.7  # ace alone: < 0.1 before the cap
    assert abs(record["validation"]["tpr_before_cap"] - caught) < 0.15
