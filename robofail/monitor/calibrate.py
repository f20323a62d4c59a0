"""Calibration: fit the score models, set split-conformal thresholds, pick settings on validation.

Inputs: successful rollouts of one policy (the monitor never needs failures to be *valid*) and,
optionally, validation failures (to *choose* settings; never the test failures).

1. The successes are shuffled (seeded) and split three ways: **fit** (score models, ACE cells,
   normalisers and threshold-band shapes), **threshold** (the conformal quantiles) and
   **validation** (choosing windows, threshold style, combination weights and the ACE variant).
2. Every method's thresholds come from the threshold split only, through one statistic per
   episode: with per-score normal forms z_j(t) = (S_j(t) - a_j(t)) / b_j(t) (constant style:
   a = 0, b = the fit split's median episode maximum; band style: a, b = mean and std of S_j at
   inference t over the fit split), the episode statistic is max_t max_j w_j z_j(t), its
   split-conformal quantile h gives tau_j(t) = a_j(t) + h b_j(t) / w_j, and the rule alarms when any
   S_j(t) > tau_j(t). A new successful episode alarms with probability <= alpha, whatever the
   weights, windows and style chosen on the other splits.

   - single scores (``rnd``, ``ace``, ``stac``, ``mahalanobis``, ``pca_kmeans``, ``logpzo``): one
     score, w = 1;
   - ``robofail``: an embedding score (RND, logpZO, Mahalanobis or PCA + k-means) and a chunk
     score (ACE or STAC) calibrated jointly as one statistic, with the pair, the windows and the
     chunk score's weight (0 and infinity included, so every single score is a candidate)
     chosen on validation: OR's recall at exactly alpha's bound. The statistic may also be
     AND-shaped, max_t min_j w_j z_j(t) (alarm when both scores exceed their thresholds): FIPER's
     AND with its whole false-alarm budget spent, where FIPER's per-score quantiles leave the
     joint rate far below alpha. Validation also chooses how much of alpha the rule spends
     (alpha, alpha/2, alpha/4 or alpha/8, where the threshold split is large enough): when
     failures are easy to see, a lower false-alarm rate costs no recall; a share is tried only
     where >= 2 validation successes are expected above its threshold, see
     :data:`MIN_VALIDATION_EXCEEDANCES`. Joint rules are
     compared by their validation TPR and their *known* conformal false-alarm rate
     (n + 1 - k) / (n + 1), which is exact, rather than by the few validation successes; among
     candidates within one standard error of the best, the simplest is chosen. A joint rule's
     validation TPR is the one it is *expected* to have once its threshold is set: the final
     threshold is the k-th smallest of the threshold split's n statistics, and its sampling
     distribution is computed with the validation successes standing in for the success
     population (:func:`expected_tpr`). The threshold split sets only the chosen rule's
     thresholds, so the choice cannot favour a lucky quantile;
   - ``fiper_or``: each score at alpha / 2, alarm if either exceeds;
   - ``fiper_and``: each score at alpha, alarm if both exceed (FIPER).

   Every method's validation TPR counts only alarms raised before the length cap (the threshold
   split's 95th-percentile episode length, stored as ``length_cap_steps``): a monitor is for
   acting before the failure, and a failing episode that runs past the length successes take
   gives a rule late chances to alarm that a timeout would give as well. Chosen on
   whole-episode TPR, robofail preferred rules that alarm late (on pick_place, 77 % of the
   development test failures caught before the cap against 98 % for the single scores).
3. The chosen settings and thresholds go to the artifact (:mod:`robofail.monitor.artifact`).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robofail import __version__
from robofail.errors import InvalidInputError
from robofail.folders import check_replaceable_folder, replace_folder, staging_folder
from robofail.monitor.ace import chunk_positions
from robofail.monitor.artifact import (
    ARTIFACT_KIND,
    CALIBRATION_FILE,
    SCHEMA_VERSION,
    file_sha256,
)
from robofail.monitor.conformal import (
    check_alpha,
    conformal_rank,
    conformal_threshold,
    false_alarm_rate,
    min_calibration_episodes,
)
from robofail.monitor.episodes import MonitoredEpisode, check_episodes
from robofail.monitor.metrics import inferences_before, outcome, roc_auc, summarise
from robofail.monitor.rules import NEVER, THRESHOLD_FLOOR, MethodRule, trace, windowed_sum
from robofail.monitor.scores import AceScore, OnnxScore, Score, StacScore

EMBEDDING_SCORES = ("rnd", "mahalanobis", "pca_kmeans", "logpzo")
LEARNED = ("rnd", "logpzo")
SINGLE_METHODS = ("rnd", "ace", "stac", "mahalanobis", "pca_kmeans", "logpzo")
INFINITE_WEIGHT = math.inf
BAND_MIN_EPISODES = 5
MIN_VALIDATION_EXCEEDANCES = 2.0
"""A share of alpha below 1 is tried only where at least this many validation successes are
expected above its conformal threshold, m (n + 1 - k) / (n + 1). Where fewer are, the threshold
is (nearly) the maximum of the threshold split, which usually lies above every validation
success, and :func:`expected_tpr`, which cannot put the threshold above them, overstates the
TPR: by +0.21 on average (RMSE 0.27-0.35) over the bench's candidates at k = n, against +0.02
(RMSE 0.07-0.10) with ~2 expected above (validation failures, thresholds from the threshold
split)."""


@dataclass(frozen=True)
class CalibrationSettings:
    """Knobs of :func:`calibrate`; the defaults are what ``robofail calibrate`` uses."""

    alpha: float = 0.05
    delta: float | None = 0.1
    """Training-conditional guarantee: P(false-alarm rate > alpha) <= delta over the draw of the
    calibration episodes (None: the marginal guarantee, E[false-alarm rate] <= alpha). The bound
    is per method and calibration: with 0.1, one method in ten may run above alpha. On the bench,
    Mahalanobis at pick_place alpha 0.1 does: 0.12 on 1,194 fresh nominal successes against 0.05
    on the validation successes; lower delta for a bound every method keeps."""
    seed: int = 0
    fit_fraction: float = 0.3
    validation_fraction: float = 0.3
    """Share of the successes for choosing settings. 0.3 rather than 0.15: the selection
    thresholds come from the validation successes, and at 0.15 (~90 episodes) the top of their
    distribution is so poorly known that a rule chosen for its validation TPR loses it on new
    data; compared on an inner split of the bench data (no test data), 0.3 gave robofail +0.026
    mean balanced accuracy and a gap to the best single score of -0.003 at worst (0.15:
    -0.035)."""
    windows: tuple[int, ...] = (1, 2, 3, 5)
    styles: tuple[str, ...] = ("constant", "band")
    ace_weights: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, INFINITE_WEIGHT)
    """robofail: weight of the chunk score (ACE or STAC) against the embedding score."""
    ace_cell_fractions: tuple[float, ...] = (0.01, 0.03, 0.1)
    ace_cumulative: tuple[bool, ...] = (True, False)
    default_window: int = 2
    alpha_levels: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    """robofail's rule may spend only this share of alpha on false alarms (chosen on validation;
    the bound alpha holds for every choice). A share is tried only where the threshold split is
    large enough for it and the validation successes can judge it
    (:data:`MIN_VALIDATION_EXCEEDANCES`)."""
    training_steps: int | None = None
    """Gradient steps of the learned score models (RND, logpZO); None: their defaults."""
    methods: tuple[str, ...] = (
        "robofail", "fiper_and", "fiper_or", *SINGLE_METHODS,
    )  # fmt: skip


@dataclass
class ScoreTable:
    """Raw per-inference scores of a group of episodes (a split, or an evaluation set), with
    windowed sums cached."""

    episodes: list[MonitoredEpisode]
    raw: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _windowed: dict[tuple[str, int], list[np.ndarray]] = field(default_factory=dict)

    def score(self, name: str, scorer: Score) -> None:
        self.raw[name] = [scorer.episode(e.embeddings, e.chunks) for e in self.episodes]
        for key in [k for k in self._windowed if k[0] == name]:
            del self._windowed[key]

    def windowed(self, name: str, window: int) -> list[np.ndarray]:
        key = (name, window)
        if key not in self._windowed:
            self._windowed[key] = [windowed_sum(r, window) for r in self.raw[name]]
        return self._windowed[key]


@dataclass(frozen=True)
class _Candidate:
    scores: tuple[str, ...]
    windows: tuple[int, ...]
    style: str
    combine: str
    """One statistic: "joint" (max over scores: alarm when any exceeds) or "joint_all" (min
    over scores: alarm when all exceed); per-score thresholds: "or" (alpha/m each), "and"
    (alpha each)."""
    weights: tuple[float, ...] = ()
    level: float = 1.0  # joint: the conformal quantile is taken at alpha * level

    @property
    def joint(self) -> bool:
        """Calibrated as one statistic (its false-alarm rate is known exactly)."""
        return self.combine in ("joint", "joint_all")

    @property
    def active(self) -> list[int]:
        """Indices of the scores a joint rule watches: the infinitely weighted ones if any,
        else those with a positive weight."""
        weights = self.weights or (1.0,) * len(self.scores)
        if INFINITE_WEIGHT in weights:
            return [j for j, w in enumerate(weights) if w == INFINITE_WEIGHT]
        return [j for j, w in enumerate(weights) if w > 0]


def _normal_form(
    split: ScoreTable, name: str, window: int, style: str
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) arrays by inference index (length 1 for the constant style) from the fit split."""
    series = split.windowed(name, window)
    if style == "constant":
        scale = float(np.median([s.max() for s in series]))
        return np.zeros(1), np.array([max(scale, THRESHOLD_FLOOR)])
    longest = max(len(s) for s in series)
    counts = np.zeros(longest)
    sums, squares = np.zeros(longest), np.zeros(longest)
    for s in series:
        counts[: len(s)] += 1
        sums[: len(s)] += s
        squares[: len(s)] += s * s
    usable = max(1, int(np.sum(counts >= min(BAND_MIN_EPISODES, len(series)))))
    mean = sums[:usable] / counts[:usable]
    std = np.sqrt(np.maximum(squares[:usable] / counts[:usable] - mean**2, 0.0))
    floor = max(0.1 * float(np.median(std)), 0.01 * float(np.abs(mean).max()), THRESHOLD_FLOOR)
    return mean, np.maximum(std, floor)


def _normal_forms(candidate: _Candidate, fit: ScoreTable) -> list[tuple[np.ndarray, np.ndarray]]:
    """(a, b) of each of the candidate's scores at its window and style, from ``fit``."""
    pairs = zip(candidate.scores, candidate.windows, strict=True)
    return [_normal_form(fit, name, window, candidate.style) for name, window in pairs]


def _at(band: np.ndarray, k: int) -> np.ndarray:
    return band[np.minimum(np.arange(k), len(band) - 1)]


def _statistic_maxima(
    split: ScoreTable, candidate: _Candidate, forms: list[tuple[np.ndarray, np.ndarray]],
    members: list[int],
) -> np.ndarray:  # fmt: skip
    """Per-episode max over t of the max (``joint_all``: the min) over ``members`` of
    w_j z_j(t); an infinite weight counts as 1 (the caller then passes only the infinitely
    weighted scores as members)."""
    reduce = np.min if candidate.combine == "joint_all" else np.max
    per_score = []
    for j in members:
        name, window = candidate.scores[j], candidate.windows[j]
        weight = candidate.weights[j] if candidate.weights else 1.0
        weight = 1.0 if weight == INFINITE_WEIGHT else weight
        a, b = forms[j]
        per_score.append(
            [weight * (s - _at(a, len(s))) / _at(b, len(s)) for s in split.windowed(name, window)]
        )
    return np.array([float(reduce(z, axis=0).max()) for z in zip(*per_score, strict=True)])


def _selection_quantile(values: np.ndarray, alpha: float, delta: float | None) -> float:
    """Stand-in for the conformal threshold while choosing AND / OR rules: the marginal
    conformal rank, clipped to the largest value when the set is too small for it."""
    del delta  # ranking candidates needs no training-conditional margin
    n = len(values)
    k = min(math.ceil((n + 1) * (1 - alpha)), n)
    return float(np.sort(values)[k - 1])


def expected_tpr(successes: np.ndarray, failures: np.ndarray, n: int, k: int) -> float:
    """Expected TPR of a rule that alarms when an episode's statistic exceeds a threshold set to
    the k-th smallest of n fresh success statistics (the split-conformal threshold).

    The threshold's sampling distribution is taken with ``successes`` standing in for the success
    population: with m sorted values v_(1..m), P(threshold <= v_(i)) = P(Binomial(n, i/m) >= k).
    The point estimate (one order statistic of the validation successes at the conformal
    level) instead ignores how much the threshold moves with the n episodes that set it, and
    at the training-conditional rank, or a small share of alpha, it sits at the very top of the
    validation successes where it is least reliable: rules chosen by it lost their validation
    recall on new data.

    Args:
        successes: (m,) per-episode statistics of validation successes, m >= 1.
        failures: (f,) per-episode statistics of validation failures.
        n: episodes in the threshold split.
        k: the threshold's rank among them (1-based; k > n never alarms).

    Returns:
        The expected share of ``failures`` above the threshold, in [0, 1].
    """
    from scipy.stats import binom

    if k > n or len(failures) == 0:
        return 0.0
    ordered = np.sort(np.asarray(successes, dtype=np.float64))
    m = len(ordered)
    below = binom.sf(k - 1, n, np.arange(1, m + 1) / m)  # P(threshold <= v_(i))
    mass = np.diff(below, prepend=0.0)
    caught = (np.asarray(failures)[None, :] > ordered[:, None]).mean(axis=1)
    return float(mass @ caught)


def _rule(
    name: str,
    candidate: _Candidate,
    fit: ScoreTable,
    threshold: ScoreTable,
    alpha: float,
    delta: float | None = None,
    quantile: Callable[[np.ndarray, float, float | None], float] = conformal_threshold,
) -> MethodRule:
    """The method's rule for ``candidate``: normal forms from ``fit``, thresholds from the
    ``quantile`` (default: the split-conformal one) of ``threshold``'s episode statistics."""
    forms = _normal_forms(candidate, fit)
    m = len(candidate.scores)
    if candidate.joint:
        weights = candidate.weights or (1.0,) * m
        active = candidate.active
        maxima = _statistic_maxima(threshold, candidate, forms, active)
        h = quantile(maxima, alpha * candidate.level, delta)
        thresholds = []
        for j, (a, b) in enumerate(forms):
            if j in active:
                weight = 1.0 if weights[j] == INFINITE_WEIGHT else weights[j]
                thresholds.append(np.maximum(a + h * b / weight, THRESHOLD_FLOOR))
            else:  # a score the rule ignores: a threshold it can never exceed
                thresholds.append(np.array([NEVER]))
        combine = "all" if candidate.combine == "joint_all" else "any"
    else:
        share = 1.0 / m if candidate.combine == "or" else 1.0  # union bound for OR
        level = alpha * share
        single = _Candidate(candidate.scores, candidate.windows, candidate.style, "joint")
        thresholds = []
        for j, (a, b) in enumerate(forms):
            maxima = _statistic_maxima(threshold, single, forms, [j])
            h = quantile(maxima, level, None if delta is None else delta * share)
            thresholds.append(np.maximum(a + h * b, THRESHOLD_FLOOR))
        combine = "any" if candidate.combine == "or" else "all"
    return MethodRule(
        name, candidate.scores, candidate.windows, combine, tuple(thresholds), candidate.style
    )


def method_outcomes(rule: MethodRule, split: ScoreTable, cap_steps: int | None = None) -> list:
    """Per-episode :class:`~robofail.monitor.metrics.Outcome` of ``rule`` on a scored split."""
    results = []
    for i, episode in enumerate(split.episodes):
        t = trace(rule, {name: split.raw[name][i] for name in rule.scores})
        results.append(
            outcome(
                t.alarms,
                t.combined(rule.combine),
                episode.inference_steps,
                success=episode.success,
                nominal=episode.nominal,
                failure_step=episode.failure_step,
                family=episode.family,
                cap_steps=cap_steps,
            )
        )
    return results


def _candidates(
    method: str,
    settings: CalibrationSettings,
    n_threshold: int,
    available: set[str],
    n_validation_successes: int,
) -> list[_Candidate]:
    windows, styles = settings.windows, settings.styles
    levels = [
        level
        for level in settings.alpha_levels
        if _level_usable(level, settings, n_threshold, n_validation_successes)
    ]
    if method in SINGLE_METHODS:
        return [_Candidate((method,), (w,), s, "joint") for s in styles for w in windows]
    pairs = list(itertools.product(windows, windows))
    if method == "fiper_and":
        return [_Candidate(("rnd", "ace"), p, s, "and") for s in styles for p in pairs]
    if method == "fiper_or":
        return [_Candidate(("rnd", "ace"), p, s, "or") for s in styles for p in pairs]
    # robofail: one embedding (OOD) score and one chunk score, calibrated as one statistic
    ood_scores = [name for name in EMBEDDING_SCORES if name in available]
    chunk_scores = [name for name in ("ace", "stac") if name in available]
    chunk_windows = windows[:1] + windows[-1:] if len(windows) > 1 else windows
    candidates = []
    grid = itertools.product(
        levels, styles, ood_scores, chunk_scores, windows, chunk_windows, settings.ace_weights
    )
    for level, style, ood, chunk, w_ood, w_chunk, weight in grid:
        if weight == 0.0 and (w_chunk != chunk_windows[0] or chunk != chunk_scores[0]):
            continue  # chunk score ignored: which one and its window do not matter
        if weight == INFINITE_WEIGHT and (w_ood != windows[0] or ood != ood_scores[0]):
            continue  # embedding score ignored
        both = 0.0 < weight < INFINITE_WEIGHT
        for combine in ("joint", "joint_all") if both else ("joint",):
            candidates.append(
                _Candidate((ood, chunk), (w_ood, w_chunk), style, combine, (1.0, weight), level)
            )
    return candidates


def _level_usable(
    level: float, settings: CalibrationSettings, n_threshold: int, n_validation_successes: int
) -> bool:
    """Whether robofail may spend ``level`` x alpha: the threshold split admits it and (below
    1) enough validation successes are expected above its threshold to judge it."""
    share = settings.alpha * level
    if min_calibration_episodes(share, settings.delta) > n_threshold:
        return False
    if level >= 1.0:
        return True
    k = conformal_rank(n_threshold, share, settings.delta)
    expected_above = n_validation_successes * false_alarm_rate(n_threshold, k)
    return expected_above >= MIN_VALIDATION_EXCEEDANCES


def _default_candidate(method: str, settings: CalibrationSettings) -> _Candidate:
    w = settings.default_window
    if method in SINGLE_METHODS:
        return _Candidate((method,), (w,), "constant", "joint")
    combine = {"fiper_and": "and", "fiper_or": "or"}.get(method, "joint")
    weights = (1.0, 1.0) if combine == "joint" else ()
    return _Candidate(("rnd", "ace"), (w, w), "constant", combine, weights)


def _ace_cell(
    fit: list[MonitoredEpisode], position_dims: list[int], cumulative: bool, fraction: float
) -> list[float]:
    chunks = np.concatenate([e.chunks for e in fit])
    flat = chunk_positions(chunks, position_dims, cumulative).reshape(-1, len(position_dims))
    spread = np.percentile(flat, 99, axis=0) - np.percentile(flat, 1, axis=0)
    return [float(max(fraction * s, 1e-6)) for s in spread]


def split_successes(
    episodes: list[MonitoredEpisode], settings: CalibrationSettings
) -> tuple[list, list, list]:
    """Seeded fit / threshold / validation split of the successful episodes.

    Raises:
        InvalidInputError: too few successes for ``alpha`` (the message says how many).
    """
    check_alpha(settings.alpha)
    successes = [e for e in episodes if e.success]
    n = len(successes)
    threshold_share = 1.0 - settings.fit_fraction - settings.validation_fraction
    if not (0 < settings.fit_fraction < 1 and 0 <= settings.validation_fraction < 1
            and threshold_share > 0):  # fmt: skip
        raise InvalidInputError(
            "fit and validation fractions must be in (0, 1) and leave a threshold share > 0"
        )
    needed = min_calibration_episodes(settings.alpha, settings.delta)
    n_fit = max(1, round(settings.fit_fraction * n))
    n_val = round(settings.validation_fraction * n)
    n_threshold = n - n_fit - n_val
    if n_threshold < needed or n_fit < 2:
        total = math.ceil(max(needed / threshold_share, 2 / settings.fit_fraction))
        raise InvalidInputError(
            f"{n} successful rollouts are too few to calibrate at alpha={settings.alpha}: the "
            f"threshold split ({threshold_share:.0%} of them) needs >= {needed}, so record at "
            f"least {total} successful rollouts (>= 100 in the threshold split recommended), "
            "or raise alpha"
        )
    order = np.random.default_rng(settings.seed).permutation(n)
    chosen = [successes[i] for i in order]
    return chosen[:n_fit], chosen[n_fit : n_fit + n_threshold], chosen[n_fit + n_threshold :]


def calibrate(
    rollouts: list[MonitoredEpisode],
    out: str | Path,
    *,
    position_dims: list[int],
    policy_fingerprint: str,
    validation_failures: list[MonitoredEpisode] = (),
    settings: CalibrationSettings = CalibrationSettings(),
    task: str = "",
    overwrite: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    """Calibrate every method on ``rollouts`` and write the artifact to ``out``.

    Args:
        rollouts: monitored rollouts of one policy; only the successful ones are used.
        out: artifact folder (written whole, then moved in place).
        position_dims: action dims ACE looks at.
        policy_fingerprint: stored so a mismatched policy is refused at load time.
        validation_failures: failed episodes for choosing settings (never the test ones).
        settings: see :class:`CalibrationSettings`.
        overwrite: replace an existing artifact at ``out``.
        progress: called with a short message at each stage.

    Returns:
        The ``calibration.json`` content.
    """
    from robofail.monitor.fit import FITTERS

    out = Path(out)
    check_replaceable_folder(
        out,
        "--out",
        "calibration artifact",
        CALIBRATION_FILE,
        ARTIFACT_KIND,
        lambda name: name == CALIBRATION_FILE or name.endswith(".onnx"),
        overwrite=overwrite,
    )
    learned = settings.training_steps
    if learned is not None and (
        isinstance(learned, bool) or not isinstance(learned, int) or learned < 1
    ):
        raise InvalidInputError(f"training_steps must be an int >= 1 or None, got {learned!r}")
    fit_eps, threshold_eps, val_eps = split_successes(rollouts, settings)
    failures = [e for e in validation_failures if not e.success]
    dim, horizon, action_dim = check_episodes([*fit_eps, *threshold_eps, *val_eps, *failures])
    if not position_dims or max(position_dims) >= action_dim or min(position_dims) < 0:
        raise InvalidInputError(f"position dims {position_dims} do not fit {action_dim} actions")
    steps = np.concatenate([np.diff(e.inference_steps) for e in fit_eps])
    offset = int(np.bincount(steps).argmax()) if len(steps) else horizon
    fit, threshold = ScoreTable(fit_eps), ScoreTable(threshold_eps)
    validation = ScoreTable(val_eps + failures)
    splits = (fit, threshold, validation)
    embeddings = np.concatenate([e.embeddings for e in fit_eps])
    staging = staging_folder(out)
    try:
        import onnx

        score_specs: dict[str, dict] = {}
        for index, name in enumerate(EMBEDDING_SCORES):
            progress(f"fitting {name}")
            training = (
                {}
                if settings.training_steps is None or name not in LEARNED
                else {"steps": settings.training_steps}
            )
            model = FITTERS[name](embeddings, seed=settings.seed + index, **training)
            path = staging / f"{name}.onnx"
            onnx.save(model, path)
            score_specs[name] = {"type": "onnx", "file": path.name, "sha256": file_sha256(path)}
            scorer = OnnxScore(path)
            for split in splits:
                split.score(name, scorer)
        if 0 < offset < horizon:
            score_specs["stac"] = {"type": "stac", "offset": offset}
            for split in splits:
                split.score("stac", StacScore(offset))
        progress("choosing the ACE variant")
        ace_choice = _choose_ace(fit_eps, splits, position_dims, settings, bool(failures))
        score_specs["ace"] = ace_choice.pop("spec")
        methods, selection = {}, {"ace_variant": ace_choice}
        cap_steps = math.ceil(np.percentile([e.length for e in threshold_eps], 95))
        for method in settings.methods:
            if method == "stac" and "stac" not in score_specs:
                continue
            if method == "fiper_or" and len(threshold_eps) < _or_minimum(settings):
                selection[method] = {
                    "skipped": f"alpha/2 per score needs {_or_minimum(settings)} threshold "
                    f"episodes, there are {len(threshold_eps)}"
                }
                continue
            progress(f"calibrating {method}")
            rule, record = _select(
                method, fit, threshold, validation, settings, bool(failures), cap_steps
            )
            methods[method] = rule.to_json()
            selection[method] = record
        calibration = {
            "schema_version": SCHEMA_VERSION,
            "kind": ARTIFACT_KIND,
            "library_version": __version__,
            "alpha": settings.alpha,
            "delta": settings.delta,
            "policy_fingerprint": policy_fingerprint,
            "task": task,
            "embedding_dim": int(dim),
            "horizon": int(horizon),
            "action_dim": int(action_dim),
            "exec_horizon": offset,
            "position_dims": list(position_dims),
            "seed": settings.seed,
            "n_episodes": {
                "fit": len(fit_eps),
                "threshold": len(threshold_eps),
                "validation": len(val_eps),
                "validation_failures": len(failures),
            },
            "length_cap_steps": cap_steps,
            "scores": score_specs,
            "methods": methods,
            "default_method": "robofail" if "robofail" in methods else next(iter(methods)),
            "selection": selection,
        }
        (staging / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=1))
        replace_folder(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return calibration


def _or_minimum(settings: CalibrationSettings) -> int:
    """Threshold episodes FIPER's OR needs: each score at alpha / 2 (and delta / 2)."""
    half_delta = None if settings.delta is None else settings.delta / 2
    return min_calibration_episodes(settings.alpha / 2, half_delta)


def _choose_ace(fit_eps, splits, position_dims, settings, have_failures) -> dict:
    """Pick the ACE cell fraction and path mode by the validation ROC-AUC of the episode max."""
    variants = list(itertools.product(settings.ace_cumulative, settings.ace_cell_fractions))
    default = (True, 0.03) if (True, 0.03) in variants else variants[0]
    best, best_auc, table = None, -1.0, []
    validation = splits[2]
    for cumulative, fraction in variants if have_failures else [default]:
        cell = _ace_cell(fit_eps, position_dims, cumulative, fraction)
        scorer = AceScore(position_dims, cumulative, cell)
        maxima = [float(scorer.episode(None, e.chunks).max()) for e in validation.episodes]
        auc = roc_auc(
            [m for m, e in zip(maxima, validation.episodes, strict=True) if not e.success],
            [m for m, e in zip(maxima, validation.episodes, strict=True) if e.success],
        )
        table.append({"cumulative": cumulative, "cell_fraction": fraction, "roc_auc": auc})
        if best is None or (auc or 0.0) > best_auc:
            best, best_auc = (cumulative, fraction, cell), auc or 0.0
    cumulative, fraction, cell = best
    scorer = AceScore(position_dims, cumulative, cell)
    for split in splits:
        split.score("ace", scorer)
    spec = {
        "type": "ace",
        "position_dims": list(position_dims),
        "cumulative": cumulative,
        "cell": cell,
        "cell_fraction": fraction,
    }
    return {"spec": spec, "candidates": table}


def _complexity(candidate: _Candidate) -> tuple[int, int, int]:
    """Fewer active scores, shorter windows, constant thresholds: simpler."""
    active = candidate.active
    windows = sum(candidate.windows[j] for j in active)
    return len(active), windows, int(candidate.style == "band")


def _select(method, fit, threshold, validation, settings, have_failures, cap_steps):
    """The method's rule chosen on validation by the one-standard-error rule.

    Each candidate gets a validation accuracy: the mean of its TPR on the validation failures,
    counting alarms before ``cap_steps`` only, and its TNR on whole successful episodes. For
    joint rules (one conformal statistic) the TPR is the one expected at the final threshold
    (:func:`expected_tpr`) and the TNR is exact, 1 - (n + 1 - k) / (n + 1); for AND / OR
    thresholds come from the validation successes. With hundreds of candidates and a few dozen
    validation failures, the top score is biased upwards (one failure is 1-2 points of TPR), so
    the chosen candidate is the simplest one within one standard error of the best. Only then
    are its thresholds set, on the threshold split.
    """
    alpha = settings.alpha
    if not have_failures:
        candidate = _default_candidate(method, settings)
        rule = _rule(method, candidate, fit, threshold, alpha, settings.delta)
        return rule, {"chosen_by": "default (no validation failures)", **_describe(candidate)}
    n = len(threshold.episodes)
    # Candidates are compared with thresholds from the validation successes, never from the
    # threshold split: choosing among candidates by thresholds from the threshold split favours
    # those whose quantile came out low by chance (selection bias), and the chosen rule's
    # false-alarm rate then exceeds alpha (measured: 0.15 at alpha 0.1 on peg_insert).
    successes = _subset(validation, [e.success for e in validation.episodes])
    failures = _subset(validation, [not e.success for e in validation.episodes])
    early_failures = _before_cap(failures, cap_steps)
    n_failures = max(len(failures.episodes), 1)
    reference, quantile = (successes, _selection_quantile) if successes.episodes else (
        threshold, conformal_threshold,
    )  # fmt: skip
    candidates = _candidates(method, settings, n, set(fit.raw), len(successes.episodes))
    scored = []
    for order, candidate in enumerate(candidates):
        if candidate.joint and successes.episodes:
            # one conformal statistic: its false-alarm rate on new successes is known exactly,
            # (n + 1 - k) / (n + 1); the validation successes would only add noise to it
            k = conformal_rank(n, alpha * candidate.level, settings.delta)
            statistic = _joint_statistic(candidate, fit)
            tpr = expected_tpr(statistic(successes), statistic(early_failures), n, k)
            tnr = 1.0 - false_alarm_rate(n, k)
            variance = tpr * (1 - tpr) / n_failures
        else:
            trial = _rule(method, candidate, fit, reference, alpha, settings.delta, quantile)
            tpr = summarise(method_outcomes(trial, failures, cap_steps))["tpr"] or 0.0
            kept = summarise(method_outcomes(trial, successes))
            tnr, n_successes = kept["tnr"] or 0.0, max(kept["n_success"], 1)
            variance = tpr * (1 - tpr) / n_failures + tnr * (1 - tnr) / n_successes
        error = 0.5 * math.sqrt(max(variance, 1.0 / n_failures**2))
        scored.append((0.5 * (tpr + tnr), error, order, candidate, tpr, tnr))
    best_accuracy, best_error = max(scored, key=lambda item: (item[0], -item[2]))[:2]
    eligible = [item for item in scored if item[0] >= best_accuracy - best_error]
    accuracy, _, _, candidate, tpr, tnr = min(
        eligible, key=lambda item: (_complexity(item[3]), -item[0], item[2])
    )
    rule = _rule(method, candidate, fit, threshold, alpha, settings.delta)
    return rule, {
        "chosen_by": "one-standard-error rule on validation accuracy (TPR: alarms before the "
        "length cap; joint rules: the TPR expected at the final threshold and the exact "
        "conformal TNR)",
        "selection_score": accuracy,
        "best_score": best_accuracy,
        "standard_error": best_error,
        "candidates": len(candidates),
        **_describe(candidate),
        "validation": {
            "balanced_accuracy": accuracy, "tpr_before_cap": tpr, "tnr": tnr,
            "length_cap_steps": cap_steps,
        },
    }  # fmt: skip


def _joint_statistic(candidate: _Candidate, fit: ScoreTable) -> Callable[[ScoreTable], np.ndarray]:
    """Per-episode statistic of a joint candidate (normal forms from ``fit``), as a function of
    a scored table."""
    forms = _normal_forms(candidate, fit)
    return lambda table: _statistic_maxima(table, candidate, forms, candidate.active)


def _before_cap(table: ScoreTable, cap_steps: int) -> ScoreTable:
    """``table`` with each episode's scores cut to the inferences made before control step
    ``cap_steps`` (at least the first), as the length-capped metrics count alarms."""
    cut = ScoreTable(table.episodes)
    for name, values in table.raw.items():
        cut.raw[name] = [
            v[: max(1, inferences_before(e.inference_steps, cap_steps))]
            for v, e in zip(values, table.episodes, strict=True)
        ]
    return cut


def _subset(table: ScoreTable, keep: list[bool]) -> ScoreTable:
    """The episodes of ``table`` where ``keep`` is true, with their raw scores."""
    subset = ScoreTable([e for e, k in zip(table.episodes, keep, strict=True) if k])
    for name, values in table.raw.items():
        subset.raw[name] = [v for v, k in zip(values, keep, strict=True) if k]
    return subset


def _describe(candidate: _Candidate) -> dict:
    weights = [("inf" if w == INFINITE_WEIGHT else w) for w in candidate.weights]
    return {
        "scores": list(candidate.scores),
        "windows": list(candidate.windows),
        "style": candidate.style,
        **({"weights": weights} if weights else {}),
        **({"combine": "all"} if candidate.combine == "joint_all" else {}),
        **({"alpha_level": candidate.level} if candidate.level != 1.0 else {}),
    }
