"""Monitored episodes read from datasets, for calibration and evaluation (needs h5py).

A source is a dataset path (``.h5`` file or shard folder), optionally followed by ``:FILTER`` to
take only the episodes in one of its ``mask/`` filters, e.g. ``data/push_failures:failure``.
Episodes must carry the monitor's inputs per inference (``extras``: ``embeddings``,
``sampled_chunks``, ``inference_steps``), as rollouts recorded by ``robofail rollout``,
``robofail generate --policy`` or :func:`robofail.monitor.monitored_rollout` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robofail.errors import InvalidInputError

REQUIRED_EXTRAS = ("embeddings", "sampled_chunks", "inference_steps")


@dataclass(frozen=True)
class MonitoredEpisode:
    """What the monitor sees of one episode (K inferences, T control steps).

    Attributes:
        name: ``"<source>#<demo name>"``.
        embeddings: (K, D) float32.
        chunks: (K, B, H, A) float32 sampled chunks.
        inference_steps: (K,) control step of each inference.
        length: T, control steps of the episode.
        success: the simulator's success label.
        nominal: no perturbation was applied.
        failure_step: first step of failure (-1 for a success).
        failure_type: label's failure type (``"none"`` for a success).
        family: perturbation kind (``"nominal"`` when unperturbed).
    """

    name: str
    embeddings: np.ndarray
    chunks: np.ndarray
    inference_steps: np.ndarray
    length: int
    success: bool
    nominal: bool
    failure_step: int
    failure_type: str
    family: str


def check_episodes(
    episodes: list[MonitoredEpisode], expected: tuple[int, int, int] | None = None
) -> tuple[int, int, int]:
    """Check the monitor inputs of ``episodes``: embeddings (K, D) and chunks (K, B, H, A) with
    B >= 2, one (D, H, A) for all (``expected`` when given, e.g. an artifact's), K inference
    steps, finite values.

    Returns:
        (D, H, A).

    Raises:
        InvalidInputError: naming the first episode that does not fit and what is wrong.
    """
    if not episodes:
        raise InvalidInputError("no episodes: pass rollouts (check the :FILTER of each source)")
    first = episodes[0]
    sizes = expected or (first.embeddings.shape[-1], *first.chunks.shape[-2:])
    for e in episodes:
        k = len(e.embeddings)
        got = (e.embeddings.shape[-1], *e.chunks.shape[-2:])
        if (
            e.embeddings.ndim != 2
            or e.chunks.ndim != 4
            or got != tuple(sizes)
            or e.chunks.shape[0] != k
            or e.inference_steps.shape != (k,)
        ):
            raise InvalidInputError(
                f"{e.name}: embeddings {e.embeddings.shape} / chunks {e.chunks.shape} do not "
                f"fit embeddings (K, {sizes[0]}) / chunks (K, B, {sizes[1]}, {sizes[2]})"
                + (" of the calibration artifact" if expected else " of the other episodes")
            )
        if e.chunks.shape[1] < 2:
            raise InvalidInputError(f"{e.name}: needs B >= 2 sampled chunks per inference")
        if not (np.isfinite(e.embeddings).all() and np.isfinite(e.chunks).all()):
            raise InvalidInputError(
                f"{e.name}: embeddings or sampled chunks contain NaN or inf; re-record it"
            )
    return int(sizes[0]), int(sizes[1]), int(sizes[2])


def split_source(source: str) -> tuple[Path, str | None]:
    """``"path[:FILTER]"`` -> (path, filter or None)."""
    path = Path(source)
    if path.exists() or ":" not in source:
        return path, None
    head, _, tail = source.rpartition(":")
    return Path(head), tail or None


def check_distinct_datasets(sources: list[tuple[Path, str | None]]) -> None:
    """Raise InvalidInputError if (dataset, filter) ``sources`` repeat episodes: a dataset twice
    with the same filter, or whole and filtered (its episodes would count twice, and could land
    in two calibration splits at once). Different filters of one dataset (``:success`` and
    ``:failure``) are taken as the user's split."""
    filters: dict[Path, list[str | None]] = {}
    for path, filter_name in sources:
        seen = filters.setdefault(Path(path).resolve(), [])
        if filter_name in seen or (seen and (filter_name is None or None in seen)):
            raise InvalidInputError(
                f"{path} is listed twice ({' and '.join(_shown(f) for f in [*seen, filter_name])}"
                "); its episodes would count twice: give each dataset once"
            )
        seen.append(filter_name)


def _shown(filter_name: str | None) -> str:
    return f":{filter_name}" if filter_name else "whole"


def load_episodes(sources: list[str]) -> tuple[list[MonitoredEpisode], dict]:
    """Monitored episodes of every source, in order, and the first source's dataset info extra.

    Raises:
        InvalidInputError: a source without the monitor's per-inference extras, or sources that
            disagree on the policy fingerprint.
        CorruptFileError, UnknownNameError: from the store (missing/corrupt file, unknown filter).
    """
    from robofail.data import open_dataset

    check_distinct_datasets([split_source(source) for source in sources])
    episodes: list[MonitoredEpisode] = []
    first_extra: dict | None = None
    fingerprints: dict[str, str] = {}
    for source in sources:
        path, filter_name = split_source(source)
        if not path.exists():
            raise InvalidInputError(f"{path}: no such dataset file or folder")
        with open_dataset(path) as dataset:
            extra = dict(dataset.info.extra)
            extra.setdefault("task", dataset.info.task)
            if first_extra is None:
                first_extra = extra
            fingerprints[str(path)] = str(extra.get("policy_fingerprint", ""))
            positions = dataset.mask(filter_name) if filter_name else range(len(dataset))
            names = dataset.episode_names()
            for position in positions:
                episode = dataset[position]
                missing = [key for key in REQUIRED_EXTRAS if key not in episode.extras]
                if missing:
                    raise InvalidInputError(
                        f"{path}: episode {names[position]} has no {', '.join(missing)}; the "
                        "monitor needs rollouts recorded with their embeddings and sampled "
                        "chunks (robofail rollout, robofail generate --policy, monitored_rollout)"
                    )
                label = episode.label
                perturbation = label.perturbation or {}
                episodes.append(
                    MonitoredEpisode(
                        name=f"{path}#{names[position]}",
                        embeddings=episode.extras["embeddings"],
                        chunks=episode.extras["sampled_chunks"],
                        inference_steps=episode.extras["inference_steps"].astype(np.int64),
                        length=len(episode.actions),
                        success=bool(label.success),
                        nominal=not perturbation,
                        failure_step=int(label.failure_step),
                        failure_type=label.failure_type,
                        family=str(perturbation.get("kind", "nominal")),
                    )
                )
    known = {fp for fp in fingerprints.values() if fp}
    if len(known) > 1:
        listing = ", ".join(f"{p}: {fp}" for p, fp in fingerprints.items())
        raise InvalidInputError(
            f"the datasets come from different policies ({listing}); pass rollouts of one policy"
        )
    return episodes, first_extra or {}
