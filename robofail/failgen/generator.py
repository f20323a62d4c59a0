"""The failure generator: run perturbed episodes in simulation and keep labelled failures.

Episode ``i`` of a run seeded ``s`` gets the perturbation ``spec.sample(s, i)`` and the initial
conditions of reset seed ``episode_seed(s, i)``: it depends only on (spec, seed, i). It runs on the
bundled task's env wrapped in a :class:`PerturbationWrapper`, controlled by the scripted expert
(``source: expert``; demo-level perturbations edit its keyframes), by the expert that perceives
the object in the (possibly faulted) camera image instead of reading the simulator
(``source: vision_expert``, needs images: camera faults fail it) or by a saved policy
(``source: policy``). The simulator decides success; a failed perturbed episode is labelled with
the perturbation's kind once the perturbation took effect (before that, a failure is the task's
own: ``task_failure`` or ``timeout``).

Results reach the writer in index order from every backend, and the writer closes a shard every
``shard_size`` indices (stored or dropped), so identical settings give identical files whatever
the backend or worker count, and a resumed run continues exactly where the killed one stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym

from robofail.data import NO_FAILURE, DatasetInfo, Episode
from robofail.errors import InvalidInputError, OutputPathError
from robofail.failgen.perturbation import Perturbation, perturbation_type
from robofail.failgen.spec import SOURCES, FailureSpec, resolve_spec
from robofail.failgen.wrappers import PerturbationWrapper
from robofail.parallel import check_backend, check_seed, episode_seed, run_ordered
from robofail.tasks import get_task, make_env
from robofail.tasks.base import MocapTaskEnv
from robofail.tasks.demos import dataset_info, run_expert_episode
from robofail.tasks.expert import Keyframe

CHUNK_EPISODES = 4
"""Episodes per job sent to a worker (fewer, larger messages)."""

_cache: dict[str, Any] = {}  # per process: "env/<task>/<image>" -> env, "policy/<dir>" -> policy


def task_env(task: str, *, image: bool = False) -> MocapTaskEnv:
    """This process's env of bundled task ``task`` (with camera images in the observation when
    ``image``), created once and reused."""
    name = get_task(task).name
    key = f"env/{name}/{image}"
    if key not in _cache:
        _cache[key] = make_env(name, obs_image=image)
    return _cache[key]


def load_policy(policy_dir: str | Path) -> Any:
    """This process's copy of the saved flow policy at ``policy_dir``, loaded once."""
    key = f"policy/{Path(policy_dir).resolve()}"
    if key not in _cache:
        from robofail.policy.flow import FlowChunkPolicy

        _cache[key] = FlowChunkPolicy.load(policy_dir)
    return _cache[key]


def check_supported(perturbation: type[Perturbation] | Perturbation, env: gym.Env) -> None:
    """Raise InvalidInputError, naming the kind and the task, if the perturbation cannot act on
    ``env`` (e.g. a gripper perturbation on a task without a gripper)."""
    base = env.unwrapped
    reason = perturbation.unsupported_reason(base)
    if reason:
        task = getattr(base, "task_name", type(base).__name__)
        raise InvalidInputError(
            f"perturbation {perturbation.kind!r} cannot act on task {task!r}: {reason}"
        )


def check_vision_source(env: gym.Env) -> None:
    """Raise InvalidInputError, naming ``source: vision_expert``, unless ``env``'s task has a
    vision expert and ``env`` renders the camera image it perceives."""
    base = env.unwrapped
    get_task(base.task_name).expert_type(vision=True)  # raises when the task has none
    if not base.obs_image:
        raise InvalidInputError(
            "source: vision_expert perceives the object in the camera image; render images "
            "(robofail generate --image, or an env made with obs_image=True)"
        )


def run_perturbed_episode(
    task: str,
    perturbation: Perturbation | None,
    *,
    seed: int,
    index: int,
    source: str = "expert",
    policy: Any = None,
    samples: int = 32,
    env: gym.Env | None = None,
) -> Episode:
    """Run episode ``index`` of a run seeded ``seed`` under ``perturbation`` and label it.

    Args:
        task: bundled task name.
        perturbation: a fresh perturbation object (its parameters chosen by a spec, or explicitly
            by a boundary search), or None for a nominal episode.
        seed, index: the env resets with ``episode_seed(seed, index)``; the perturbation's own
            random draws derive from the same pair.
        source: ``"expert"`` (the task's scripted expert), ``"vision_expert"`` (the expert
            perceiving the object in ``env``'s camera image) or ``"policy"`` (``policy`` closed
            loop).
        policy: a :class:`~robofail.policy.protocol.ChunkPolicy`, needed when source is policy.
        samples: chunks drawn per policy inference (recorded for the monitor).
        env: the env of ``task`` to use (e.g. one rendering images); default: this process's
            cached state-only one.

    Returns:
        The episode. Its label has ``perturbation`` = ``perturbation.describe()``, ``onset_step``
        and ``phase_at_onset`` where it first took effect, ``failure_type`` its kind when the
        episode failed after the onset (``"none"`` on success), ``failure_step`` the first step
        the task's failure predicate held (else the episode's end), ``seed`` the reset seed.

    Raises:
        InvalidInputError: the perturbation cannot act on the task, a demo-level perturbation
            with a policy or the vision expert, an unknown source, source policy without a
            policy, or source vision_expert on a task without one or an env without images.
    """
    base = task_env(task) if env is None else env.unwrapped
    if base.task_name != get_task(task).name:
        raise InvalidInputError(f"env is of task {base.task_name!r}, not {task!r}")
    if source not in SOURCES:
        raise InvalidInputError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "policy" and policy is None:
        raise InvalidInputError("source 'policy' needs a policy to run")
    if source == "vision_expert":
        check_vision_source(base)
    if perturbation is None:
        wrapped: gym.Env = base
    else:
        check_supported(perturbation, base)
        if source != "expert" and perturbation.level == "demo":
            raise InvalidInputError(
                f"{perturbation.kind} edits the privileged scripted expert's keyframes; it "
                f"cannot perturb source {source!r}"
            )
        wrapped = PerturbationWrapper(base, perturbation, seed=seed)
    try:
        if source != "policy":
            hook = None
            if perturbation is not None:
                hook = partial(_keyframe_hook, perturbation, wrapped)
            episode = run_expert_episode(
                wrapped,
                seed=seed,
                index=index,
                keyframe_hook=hook,
                source=f"{source}/{base.task_name}/{seed}/{index}",
                vision=source == "vision_expert",
            )
        else:
            from robofail.policy.rollout import policy_episode

            episode = policy_episode(
                wrapped,
                policy,
                seed=episode_seed(seed, index),
                samples=samples,
                source=f"rollout/{base.task_name}/{seed}/{index}",
            )
    finally:
        if perturbation is not None:
            wrapped.close()  # undoes the perturbation's model edits
    return _relabel(episode, perturbation, base.phase_names)


def _keyframe_hook(
    perturbation: Perturbation, wrapped: PerturbationWrapper, phase: str, keyframe: Keyframe
) -> Keyframe:
    """The expert's keyframe as the perturbation edits it at the wrapper's current step."""
    return perturbation.on_keyframe(phase, keyframe, wrapped.steps)


def _relabel(
    episode: Episode, perturbation: Perturbation | None, phase_names: tuple[str, ...]
) -> Episode:
    """The episode with its label completed by the perturbation's kind, parameters and onset."""
    if perturbation is None:
        return episode
    label = episode.label
    onset = min(perturbation.onset_step, episode.length - 1)
    phase = phase_names[int(episode.phases[onset])] if onset >= 0 else ""
    failed_by_it = not label.success and onset >= 0
    new_label = replace(
        label,
        failure_type=perturbation.kind if failed_by_it else label.failure_type,
        perturbation=perturbation.describe(),
        onset_step=onset,
        phase_at_onset=phase,
    )
    return replace(episode, label=new_label)


# --------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class EpisodeOutcome:
    """What a worker returns for one episode: the summary fields, and the episode if kept."""

    index: int
    kind: str
    """Perturbation kind, or ``"none"`` for a nominal episode."""
    success: bool
    onset_step: int
    failure_step: int
    episode: Episode | None
    """The episode when the spec keeps it, else None (not sent back)."""


@dataclass(frozen=True)
class EpisodeSettings:
    """How a worker runs perturbed episodes of one run (small, picklable)."""

    task: str
    seed: int
    source: str
    policy_dir: str | None
    samples: int
    image: bool

    def run(self, perturbation: Perturbation | None, index: int) -> Episode:
        """Episode ``index`` under ``perturbation``, on this process's cached env and policy."""
        policy = load_policy(self.policy_dir) if self.source == "policy" else None
        return run_perturbed_episode(
            self.task,
            perturbation,
            seed=self.seed,
            index=index,
            source=self.source,
            policy=policy,
            samples=self.samples,
            env=task_env(self.task, image=self.image),
        )


@dataclass(frozen=True)
class _RunSettings:
    """What every worker needs besides the per-episode perturbations (small, picklable)."""

    episodes: EpisodeSettings
    keep_all: bool


def _run_chunk(
    settings: _RunSettings, items: list[tuple[int, Perturbation | None]]
) -> list[EpisodeOutcome]:
    """Worker entry point: run (index, perturbation) pairs, return their outcomes in order."""
    outcomes = []
    for index, perturbation in items:
        episode = settings.episodes.run(perturbation, index)
        label = episode.label
        keep = settings.keep_all or not label.success
        outcomes.append(
            EpisodeOutcome(
                index=index,
                kind=perturbation.kind if perturbation is not None else NO_FAILURE,
                success=label.success,
                onset_step=label.onset_step,
                failure_step=label.failure_step,
                episode=episode if keep else None,
            )
        )
    return outcomes


# --------------------------------------------------------------------------- summary
@dataclass
class KindStats:
    """Counts of one perturbation kind in a run."""

    attempted: int = 0
    failed: int = 0
    succeeded: int = 0
    onset_to_failure: list[int] = field(default_factory=list)
    """Steps from onset to failure of each failure whose perturbation took effect."""

    @property
    def median_onset_to_failure(self) -> float:
        """Median steps from onset to failure (NaN when there is none)."""
        return statistics.median(self.onset_to_failure) if self.onset_to_failure else math.nan

    def add(self, outcome: EpisodeOutcome) -> None:
        self.attempted += 1
        if outcome.success:
            self.succeeded += 1
        else:
            self.failed += 1
            if outcome.onset_step >= 0:
                self.onset_to_failure.append(outcome.failure_step - outcome.onset_step)


@dataclass
class Summary:
    """What one :func:`generate` call did."""

    task: str
    out_dir: Path
    attempted: int = 0
    """Episodes run by this call."""
    kept: int = 0
    """Episodes of this call stored in the dataset."""
    already_done: int = 0
    """Indices a resumed run found processed and skipped."""
    kinds: dict[str, KindStats] = field(default_factory=dict)
    """Per perturbation kind (``"none"``: nominal), sorted by name."""
    seconds: float = 0.0

    def add(self, outcome: EpisodeOutcome) -> None:
        self.attempted += 1
        self.kept += outcome.episode is not None
        self.kinds.setdefault(outcome.kind, KindStats()).add(outcome)

    def table(self) -> str:
        """A plain-text table: one row per perturbation kind, then the totals."""
        rate = self.attempted / self.seconds if self.seconds > 0 else math.nan
        lines = [
            f"{'perturbation':<18}{'attempted':>10}{'failed':>8}{'success':>9}"
            f"{'fail %':>8}{'onset->fail':>13}"
        ]
        for kind in sorted(self.kinds):
            s = self.kinds[kind]
            median = s.median_onset_to_failure
            lines.append(
                f"{kind:<18}{s.attempted:>10}{s.failed:>8}{s.succeeded:>9}"
                f"{100 * s.failed / max(s.attempted, 1):>7.1f}%"
                f"{'-' if math.isnan(median) else f'{median:g}':>13}"
            )
        resumed = f", {self.already_done} already done" if self.already_done else ""
        lines.append(
            f"{self.attempted} episodes run{resumed}, {self.kept} kept in {self.out_dir}; "
            f"{self.seconds:.1f} s ({rate:.1f} episodes/s)"
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-serialisable dict."""
        return {
            "task": self.task,
            "out_dir": str(self.out_dir),
            "attempted": self.attempted,
            "kept": self.kept,
            "already_done": self.already_done,
            "seconds": self.seconds,
            "kinds": {
                kind: {
                    "attempted": s.attempted,
                    "failed": s.failed,
                    "succeeded": s.succeeded,
                    "median_onset_to_failure": None
                    if math.isnan(s.median_onset_to_failure)
                    else s.median_onset_to_failure,
                }
                for kind, s in sorted(self.kinds.items())
            },
        }


# --------------------------------------------------------------------------- generate
def generate(
    task: str,
    spec: str | Path | FailureSpec,
    n: int,
    out_dir: str | Path,
    *,
    seed: int = 0,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    policy_dir: str | Path | None = None,
    samples: int = 32,
    resume: bool = False,
    overwrite: bool = False,
    shard_size: int = 100,
    image: bool = False,
    progress: bool = True,
) -> Summary:
    """Generate episodes ``0 .. n-1`` of ``spec`` on ``task`` into the shard folder ``out_dir``.

    Args:
        task: bundled task name.
        spec: a :class:`FailureSpec`, a spec file, or a shipped spec name (``failures``...).
        n: number of episode indices to run (a resumed run completes the missing ones).
        out_dir: output folder (shards + ``manifest.json``); must not exist or be empty unless
            ``resume`` or ``overwrite``.
        seed: run seed; episode ``i`` depends only on (spec, seed, i).
        workers: worker processes (local pool) or Ray CPUs.
        backend: ``local`` (process pool), ``inprocess`` or ``ray``.
        address: Ray cluster address (``--backend ray`` only); default: a local Ray.
        policy_dir: saved policy folder, required by (and only allowed with) ``source: policy``.
        samples: chunks per policy inference stored for the monitor.
        resume: continue the dataset in ``out_dir``; it must have the same task, spec and seed.
        overwrite: delete the dataset in ``out_dir`` first.
        shard_size: episode indices (kept or dropped) per shard.
        image: also record camera images (needed by camera faults and image policies).
        progress: show a progress bar.

    Returns:
        The run's :class:`Summary`.

    Raises:
        InvalidInputError, UnknownNameError, CorruptFileError, OutputPathError: bad input,
            raised before anything is written.
    """
    start = time.perf_counter()
    name = get_task(task).name
    spec = resolve_spec(spec, name)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"number of episodes must be an int >= 1, got {n!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidInputError(f"samples must be an int >= 1, got {samples!r}")
    check_backend(backend, workers, address)
    check_seed(seed)
    if resume and overwrite:
        raise InvalidInputError("pass either --resume or --overwrite, not both")
    env = task_env(name, image=image)
    policy_fingerprint = check_policy(spec, policy_dir, env)
    for entry in spec.entries:
        check_supported(perturbation_type(entry.kind), env)
    info = dataset_info(
        env,
        generator="robofail.failgen",
        spec_fingerprint=spec.fingerprint(),
        spec=spec_content(spec),
        seed=seed,
        source=spec.source,
        policy_fingerprint=policy_fingerprint,
        samples=samples if spec.source == "policy" else None,
    )
    out = Path(out_dir)
    _prepare_output(out, info, resume=resume, overwrite=overwrite)

    from tqdm import tqdm

    from robofail.data import ShardedWriter

    summary = Summary(task=name, out_dir=out)
    settings = _RunSettings(
        episodes=EpisodeSettings(
            task=name,
            seed=seed,
            source=spec.source,
            policy_dir=None if policy_dir is None else str(policy_dir),
            samples=samples,
            image=image,
        ),
        keep_all=spec.keep == "all",
    )
    with ShardedWriter(out, info, shard_size=shard_size) as writer:
        done = writer.completed_indices()
        summary.already_done = len(done & set(range(n)))
        todo = [i for i in range(n) if i not in done]
        chunks = [todo[i : i + CHUNK_EPISODES] for i in range(0, len(todo), CHUNK_EPISODES)]
        jobs = [(settings, [(i, spec.sample(seed, i)) for i in chunk]) for chunk in chunks]
        results = run_ordered(_run_chunk, jobs, backend=backend, workers=workers, address=address)
        bar = tqdm(
            total=n, initial=n - len(todo), desc=f"generate {name}", unit="ep", disable=not progress
        )
        with contextlib.closing(results), bar:
            for outcomes in results:
                for outcome in outcomes:
                    if outcome.episode is None:
                        writer.skip(outcome.index)
                    else:
                        writer.add(outcome.index, outcome.episode)
                    summary.add(outcome)
                bar.update(len(outcomes))
    summary.seconds = time.perf_counter() - start
    return summary


def spec_content(spec: FailureSpec) -> dict[str, Any]:
    """The spec's canonical content (JSON): task, source, keep and entries with their ranges."""
    return {
        "task": spec.task,
        "source": spec.source,
        "keep": spec.keep,
        "perturbations": [
            {
                "kind": entry.kind,
                "weight": entry.weight,
                "params": {name: list(bounds) for name, bounds in sorted(entry.ranges.items())},
            }
            for entry in spec.entries
        ],
    }


def check_policy(spec: FailureSpec, policy_dir: str | Path | None, env: MocapTaskEnv) -> str:
    """The policy's fingerprint ("" for an expert source), after checking that the spec's
    source fits the task and ``env`` (the vision expert needs one and images)."""
    if spec.source != "policy":
        if policy_dir is not None:
            raise InvalidInputError(
                f"spec {spec.name} runs a scripted expert (source: {spec.source}); --policy is "
                "only for specs with source: policy"
            )
        if spec.source == "vision_expert":
            check_vision_source(env)
        return ""
    if policy_dir is None:
        raise InvalidInputError(
            f"spec {spec.name} perturbs a policy (source: policy); pass --policy DIR"
        )
    policy = load_policy(policy_dir)
    config = policy.config
    same_fields = list(config.state_names) == list(env.state_names)
    if not same_fields or len(policy.action_names) != len(env.action_names):
        raise InvalidInputError(
            f"policy {policy_dir} was trained for {config.task!r} with other observation "
            f"or action fields than task {env.task_name!r}"
        )
    if config.image_size and not env.obs_image:
        raise InvalidInputError(f"policy {policy_dir} sees camera images; pass --image")
    if config.image_size and list(config.image_size) != list(env.image_size):
        raise InvalidInputError(
            f"policy {policy_dir} expects {config.image_size} images, the task renders "
            f"{list(env.image_size)}"
        )
    return str(policy.fingerprint)


_SHARD = re.compile(r"shard_\d+\.h5")


def _prepare_output(out: Path, info: DatasetInfo, *, resume: bool, overwrite: bool) -> None:
    """Check ``out`` can take this run (refusing a mismatched resume); delete it on overwrite.

    Creates nothing: the writer creates the folder once every input is checked.
    """
    from robofail.data.store import MANIFEST_NAME, is_temporary_file

    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise OutputPathError(f"cannot write {out}: {folder} is a file, not a folder")
            break
    if not out.exists() or all(is_temporary_file(p) for p in out.iterdir()):
        return  # new, or only what a writer killed before its first manifest left
    manifest = out / MANIFEST_NAME
    if not manifest.is_file():
        raise OutputPathError(
            f"{out} exists and is not a dataset folder (no {MANIFEST_NAME}); choose another --out"
        )
    if overwrite:
        others = sorted(
            p.name
            for p in out.iterdir()
            if p.name != MANIFEST_NAME and not is_temporary_file(p) and not _SHARD.fullmatch(p.name)
        )
        if others:
            raise OutputPathError(
                f"{out} holds other files next to its dataset ({', '.join(others[:3])}); "
                "--overwrite replaces the folder whole: move them or give another --out"
            )
        shutil.rmtree(out)
        return
    if not resume:
        raise OutputPathError(
            f"{out} already holds a dataset; pass --resume to continue it or --overwrite to "
            "replace it"
        )
    from robofail.data import open_dataset

    with open_dataset(out) as dataset:
        stored = dataset.info
    mine = {"task": info.task, **info.extra}
    theirs = {"task": stored.task, **stored.extra}
    for key, what in (
        ("task", "task"),
        ("spec_fingerprint", "spec"),
        ("seed", "seed"),
        ("source", "source"),
        ("policy_fingerprint", "policy"),
    ):
        if theirs.get(key) != mine.get(key):
            raise InvalidInputError(
                f"cannot resume {out}: it was generated with another {what} "
                f"({key} {json.dumps(theirs.get(key))}, this run {json.dumps(mine.get(key))}); "
                "use the same settings or another --out"
            )
