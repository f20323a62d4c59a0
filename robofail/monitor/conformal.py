"""Split conformal thresholds on per-episode statistics.

Scores inside one episode are not exchangeable; episodes are. So calibration uses one number per
successful calibration episode (the maximum of the windowed score over the episode) and the
finite-sample split-conformal quantile: with n calibration values and miscoverage ``alpha``, the
threshold is the k-th smallest value, ``k = ceil((n + 1) (1 - alpha))``. A new successful episode
then exceeds it with probability at most ``alpha`` (exchangeability). ``k > n`` means there are
not enough calibration episodes for that ``alpha``: an error, never a silent threshold.

That bound is *marginal*: averaged over calibration sets. The false-alarm rate of one calibrated
threshold is itself random, Beta(n + 1 - k, k) distributed, and with n ~ 100-200 it often lands
a few points above alpha. With ``delta`` the rank is raised to the smallest k whose
Beta(n + 1 - k, k) exceeds alpha with probability at most delta: *training-conditional*
validity, P(false-alarm rate > alpha) <= delta over the draw of the calibration episodes.
"""

from __future__ import annotations

import math

import numpy as np

from robofail.errors import InvalidInputError

MIN_ALPHA = 1e-9
"""Smallest false-alarm bound robofail calibrates: below it, no feasible number of rollouts
(billions) sets a threshold."""


def conformal_rank(n: int, alpha: float, delta: float | None = None) -> int:
    """The rank (1-based) of the threshold among n values: k = ceil((n + 1)(1 - alpha)), or with
    ``delta`` the smallest k >= that with P(Beta(n + 1 - k, k) > alpha) <= delta (n + 1 if
    none)."""
    check_alpha(alpha)
    # the small epsilon keeps e.g. (19 + 1) * 0.95 = 19.000000000000004 at 19
    k = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)
    if delta is None or k > n:
        return k
    check_delta(delta)
    from scipy.stats import beta

    ranks = np.arange(k, n + 1)
    exceed = beta.sf(alpha, n + 1 - ranks, ranks)
    ok = np.flatnonzero(exceed <= delta)
    return int(ranks[ok[0]]) if len(ok) else n + 1


def false_alarm_rate(n: int, k: int) -> float:
    """Expected false-alarm rate of the k-th smallest of n calibration values: (n+1-k)/(n+1)."""
    return (n + 1 - k) / (n + 1)


def min_calibration_episodes(alpha: float, delta: float | None = None) -> int:
    """Smallest n for which ``conformal_rank(n, alpha, delta) <= n``: ceil(1/alpha) - 1, or
    with ``delta`` the smallest n with (1 - alpha)^n <= delta."""
    check_alpha(alpha)
    if delta is None:
        return max(1, math.ceil(1.0 / alpha - 1e-9) - 1)
    check_delta(delta)
    return max(1, math.ceil(math.log(delta) / math.log1p(-alpha) - 1e-9))


def check_delta(delta: float) -> None:
    """Raise unless 0 < delta < 1."""
    if not isinstance(delta, (int, float)) or not 0.0 < float(delta) < 1.0:
        raise InvalidInputError(f"delta must be a number in (0, 1), e.g. 0.1; got {delta!r}")


def check_alpha(alpha: float) -> None:
    """Raise unless MIN_ALPHA <= alpha < 1."""
    if not isinstance(alpha, (int, float)) or not MIN_ALPHA <= float(alpha) < 1.0:
        raise InvalidInputError(
            f"alpha must be a number in [{MIN_ALPHA:g}, 1), e.g. 0.05; got {alpha!r}"
        )


def conformal_threshold(values: np.ndarray, alpha: float, delta: float | None = None) -> float:
    """The split-conformal threshold of per-episode statistics ``values`` (n,); see
    :func:`conformal_rank` for ``delta``.

    Raises:
        InvalidInputError: values that are not a 1-D array of finite numbers, or too few values
            for ``alpha`` (the message says how many are needed).
    """
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "calibration statistics must be numbers, one per episode (n,)"
        ) from None
    if values.ndim != 1:
        raise InvalidInputError(
            f"calibration statistics must be one number per episode, shape (n,); got shape "
            f"{values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise InvalidInputError("calibration statistics must be finite numbers")
    n = len(values)
    k = conformal_rank(n, alpha, delta)
    if k > n:
        need = min_calibration_episodes(alpha, delta)
        what = "" if delta is None else f" with delta={delta}"
        raise InvalidInputError(
            f"{n} calibration episodes are too few for alpha={alpha}{what}: the conformal "
            f"quantile needs at least {need}; add successful rollouts or raise alpha"
        )
    return float(np.partition(values, k - 1)[k - 1])
