"""Split conformal thresholds on per-episode statistics.

Scores inside one episode are not exchangeable; episodes are. So calibration uses one number per
successful calibration episode (the maximum of the windowed score over the episode) and the
finite-sample split-conformal quantile: with n calibration values and miscoverage ``alpha``, the
threshold is the k-th smallest value, ``k = ceil((n + 1) (1 - alpha))``. A new successful episode
then exceeds it with probability at most ``alpha`` (exchangeability). ``k > n`` means there are
not enough calibration episodes for that ``alpha``: an error, never a silent threshold.
"""

from __future__ import annotations

import math

import numpy as np

from robofail.errors import InvalidInputError


def conformal_rank(n: int, alpha: float) -> int:
    """k = ceil((n + 1)(1 - alpha)): the rank (1-based) of the threshold among n values."""
    check_alpha(alpha)
    # the small epsilon keeps e.g. (19 + 1) * 0.95 = 19.000000000000004 at 19
    return math.ceil((n + 1) * (1.0 - alpha) - 1e-9)


def min_calibration_episodes(alpha: float) -> int:
    """Smallest n for which ``conformal_rank(n, alpha) <= n``: ceil(1/alpha) - 1."""
    check_alpha(alpha)
    return max(1, math.ceil(1.0 / alpha - 1e-9) - 1)


def check_alpha(alpha: float) -> None:
    """Raise unless 0 < alpha < 1."""
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        raise InvalidInputError(f"alpha must be a number in (0, 1), e.g. 0.05; got {alpha!r}")


def conformal_threshold(values: np.ndarray, alpha: float) -> float:
    """The split-conformal threshold of per-episode statistics ``values`` (n,).

    Raises:
        InvalidInputError: non-finite values, or too few values for ``alpha`` (the message says
            how many are needed).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise InvalidInputError("calibration statistics must be finite numbers")
    n = len(values)
    k = conformal_rank(n, alpha)
    if k > n:
        need = min_calibration_episodes(alpha)
        raise InvalidInputError(
            f"{n} calibration episodes are too few for alpha={alpha}: the conformal quantile "
            f"needs at least {need} (k = ceil((n + 1)(1 - alpha)) must be <= n); add successful "
            f"rollouts or raise alpha"
        )
    return float(np.partition(values, k - 1)[k - 1])
