"""Boundary search: where in a perturbation's parameter box does the task start to fail?

For one perturbation kind of a spec, the search box is the spec entry's parameter ranges (a
parameter whose range is a single value stays fixed and is not searched). The search

1. runs one episode per point of a Latin hypercube design over the box (``initial_fraction * n``
   points);
2. fits a logistic risk model ``P(fail | params)`` on the parameters normalised to [-1, 1] over
   the box (linear terms, plus squared terms once there are enough samples; L2-regularised,
   fitted by Newton's method);
3. spends the rest of the budget in rounds: draws many candidate points, keeps those where the
   model predicts a failure probability inside the band (30-70 %), runs a batch of them and
   refits. A round with no candidate in the band falls back to the candidates nearest 50 % and
   says so in the report.

Point ``i`` (in the order points are chosen) runs as episode ``i`` of a run seeded ``seed``
(reset seed ``episode_seed(seed, i)``), and every random draw of the search derives from
``seed``, so the same arguments give the same samples on every backend and worker count.

Outputs in the output folder: ``samples.json`` (every point and its outcome), ``model.json`` (the
final model, enough to reuse it with :meth:`RiskModel.from_json`), ``report.json`` (failure
rate, held-out ROC-AUC, boundary-phase failure fraction...) and ``boundary.png``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robofail.errors import InvalidInputError, OutputPathError
from robofail.failgen.generator import (
    EpisodeSettings,
    check_policy,
    check_supported,
    task_env,
)
from robofail.failgen.perturbation import make_perturbation, perturbation_type
from robofail.failgen.spec import FailureSpec, SpecEntry, resolve_spec
from robofail.figures import save_png
from robofail.parallel import check_backend, check_seed, run_ordered
from robofail.tasks import get_task

MIN_EPISODES = 20
"""The smallest budget a search accepts."""
BAND = (0.3, 0.7)
"""Predicted failure probabilities the boundary phase samples from."""
OUTPUT_FILES = ("samples.json", "model.json", "report.json", "boundary.png")
_STREAM_DESIGN = 11  # seed streams of the search's own draws (episodes use streams 0-2)
_STREAM_CANDIDATES = 12
_STREAM_PICK = 13
_STREAM_SPLIT = 14


# --------------------------------------------------------------------------- the box
@dataclass(frozen=True)
class Box:
    """The searched parameters of one perturbation kind and their ranges.

    Attributes:
        kind: the perturbation kind.
        names: searched parameters (range low < high), sorted.
        low, high: their bounds, shape (d,).
        integer: which of them are whole numbers, shape (d,).
        fixed: parameters whose range is one value, and that value.
    """

    kind: str
    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    integer: np.ndarray
    fixed: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: SpecEntry) -> Box:
        """The box of a spec entry (its ranges)."""
        params = perturbation_type(entry.kind).params
        names = tuple(n for n in sorted(entry.ranges) if entry.ranges[n][0] < entry.ranges[n][1])
        fixed = {n: entry.ranges[n][0] for n in sorted(entry.ranges) if n not in names}
        return cls(
            kind=entry.kind,
            names=names,
            low=np.array([entry.ranges[n][0] for n in names], dtype=float),
            high=np.array([entry.ranges[n][1] for n in names], dtype=float),
            integer=np.array([params[n].integer for n in names], dtype=bool),
            fixed=fixed,
        )

    @property
    def dim(self) -> int:
        return len(self.names)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Points of the unit cube (m, d) mapped to parameter values; integer parameters take
        each whole number in their range with equal probability for uniform ``u``."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        values = self.low + u * (self.high - self.low)
        steps = np.floor(self.low + u * (self.high - self.low + 1.0))
        return np.where(self.integer, np.minimum(steps, self.high), values)

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """Parameter values (m, d) scaled to [-1, 1] over the box."""
        return 2.0 * (np.asarray(values, dtype=float) - self.low) / (self.high - self.low) - 1.0

    def point(self, values: Sequence[float]) -> dict[str, float]:
        """The full parameter dict of a perturbation at ``values`` (fixed ones included)."""
        point: dict[str, float] = dict(self.fixed)
        for name, value, whole in zip(self.names, values, self.integer, strict=True):
            point[name] = round(value) if whole else float(value)
        return dict(sorted(point.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": {
                name: {"low": float(lo), "high": float(hi), "integer": bool(whole)}
                for name, lo, hi, whole in zip(
                    self.names, self.low, self.high, self.integer, strict=True
                )
            },
            "fixed": self.fixed,
        }


def latin_hypercube(dim: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` points of a Latin hypercube design in the unit cube [0, 1)^dim (scipy's)."""
    from scipy.stats import qmc

    try:
        sampler = qmc.LatinHypercube(dim, rng=rng)
    except TypeError:  # scipy < 1.15 names it seed
        sampler = qmc.LatinHypercube(dim, seed=rng)
    return sampler.random(m)


# --------------------------------------------------------------------------- the model
def design_matrix(z: np.ndarray, quadratic: bool) -> np.ndarray:
    """Features of normalised points ``z`` (m, d): ``[1, z_1..z_d]`` then ``z_1^2..z_d^2``."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    columns = [np.ones((len(z), 1)), z]
    if quadratic:
        columns.append(z**2)
    return np.hstack(columns)


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # exact and overflow-free


def fit_logistic(
    features: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 100
) -> np.ndarray:
    """Coefficients of an L2-regularised logistic regression, by damped Newton steps.

    Minimises ``-sum log-likelihood + l2/2 * |w|^2`` where the intercept (column 0, all ones)
    gets a penalty 1e-4 * l2 (so it stays finite when every outcome is the same).

    Args:
        features: (m, k) design matrix whose first column is the intercept.
        y: (m,) outcomes, 1 = failure.
    """
    X = np.asarray(features, dtype=float)
    y = np.asarray(y, dtype=float)
    penalty = np.full(X.shape[1], float(l2))
    penalty[0] = 1e-4 * max(float(l2), 1e-8)

    def loss(w: np.ndarray) -> float:
        t = X @ w
        return float(np.sum(np.logaddexp(0.0, t) - y * t) + 0.5 * np.sum(penalty * w * w))

    w = np.zeros(X.shape[1])
    current = loss(w)
    for _ in range(iterations):
        p = _sigmoid(X @ w)
        gradient = X.T @ (p - y) + penalty * w
        hessian = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6:
            candidate = w - scale * step
            value = loss(candidate)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        w, previous, current = candidate, current, value
        if np.max(np.abs(scale * step)) < 1e-10 or previous - current < 1e-12:
            break
    return w


@dataclass(frozen=True)
class RiskModel:
    """A fitted logistic model of ``P(fail | params)`` over a :class:`Box`.

    Features: ``z = 2 (x - low) / (high - low) - 1`` per searched parameter, then
    ``[1, z_1..z_d]`` plus ``[z_1^2..z_d^2]`` when ``quadratic``.
    """

    box: Box
    coef: np.ndarray
    quadratic: bool
    l2: float

    @classmethod
    def fit(cls, box: Box, values: np.ndarray, failed: np.ndarray, *, l2: float = 1.0) -> RiskModel:
        """Fit on parameter values (m, d) and outcomes (m,); squared terms are used once there
        are at least 10 samples per squared-plus-linear coefficient (20 per parameter)."""
        values = np.asarray(values, dtype=float).reshape(len(failed), box.dim)
        quadratic = len(failed) >= 20 * box.dim
        features = design_matrix(box.normalise(values), quadratic)
        coef = fit_logistic(features, np.asarray(failed, dtype=float), l2=l2)
        return cls(box, coef, quadratic, float(l2))

    def logit(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float).reshape(-1, self.box.dim)
        return design_matrix(self.box.normalise(values), self.quadratic) @ self.coef

    def predict(self, values: np.ndarray) -> np.ndarray:
        """P(fail) at parameter values (m, d)."""
        return _sigmoid(self.logit(values))

    def influence(self) -> np.ndarray:
        """Per parameter, the span of its terms' contribution to the logit over the box."""
        z = np.linspace(-1.0, 1.0, 201)
        d = self.box.dim
        spans = []
        for j in range(d):
            term = self.coef[1 + j] * z
            if self.quadratic:
                term = term + self.coef[1 + d + j] * z**2
            spans.append(float(term.max() - term.min()))
        return np.array(spans)

    def feature_names(self) -> list[str]:
        names = ["1", *(f"z({n})" for n in self.box.names)]
        if self.quadratic:
            names += [f"z({n})^2" for n in self.box.names]
        return names

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "logistic",
            "predict": "P(fail) = 1 / (1 + exp(-(features . coefficients)))",
            "normalisation": "z(p) = 2 * (p - low) / (high - low) - 1 over the box",
            "features": self.feature_names(),
            "coefficients": [float(c) for c in self.coef],
            "quadratic": self.quadratic,
            "l2": self.l2,
            "box": self.box.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RiskModel:
        """The model saved by :meth:`to_json` (``model.json``)."""
        box_data = data["box"]
        params = box_data["params"]
        names = tuple(params)
        box = Box(
            kind=box_data["kind"],
            names=names,
            low=np.array([params[n]["low"] for n in names], dtype=float),
            high=np.array([params[n]["high"] for n in names], dtype=float),
            integer=np.array([params[n]["integer"] for n in names], dtype=bool),
            fixed=dict(box_data.get("fixed", {})),
        )
        return cls(box, np.array(data["coefficients"], dtype=float), data["quadratic"], data["l2"])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for binary ``labels`` (1 positive) by the rank-sum formula, ties
    getting their average rank; NaN when one class is absent."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# --------------------------------------------------------------------------- episodes
def _run_points(
    settings: EpisodeSettings, kind: str, items: list[tuple[int, dict[str, float]]]
) -> list[tuple[int, bool, int, int, str]]:
    """Worker entry point: ``(index, failed, failure_step, onset_step, failure_type)`` of each
    ``(index, parameter values)`` point of perturbation ``kind``."""
    results = []
    for index, values in items:
        label = settings.run(make_perturbation(kind, **values), index).label
        results.append(
            (index, not label.success, label.failure_step, label.onset_step, label.failure_type)
        )
    return results


# --------------------------------------------------------------------------- the search
@dataclass
class DiscoverResult:
    """What :func:`discover` did: the samples, the final model and the report."""

    out_dir: Path
    samples: list[dict[str, Any]]
    model: RiskModel
    report: dict[str, Any]

    def summary(self) -> str:
        """A few lines for the terminal."""
        r = self.report
        auc = r["heldout_auc"]
        boundary = r["boundary_phase"]
        lines = [
            f"discover {r['task']} / {r['kind']} over {', '.join(r['params'])}: "
            f"{r['n']} episodes, failure rate {r['failure_rate']:.1%}",
            f"held-out AUC {'n/a (one class in the test split)' if auc is None else f'{auc:.3f}'}"
            f" ({r['heldout_split']['train']} train / {r['heldout_split']['test']} test)",
        ]
        if boundary["n"]:
            lines.append(
                f"boundary phase: {boundary['n']} episodes, "
                f"{boundary['failure_fraction']:.1%} failed (~50% if the model is right)"
            )
        if r["fallback_rounds"]:
            lines.append(
                f"no candidate in the {BAND[0]:.0%}-{BAND[1]:.0%} band in round(s) "
                f"{', '.join(map(str, r['fallback_rounds']))}: used the candidates nearest 50%"
            )
        if "p50" in r:
            lines.append(f"P(fail) = 50% at {r['params'][0]} = {r['p50']:.4g}")
        files = ", ".join(r["files"])
        lines.append(f"wrote {files} in {self.out_dir} ({r['seconds']:.1f} s)")
        return "\n".join(lines)


def select_entry(spec: FailureSpec, kind: str | None) -> SpecEntry:
    """The spec entry of ``kind`` (or the only entry when ``kind`` is None)."""
    kinds = [e.kind for e in spec.entries]
    if not kinds:
        raise InvalidInputError(f"spec {spec.name} has no perturbation to search (nominal spec)")
    if kind is None:
        if len(kinds) > 1:
            raise InvalidInputError(
                f"spec {spec.name} has {len(kinds)} perturbation kinds; pick one with --kind: "
                f"{', '.join(kinds)}"
            )
        kind = kinds[0]
    perturbation_type(kind)  # unknown kind -> UnknownNameError listing the known ones
    if kind not in kinds:
        raise InvalidInputError(
            f"kind {kind!r} is not in spec {spec.name}; its kinds: {', '.join(kinds)}"
        )
    return spec.entries[kinds.index(kind)]


def _prepare_out(out: Path, *, overwrite: bool) -> None:
    """Create ``out`` and check it is writable; refuse to replace a search without overwrite."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise OutputPathError(f"cannot write {out}: {folder} is a file, not a folder")
            break
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise OutputPathError(
            f"{out} already holds a boundary search ({', '.join(existing)}); pass --overwrite "
            "to replace it or choose another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".robofail-write-test-{time.monotonic_ns()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputPathError(f"cannot write {out}: {exc.strerror or exc}") from None


def discover(
    task: str,
    spec: str | Path | FailureSpec,
    n: int,
    out_dir: str | Path,
    *,
    kind: str | None = None,
    seed: int = 0,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    policy_dir: str | Path | None = None,
    samples: int = 32,
    image: bool = False,
    initial_fraction: float = 0.5,
    rounds: int = 4,
    candidates: int = 2000,
    l2: float = 1.0,
    overwrite: bool = False,
    progress: bool = False,
) -> DiscoverResult:
    """Search the failure boundary of one perturbation kind of ``spec`` on ``task``.

    Args:
        task: bundled task name.
        spec: a :class:`FailureSpec`, a spec file or a shipped spec name.
        n: episodes in all (>= 20).
        out_dir: folder for samples.json, model.json, report.json and boundary.png.
        kind: the perturbation kind to search; may be None when the spec has one entry.
        seed: search seed; the same arguments give the same samples.
        workers, backend, address: where episodes run (see :func:`run_ordered`).
        policy_dir: saved policy, for specs with ``source: policy``.
        samples: chunks per policy inference.
        image: render camera images (camera faults, image policies).
        initial_fraction: share of ``n`` spent on the Latin hypercube design, in (0, 1].
        rounds: boundary-phase rounds the rest of the budget is split into.
        candidates: candidate points drawn per boundary round.
        l2: L2 penalty of the logistic model's coefficients.
        overwrite: replace an earlier search's files in ``out_dir``.
        progress: show a progress bar.

    Raises:
        InvalidInputError, UnknownNameError, CorruptFileError, OutputPathError: bad input,
            raised before any episode runs.
    """
    start = time.perf_counter()
    name = get_task(task).name
    spec = resolve_spec(spec, name)
    if isinstance(n, bool) or not isinstance(n, int) or n < MIN_EPISODES:
        raise InvalidInputError(f"a boundary search needs n >= {MIN_EPISODES} episodes, got {n!r}")
    if not 0.0 < float(initial_fraction) <= 1.0:
        raise InvalidInputError(f"initial fraction must be in (0, 1], got {initial_fraction!r}")
    for label, value, least in (("rounds", rounds, 1), ("candidates", candidates, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInputError(f"{label} must be an int >= {least}, got {value!r}")
    if not (math.isfinite(l2) and l2 > 0):
        raise InvalidInputError(f"l2 must be a finite number > 0, got {l2!r}")
    check_backend(backend, workers, address)
    check_seed(seed)
    entry = select_entry(spec, kind)
    box = Box.from_entry(entry)
    if box.dim == 0:
        what = "has no parameters" if not entry.ranges else "has every parameter fixed by the spec"
        raise InvalidInputError(f"{entry.kind} {what}: there is nothing to search")
    env = task_env(name, image=image)
    check_supported(perturbation_type(entry.kind), env)
    check_policy(spec, policy_dir, env)
    out = Path(out_dir)
    _prepare_out(out, overwrite=overwrite)

    settings = EpisodeSettings(
        task=name,
        seed=seed,
        source=spec.source,
        policy_dir=None if policy_dir is None else str(Path(policy_dir).resolve()),
        samples=samples,
        image=image,
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"discover {name}/{entry.kind}", unit="ep")

    def run_batch(points: np.ndarray, first: int) -> list[tuple[int, bool, int, int, str]]:
        items = [(first + i, box.point(p)) for i, p in enumerate(points)]
        size = max(1, min(4, math.ceil(len(items) / (2 * workers))))
        jobs = [(settings, entry.kind, items[i : i + size]) for i in range(0, len(items), size)]
        results: list[tuple[int, bool, int, int, str]] = []
        for chunk in run_ordered(
            _run_points, jobs, backend=backend, workers=workers, address=address
        ):
            results.extend(chunk)
            if bar is not None:
                bar.update(len(chunk))
        return results

    records: list[dict[str, Any]] = []
    values = np.empty((0, box.dim))

    def record(points: np.ndarray, round_: int, predicted: np.ndarray | None) -> None:
        nonlocal values
        for point, result, p in zip(
            points,
            run_batch(points, len(records)),
            [None] * len(points) if predicted is None else predicted,
            strict=True,
        ):
            index, failed, failure_step, onset_step, failure_type = result
            records.append(
                {
                    "index": index,
                    "round": round_,
                    "phase": "initial" if round_ == 0 else "boundary",
                    "params": box.point(point),
                    "failed": bool(failed),
                    "failure_type": failure_type,
                    "failure_step": failure_step,
                    "onset_step": onset_step,
                    "predicted_p_fail": None if p is None else float(p),
                }
            )
        values = np.vstack([values, points])

    def outcomes() -> np.ndarray:
        return np.array([r["failed"] for r in records], dtype=float)

    try:
        n_initial = max(2, min(n, round(float(initial_fraction) * n)))
        design_rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_DESIGN]))
        record(box.from_unit(latin_hypercube(box.dim, n_initial, design_rng)), 0, None)

        remaining = n - n_initial
        batch = math.ceil(remaining / rounds) if remaining else 0
        round_log: list[dict[str, Any]] = []
        round_ = 0
        while len(records) < n:
            round_ += 1
            model = RiskModel.fit(box, values, outcomes(), l2=l2)
            size = min(batch, n - len(records))
            stream = np.random.SeedSequence([seed, _STREAM_CANDIDATES, round_])
            pool = box.from_unit(
                latin_hypercube(box.dim, candidates, np.random.default_rng(stream))
            )
            p_pool = model.predict(pool)
            in_band = np.flatnonzero((p_pool >= BAND[0]) & (p_pool <= BAND[1]))
            pick_rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_PICK, round_]))
            if len(in_band):
                chosen = pick_rng.choice(in_band, size=size, replace=len(in_band) < size)
            else:
                chosen = np.argsort(np.abs(p_pool - 0.5), kind="stable")[:size]
            round_log.append(
                {
                    "round": round_,
                    "fitted_on": len(records),
                    "features": model.feature_names(),
                    "coefficients": [float(c) for c in model.coef],
                    "quadratic": model.quadratic,
                    "candidates": candidates,
                    "in_band": len(in_band),
                    "fallback": not len(in_band),
                    "episodes": int(size),
                }
            )
            record(pool[chosen], round_, p_pool[chosen])
    finally:
        if bar is not None:
            bar.close()

    failed = outcomes()
    model = RiskModel.fit(box, values, failed, l2=l2)
    report = _report(spec, entry, box, model, records, values, failed, round_log, seed, l2)
    files = ["samples.json", "model.json", "report.json"]
    samples_doc = {
        "task": name,
        "kind": entry.kind,
        "seed": seed,
        "spec": spec.name,
        "params": list(box.names),
        "band": list(BAND),
        "samples": records,
        "rounds": round_log,
    }
    (out / "samples.json").write_text(json.dumps(samples_doc, indent=1) + "\n")
    model_doc = {"task": name, "kind": entry.kind, "n": len(records), **model.to_json()}
    (out / "model.json").write_text(json.dumps(model_doc, indent=1) + "\n")
    plot_boundary(model, values, failed, [r["phase"] for r in records], out / "boundary.png")
    files.append("boundary.png")
    report["files"] = files
    report["seconds"] = time.perf_counter() - start
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return DiscoverResult(out, records, model, report)


def _report(
    spec: FailureSpec,
    entry: SpecEntry,
    box: Box,
    model: RiskModel,
    records: list[dict[str, Any]],
    values: np.ndarray,
    failed: np.ndarray,
    round_log: list[dict[str, Any]],
    seed: int,
    l2: float,
) -> dict[str, Any]:
    """The report: counts, failure rates, held-out AUC, boundary-phase failure fraction."""
    m = len(records)
    split_rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_SPLIT]))
    order = split_rng.permutation(m)
    n_train = round(0.75 * m)
    train, test = order[:n_train], order[n_train:]
    heldout = RiskModel.fit(box, values[train], failed[train], l2=l2)
    auc = roc_auc(heldout.predict(values[test]), failed[test])
    in_sample = roc_auc(model.predict(values), failed)
    boundary = [r for r in records if r["phase"] == "boundary"]
    boundary_failed = sum(r["failed"] for r in boundary)
    report: dict[str, Any] = {
        "task": spec.task,
        "kind": entry.kind,
        "spec": spec.name,
        "seed": seed,
        "params": list(box.names),
        "fixed": box.fixed,
        "n": m,
        "failures": int(failed.sum()),
        "failure_rate": float(failed.mean()),
        "heldout_auc": None if math.isnan(auc) else auc,
        "heldout_split": {
            "train": len(train),
            "test": len(test),
            "test_failures": int(failed[test].sum()),
        },
        "in_sample_auc": None if math.isnan(in_sample) else in_sample,
        "initial_phase": {
            "n": m - len(boundary),
            "failure_fraction": float(failed[: m - len(boundary)].mean()),
        },
        "boundary_phase": {
            "n": len(boundary),
            "failures": int(boundary_failed),
            "failure_fraction": boundary_failed / len(boundary) if boundary else None,
            "mean_predicted_p_fail": float(np.mean([r["predicted_p_fail"] for r in boundary]))
            if boundary
            else None,
        },
        "band": list(BAND),
        "rounds": [
            {k: r[k] for k in ("round", "fitted_on", "in_band", "fallback", "episodes")}
            for r in round_log
        ],
        "fallback_rounds": [r["round"] for r in round_log if r["fallback"]],
        "influence": dict(zip(box.names, map(float, model.influence()), strict=True)),
    }
    if report["fallback_rounds"]:
        report["fallback_note"] = (
            f"no candidate had a predicted failure probability in {BAND[0]:.0%}-{BAND[1]:.0%}; "
            "those rounds ran the candidates nearest 50%"
        )
    if box.dim == 1:
        grid = np.linspace(box.low[0], box.high[0], 2001)[:, None]
        p = model.predict(grid)
        crossings = np.flatnonzero(np.diff(np.sign(p - 0.5)) != 0)
        if len(crossings):
            i = int(crossings[0])
            x0, x1, p0, p1 = grid[i, 0], grid[i + 1, 0], p[i], p[i + 1]
            report["p50"] = float(x0 + (0.5 - p0) * (x1 - x0) / (p1 - p0))
    return report


# --------------------------------------------------------------------------- the plot
def plot_boundary(
    model: RiskModel,
    values: np.ndarray,
    failed: np.ndarray,
    phases: Sequence[str],
    path: Path,
) -> None:
    """Draw the failure boundary to ``path`` (PNG).

    One parameter: the P(fail) curve with the outcomes as a rug. Two or more: P(fail) contours
    over the two most influential parameters (the others at the box centre), the 0.5 level drawn,
    the samples coloured by outcome (circles: initial design, triangles: boundary phase).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    box = model.box
    failed = np.asarray(failed, dtype=bool)
    boundary = np.array([p == "boundary" for p in phases], dtype=bool)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    try:
        if box.dim == 1:
            grid = np.linspace(box.low[0], box.high[0], 400)
            ax.plot(grid, model.predict(grid[:, None]), color="black", label="model P(fail)")
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
            ax.axhspan(BAND[0], BAND[1], color="gold", alpha=0.15, label="30-70 % band")
            x = values[:, 0]
            ax.plot(
                x[failed], np.full(failed.sum(), 1.02), "|", color="tab:red", ms=14, label="failed"
            )
            ax.plot(
                x[~failed],
                np.full((~failed).sum(), -0.02),
                "|",
                color="tab:green",
                ms=14,
                label="succeeded",
            )
            ax.set_xlabel(box.names[0])
            ax.set_ylabel("P(fail)")
            ax.set_ylim(-0.08, 1.08)
        else:
            i, j = np.argsort(-model.influence(), kind="stable")[:2]
            pad = 0.2 * box.integer
            gx = np.linspace(box.low[i] - pad[i], box.high[i] + pad[i], 150)
            gy = np.linspace(box.low[j] - pad[j], box.high[j] + pad[j], 150)
            xx, yy = np.meshgrid(gx, gy)
            grid = np.tile((box.low + box.high) / 2.0, (xx.size, 1))
            grid[:, i], grid[:, j] = xx.ravel(), yy.ravel()
            p = model.predict(grid).reshape(xx.shape)
            filled = ax.contourf(
                xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdYlGn_r", alpha=0.75
            )
            fig.colorbar(filled, ax=ax, label="P(fail)")
            if p.min() < 0.5 < p.max():
                ax.contour(xx, yy, p, levels=[0.5], colors="black", linewidths=2)
            # whole-number parameters: spread repeated points a little so each stays visible
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, size=(len(values), 2))
            shown = values[:, [i, j]] + jitter * box.integer[[i, j]]
            ax.set_xlim(box.low[i] - 0.2 * box.integer[i], box.high[i] + 0.2 * box.integer[i])
            ax.set_ylim(box.low[j] - 0.2 * box.integer[j], box.high[j] + 0.2 * box.integer[j])
            for mask, marker, phase in ((~boundary, "o", "initial"), (boundary, "^", "boundary")):
                for outcome, color in ((True, "tab:red"), (False, "tab:green")):
                    sel = mask & (failed == outcome)
                    if sel.any():
                        ax.scatter(
                            shown[sel, 0],
                            shown[sel, 1],
                            c=color,
                            marker=marker,
                            edgecolors="black",
                            linewidths=0.5,
                            s=30,
                            label=f"{phase}, {'failed' if outcome else 'succeeded'}",
                        )
            ax.set_xlabel(box.names[i])
            ax.set_ylabel(box.names[j])
            if box.dim > 2:
                ax.set_title("others at the box centre", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        fig.suptitle(f"{box.kind}: failure boundary")
        fig.tight_layout()
        save_png(fig, path, "boundary")
    finally:
        plt.close(fig)
