"""The conformal threshold: the right order statistic, an error when n is too small, and the
promised coverage on exchangeable data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robofail.errors import InvalidInputError
from robofail.monitor.conformal import (
    conformal_rank,
    conformal_threshold,
    min_calibration_episodes,
)


def test_rank_matches_the_formula():
    assert conformal_rank(19, 0.05) == 19
    assert conformal_rank(100, 0.05) == 96
    assert conformal_rank(36, 0.05) == 36  # the prototype's 34th-of-36 was not conservative
    assert min_calibration_episodes(0.05) == 19
    assert min_calibration_episodes(0.1) == 9


def test_threshold_is_the_kth_smallest():
    values = np.arange(100, 0, -1, dtype=float)  # 100 .. 1
    assert conformal_threshold(values, 0.05) == 96.0


def test_too_few_episodes_says_how_many_are_needed():
    with pytest.raises(InvalidInputError, match="at least 19"):
        conformal_threshold(np.ones(18), 0.05)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 2, "0.05", float("nan")])
def test_alpha_outside_the_open_unit_interval_is_refused(alpha):
    with pytest.raises(InvalidInputError, match="alpha"):
        conformal_threshold(np.ones(100), alpha)


def test_non_finite_values_are_refused():
    with pytest.raises(InvalidInputError, match="finite"):
        conformal_threshold(np.array([1.0, np.nan] * 50), 0.1)


def test_coverage_on_exchangeable_data():
    """P(new value > threshold) <= alpha, and close to it (the bound is tight up to 1/(n+1))."""
    rng = np.random.default_rng(0)
    n, alpha, trials = 50, 0.1, 4000
    data = rng.gamma(2.0, size=(trials, n + 1))
    exceed = [data[i, n] > conformal_threshold(data[i, :n], alpha) for i in range(trials)]
    rate = float(np.mean(exceed))
    assert rate <= alpha + 0.015
    assert rate >= alpha - 1 / (n + 1) - 0.015


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300),
    st.floats(0.001, 0.999),
)
def test_threshold_is_a_value_of_the_set_or_an_error(values, alpha):
    arr = np.array(values)
    k = conformal_rank(len(arr), alpha)
    if k > len(arr):
        with pytest.raises(InvalidInputError):
            conformal_threshold(arr, alpha)
    else:
        threshold = conformal_threshold(arr, alpha)
        assert threshold in arr
        assert np.sum(arr <= threshold) >= k


def test_training_conditional_rank_bounds_the_false_alarm_rate_with_probability_1_minus_delta():
    """Over many calibration draws, the realised false-alarm rate of the delta-threshold exceeds
    alpha in at most about delta of them; the marginal threshold exceeds it far more often."""
    rng = np.random.default_rng(1)
    n, alpha, delta, draws = 150, 0.05, 0.1, 3000
    k_pac, k_marginal = conformal_rank(n, alpha, delta), conformal_rank(n, alpha)
    assert k_marginal < k_pac <= n
    # uniform scores: the false-alarm rate of the k-th smallest value t is 1 - t
    calibration = np.sort(rng.uniform(size=(draws, n)), axis=1)
    pac_rates = 1.0 - calibration[:, k_pac - 1]
    marginal_rates = 1.0 - calibration[:, k_marginal - 1]
    assert np.mean(pac_rates > alpha) <= delta + 0.02
    assert np.mean(marginal_rates > alpha) > 0.3


def test_training_conditional_minimum_episodes():
    assert min_calibration_episodes(0.05, 0.1) == 45  # (0.95)^45 < 0.1 <= (0.95)^44
    with pytest.raises(InvalidInputError, match=r"delta=0\.1"):
        conformal_threshold(np.ones(40), 0.05, 0.1)


def _table(rng: np.random.Generator, n: int, shift: float):
    """n episodes of 10 inferences with two raw scores; ``shift`` raises both (a failure)."""
    from robofail.monitor.calibrate import ScoreTable
    from robofail.monitor.episodes import MonitoredEpisode

    episodes = [
        MonitoredEpisode(
            name=f"e{i}",
            embeddings=np.zeros((10, 1), np.float32),
            chunks=np.zeros((10, 2, 1, 1), np.float32),
            inference_steps=np.arange(10) * 4,
            length=40,
            success=shift == 0,
            nominal=shift == 0,
            failure_step=-1 if shift == 0 else 40,
            failure_type="none" if shift == 0 else "f",
            family="nominal",
        )
        for i in range(n)
    ]
    table = ScoreTable(episodes)
    for name in ("rnd", "ace"):
        table.raw[name] = [rng.gamma(4.0, 1.0, 10) + shift for _ in episodes]
    return table


def test_and_shaped_joint_statistic_spends_alpha_where_fiper_and_does_not():
    """robofail's AND-shaped statistic (alarm when both scores exceed) gets one conformal
    quantile: its false-alarm rate on fresh successes sits at alpha, where FIPER's AND (each
    score at alpha) stays far below it, and it catches more of a shift seen by both scores."""
    from robofail.monitor.calibrate import _Candidate, _rule, method_outcomes

    rng = np.random.default_rng(0)
    fit, threshold = _table(rng, 200, 0.0), _table(rng, 400, 0.0)
    fresh, shifted = _table(rng, 2000, 0.0), _table(rng, 500, 3.0)
    alpha = 0.1
    joint_all = _Candidate(("rnd", "ace"), (1, 1), "constant", "joint_all", (1.0, 1.0))
    fiper_and = _Candidate(("rnd", "ace"), (1, 1), "constant", "and")
    rates = {}
    for name, candidate in (("joint_all", joint_all), ("and", fiper_and)):
        rule = _rule(name, candidate, fit, threshold, alpha, None)
        assert rule.combine == "all"
        false_alarms = np.mean([o.flagged for o in method_outcomes(rule, fresh)])
        caught = np.mean([o.flagged for o in method_outcomes(rule, shifted)])
        rates[name] = (false_alarms, caught)
    assert abs(rates["joint_all"][0] - alpha) < 0.03
    assert rates["and"][0] < alpha / 2
    assert rates["joint_all"][1] > rates["and"][1] + 0.05
