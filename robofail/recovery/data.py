"""Recovery data: the scripted expert takes over failed episodes and rescues them in simulation.

For every failed episode of a generated failure dataset the expert restarts from a few of its
steps, all before the failure predicate first held:

- ``onset``: the step the perturbation took effect (the episode's start for a failure of the
  policy's own);
- ``after_onset``: points between the onset and the failure (``after`` fractions of the way);
- ``first_alarm``: the step of the monitor's first alarm, when a monitor artifact is given and the
  episode stores the policy's inference inputs (monitored rollouts do).

Each start restores the episode *exactly*: a fresh env reset with the episode's seed under the same
perturbation (rebuilt from its label), then the episode's executed actions replayed up to the
start. Replaying, rather than only setting the simulator state, also restores what the
perturbation carries between steps (the action-delay queue, its noise stream, a push's timing);
the restored simulator state is checked bit for bit against the stored one. From there the
*teacher* (``settings.teacher``), which replans every step, acts until the episode's time limit,
optionally with DART-style noise on the executed position actions (the recorded actions stay the
teacher's labels). Only simulator-verified successes are kept.

**Two experts, two recoverabilities** (:data:`EXPERTS`). The ``privileged`` expert plans from
the simulator's true state; the ``observation`` expert
(:class:`~robofail.tasks.expert.ObservationExpert`) runs the same planner on the state
observation the controller sees, faults included. An observation fault cannot stop the
privileged expert, but the recovery policy acts on the faulted observation too, so the
privileged expert overstates what an observation-driven recovery can do. Besides the teacher's
runs, the other expert runs once, clean, from every start; its verified rescues are stored too
(``extras["expert"]`` tells whose a recovery is) and give that expert's recoverability, but are
never trained on: :func:`~robofail.recovery.train.recovery_pairs` keeps the teacher's episodes
only. The teacher is the privileged expert by default (teacher-student: its labels do not
inherit the fault).

**DAgger rounds** (``settings.learner``: an exported recovery policy), from the starts the clean
teacher rescues (elsewhere its labels would teach nothing). A policy trained only on the
teacher's own trajectories drifts off them once it acts on faulted observations, into states the
teacher never visited. A DAgger round restarts from the same steps, lets the *learner* act (its
window of states filled with the observations that preceded the start, as the supervisor's is),
and has the teacher label every state the learner visits. Labels are
kept only where they mean something: a learner run that succeeds is kept whole; from one that does
not, the teacher takes over at checkpoints (every ``check_every`` steps, the latest
:data:`MAX_CHECKS`, latest first) and the
learner's steps up to the latest checkpoint it rescues are kept, together with that verified
rescue; when it rescues none, nothing is kept.

A recovery episode stores what a recovery policy learns from: ``obs["state"]`` as the controller
saw it (observation faults included), ``extras["history"]``, the :data:`HISTORY` observations
the controller saw before the start (for policies that look at a window of states), and the
expert's actions. Its label keeps the source's seed
and perturbation; ``source`` is ``<failure source>@<start step>``; extras hold ``start_step``,
``start_kind`` (index into :data:`START_KINDS`), ``failure_type`` (index into the dataset's
``extra["failure_types"]``), ``expert`` (index into :data:`EXPERTS`) and, in DAgger data,
``learner_steps`` (steps the learner acted: the
episode's length for a learner run, 0 for the expert's rescue that follows a failed one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from robofail.data import DatasetInfo, Episode, open_dataset, write_episodes
from robofail.data.recorder import EpisodeRecorder
from robofail.errors import InvalidInputError
from robofail.parallel import episode_seed, run_ordered

START_KINDS = ("onset", "after_onset", "first_alarm")
EXPERTS = ("privileged", "observation")
"""The scripted experts: planning from the simulator's state, or from the state observation."""
HISTORY = 16
"""Observations before a recovery's start kept in ``extras["history"]`` (the longest window a
recovery policy can be trained with from the data)."""
MAX_CHECKS = 3
"""Checkpoints at most the expert takes over from to verify a failed DAgger learner run."""


@dataclass(frozen=True)
class RecoverySettings:
    """How recovery data is collected (small, picklable: sent to every worker).

    Attributes:
        after: fractions of the way from onset to failure to restart from, besides the onset.
        noise: std of the Gaussian noise on the executed position actions of each expert run, in
            action units; one run per entry and start (0 = the clean expert).
        monitor: calibration artifact folder; adds the first-alarm starts.
        seed: seed of the noise draws.
        learner: exported recovery policy (.onnx) for a DAgger round: it acts from every start
            and the expert labels the states it visits (see the module docstring); None: the
            expert acts (plain recovery data).
        beta: DAgger's mixing: per step, the probability that the expert's action runs instead of
            the learner's.
        check_every: learner steps between the checkpoints the expert takes over from to verify
            a failed learner run's labels.
        teacher: the expert (one of :data:`EXPERTS`) whose verified rescues are the training
            data; the other one runs once, clean, from every start to measure its
            recoverability (plain recovery data only, not DAgger rounds).
    """

    after: tuple[float, ...] = (0.5,)
    noise: tuple[float, ...] = (0.0, 0.1)
    monitor: str | None = None
    seed: int = 0
    learner: str | None = None
    beta: float = 0.0
    check_every: int = 10
    teacher: str = "privileged"

    def __post_init__(self) -> None:
        if any(not 0 < f < 1 for f in self.after):
            raise InvalidInputError(f"--after fractions must be in (0, 1), got {self.after}")
        if not self.noise or any(not (math.isfinite(s) and s >= 0) for s in self.noise):
            raise InvalidInputError(f"--noise needs finite stds >= 0, got {self.noise}")
        if not 0 <= self.beta <= 1:
            raise InvalidInputError(f"--beta must be in [0, 1], got {self.beta}")
        if self.check_every < 1:
            raise InvalidInputError(f"--check-every must be >= 1, got {self.check_every}")
        if self.teacher not in EXPERTS:
            raise InvalidInputError(
                f"--teacher must be one of {', '.join(EXPERTS)}, got {self.teacher!r}"
            )


@dataclass
class RecoverySummary:
    """What :func:`collect_recoveries` did, per failure type."""

    failures: dict[str, int] = field(default_factory=dict)
    """Failed source episodes per failure type."""
    recovered: dict[str, int] = field(default_factory=dict)
    """Of those, episodes with at least one verified recovery by the teacher."""
    judged: dict[str, int] = field(default_factory=dict)
    """Of those, episodes the other expert rescued, clean, from at least one start (empty for
    DAgger rounds, which do not run it)."""
    attempts: dict[str, int] = field(default_factory=dict)
    """Expert runs started per failure type."""
    kept: dict[str, int] = field(default_factory=dict)
    """Verified recoveries (episodes written) per failure type."""
    not_replayable: int = 0
    """Starts whose replay did not reproduce the stored state (skipped)."""

    teacher: str = "privileged"
    """Which of :data:`EXPERTS` ``recovered`` counts; ``judged`` counts the other one."""

    def add(
        self, failure_type: str, attempts: int, kept: int, judged: int | None, mismatches: int
    ) -> None:
        """Count one failed episode: teacher runs made and kept, the other expert's rescues
        (None: it did not run), starts that did not replay."""
        for table, value in (
            (self.failures, 1),
            (self.recovered, int(kept > 0)),
            (self.attempts, attempts),
            (self.kept, kept),
        ):
            table[failure_type] = table.get(failure_type, 0) + value
        if judged is not None:
            self.judged[failure_type] = self.judged.get(failure_type, 0) + int(judged > 0)
        self.not_replayable += mismatches

    def recoverability(self) -> dict[str, dict[str, float]]:
        """Per expert (:data:`EXPERTS`), the share of failed episodes of each type it rescued
        from at least one start."""
        other = EXPERTS[1 - EXPERTS.index(self.teacher)]
        return {
            expert: {t: counts[t] / n for t, n in sorted(self.failures.items()) if t in counts}
            for expert, counts in ((self.teacher, self.recovered), (other, self.judged))
        }

    def table(self) -> str:
        """Plain-text table: failure type, failures, recovered % per expert, runs, kept (the
        teacher's rescues)."""
        shares = self.recoverability()
        lines = [
            f"{'failure type':<18}{'failures':>9}{'privileged':>11}{'observable':>11}"
            f"{'runs':>7}{'kept':>7}"
        ]
        for name in sorted(self.failures):
            cells = [
                f"{shares[e][name]:>11.0%}" if name in shares[e] else f"{'-':>11}" for e in EXPERTS
            ]
            lines.append(
                f"{name:<18}{self.failures[name]:>9}{''.join(cells)}"
                f"{self.attempts[name]:>7}{self.kept[name]:>7}"
            )
        if self.not_replayable:
            lines.append(f"{self.not_replayable} starts skipped: replay did not match the state")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "recovered": self.recovered,
            "judged": self.judged,
            "teacher": self.teacher,
            "attempts": self.attempts,
            "kept": self.kept,
            "recoverability": self.recoverability(),
            "not_replayable": self.not_replayable,
        }


def start_steps(
    episode: Episode, settings: RecoverySettings, alarm_step: int | None = None
) -> list[tuple[int, int]]:
    """(step, start kind index) pairs to restart ``episode`` from, sorted, each before the step
    at which its failure predicate first held."""
    label = episode.label
    end = label.failure_step if label.failure_step >= 0 else episode.length
    onset = max(label.onset_step, 0)
    starts = {}
    if onset < end:
        starts[onset] = START_KINDS.index("onset")
        for fraction in settings.after:
            step = onset + round(fraction * (end - onset))
            if onset < step < end:
                starts.setdefault(step, START_KINDS.index("after_onset"))
    if alarm_step is not None and 0 <= alarm_step < end:
        starts[alarm_step] = START_KINDS.index("first_alarm")
    return sorted(starts.items())


def first_alarm_step(episode: Episode, monitor: Any) -> int | None:
    """Control step of ``monitor``'s first alarm on a monitored rollout, or None (no alarm, or
    the episode has no stored inference inputs)."""
    extras = episode.extras
    if not {"embeddings", "sampled_chunks", "inference_steps"} <= set(extras):
        return None
    monitor.reset()
    for embedding, chunks, step in zip(
        extras["embeddings"], extras["sampled_chunks"], extras["inference_steps"], strict=True
    ):
        if monitor.update(embedding, chunks).alarm:
            return int(step)
    return None


def restore(env: Any, episode: Episode, step: int) -> tuple[Any, dict[str, np.ndarray] | None]:
    """Put ``env`` (a bundled task env, unwrapped) where ``episode`` was before action ``step``.

    Returns:
        (the env to step: wrapped in the episode's perturbation when it has one, the observation
        the controller saw at ``step``), or (env, None) when the replay did not reproduce the
        stored simulator state bit for bit.
    """
    from robofail.failgen.perturbation import make_perturbation
    from robofail.failgen.wrappers import PerturbationWrapper
    from robofail.policy.rollout import as_obs_dict

    label = episode.label
    wrapped = env
    if label.perturbation:
        params = {k: v for k, v in label.perturbation.items() if k != "kind"}
        run_seed = _run_seed(label.source)
        perturbation = make_perturbation(label.perturbation["kind"], **params)
        wrapped = PerturbationWrapper(env, perturbation, seed=run_seed)
    obs, _ = wrapped.reset(seed=label.seed)
    executed = episode.extras.get("executed_actions", episode.actions)
    for t in range(step):
        obs, *_ = wrapped.step(executed[t])
    if not np.array_equal(env.get_state(), episode.states[step]):
        return wrapped, None
    return wrapped, as_obs_dict(obs)


def _run_seed(source: str) -> int:
    """The generator run seed in a failure's source id (``rollout/<task>/<seed>/<i>`` or
    ``expert/<task>/<seed>/<i>``): the perturbation wrapper's seed."""
    parts = source.split("/")
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        raise InvalidInputError(
            f"cannot tell the generator run seed from source {source!r}; recovery data needs "
            "failures written by `robofail generate`"
        ) from None


def _takeover(
    wrapped: Any,
    obs: dict[str, np.ndarray],
    choose: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray],
    *,
    expert: str,
    noise: float,
    rng: np.random.Generator,
) -> Episode:
    """Step ``wrapped`` from its current state to the time limit or the end of the episode, the
    task's ``expert`` (one of :data:`EXPERTS`; it observes what the controller sees) labelling
    every step; ``choose(obs, label)`` gives the action that runs (then ``noise`` on the position
    actions).

    Returns:
        The episode: ``actions`` are the expert's labels, ``extras["executed_actions"]`` what ran.
    """
    from robofail.policy.rollout import as_obs_dict
    from robofail.tasks import make_expert

    base = wrapped.unwrapped
    labeller = make_expert(base, observation=expert == "observation")
    dims = list(base.position_action_dims)
    recorder = EpisodeRecorder()
    executed = []
    while base.steps < base.max_episode_steps:
        recorder.before_action(obs, base.get_state(), base.phase_index())
        labeller.observe(obs)
        label = labeller.act()
        applied = choose(obs, label)
        if noise > 0:
            applied[dims] = np.clip(applied[dims] + rng.normal(0.0, noise, len(dims)), -1, 1)
        obs, reward, terminated, truncated, info = wrapped.step(applied)
        obs = as_obs_dict(obs)
        recorder.after_action(label, reward, terminated or truncated, info)
        executed.append(applied)
        if terminated or truncated:
            break
    return recorder.build(
        final_state=base.get_state(),
        seed=0,
        source="",
        extras={"executed_actions": np.stack(executed).astype(np.float32)},
    )


def expert_takeover(
    wrapped: Any,
    obs: dict[str, np.ndarray],
    *,
    noise: float,
    rng: np.random.Generator,
    expert: str = "privileged",
) -> Episode:
    """Run the task's ``expert`` (one of :data:`EXPERTS`) from the current state of ``wrapped``
    to the time limit.

    Returns:
        The recovery episode; ``actions`` are the expert's labels, ``extras["executed_actions"]``
        the (noisy) actions that ran.
    """
    return _takeover(
        wrapped, obs, lambda _obs, label: label.copy(), expert=expert, noise=noise, rng=rng
    )


def learner_takeover(
    wrapped: Any,
    obs: dict[str, np.ndarray],
    history: np.ndarray,
    learner: Any,
    *,
    beta: float,
    noise: float,
    rng: np.random.Generator,
    expert: str = "privileged",
) -> Episode:
    """Run ``learner`` (a :class:`~robofail.recovery.runtime.RecoveryPolicy`) from the current
    state of ``wrapped`` to the time limit or the end of the episode, ``expert`` (one of
    :data:`EXPERTS`) labelling every step; with probability ``beta`` per step the expert's
    action runs instead.

    ``history`` (P, S): the observations the controller saw before this one, oldest first (the
    learner's window starts with them). The learner's chunks run ``exec_horizon`` actions at a
    time, as under the supervisor.

    Returns:
        The episode: ``actions`` are the expert's labels, ``extras["executed_actions"]`` what ran
        (with ``noise`` on the position actions).
    """
    from collections import deque

    low, high = wrapped.action_space.low, wrapped.action_space.high
    window: deque[np.ndarray] = deque(maxlen=learner.obs_horizon)
    first = history[0] if len(history) else obs["state"]
    window.extend([first] * learner.obs_horizon)
    window.extend(np.asarray(history, dtype=np.float32)[-learner.obs_horizon :])
    queue: list[np.ndarray] = []

    def choose(obs: dict[str, np.ndarray], label: np.ndarray) -> np.ndarray:
        window.append(np.asarray(obs["state"], dtype=np.float32))
        if not queue:
            seen = window[-1] if learner.obs_horizon == 1 else np.stack(window)
            queue.extend(learner.act(seen)[: learner.exec_horizon])
        applied = np.clip(queue.pop(0), low, high).astype(np.float32)
        return label.copy() if rng.random() < beta else applied

    return _takeover(wrapped, obs, choose, expert=expert, noise=noise, rng=rng)


def _history(episode: Episode, step: int) -> np.ndarray:
    """The :data:`HISTORY` observations the controller saw before ``step`` of ``episode``,
    oldest first, padded with its first one (a window starts filled with it)."""
    states = episode.obs["state"]
    past = states[max(0, step - HISTORY) : step]
    pad = np.repeat(states[:1], HISTORY - len(past), axis=0)
    return np.concatenate([pad, past]).astype(np.float32)


def _dagger_runs(
    env: Any,
    episode: Episode,
    step: int,
    learner: Any,
    settings: RecoverySettings,
    noise: float,
    rng: np.random.Generator,
) -> tuple[int, list[Episode], bool]:
    """One DAgger run from ``step`` of ``episode``: (runs made, kept episodes, replay mismatch).

    The kept episodes are the learner's labelled steps (all of them when it succeeded, else up to
    the latest checkpoint the expert rescues from) and that verified rescue.
    """

    from robofail.policy.rollout import as_obs_dict

    wrapped, obs = restore(env, episode, step)
    try:
        if obs is None:
            return 0, [], True
        history = _history(episode, step)
        run = learner_takeover(
            wrapped,
            obs,
            history,
            learner,
            beta=settings.beta,
            noise=noise,
            rng=rng,
            expert=settings.teacher,
        )
    finally:
        if wrapped is not env:
            wrapped.close()
    run = replace(
        run,
        extras={**run.extras, "history": history, "learner_steps": np.array(run.length, np.int32)},
    )
    if run.label.success:
        return 1, [run], False
    end = run.label.failure_step if run.label.failure_step >= 0 else run.length
    every = settings.check_every
    checkpoints = range((end - 1) // every * every, 0, -every)[:MAX_CHECKS]
    runs = 1
    executed = run.extras["executed_actions"]
    for cut in checkpoints:
        wrapped, obs = restore(env, episode, step)
        try:
            if obs is None:
                return runs, [], True
            for action in executed[:cut]:
                obs, *_ = wrapped.step(action)
            runs += 1
            rescue = expert_takeover(
                wrapped, as_obs_dict(obs), noise=0.0, rng=rng, expert=settings.teacher
            )
        finally:
            if wrapped is not env:
                wrapped.close()
        if rescue.label.success:
            prefix = _head(run, cut)
            seen = np.concatenate([history, run.obs["state"][:cut]])[-HISTORY:]
            rescue = replace(
                rescue,
                extras={**rescue.extras, "history": seen, "learner_steps": np.array(0, np.int32)},
            )
            return runs, [prefix, rescue], False
    return runs, [], False


def _clean_rescue(env: Any, episode: Episode, step: int, expert: str) -> Episode | None:
    """The clean ``expert``'s (one of :data:`EXPERTS`) run from ``step`` of ``episode``, or
    None when the replay did not reproduce the stored state."""
    wrapped, obs = restore(env, episode, step)
    try:
        if obs is None:
            return None
        rng = np.random.default_rng(0)
        return expert_takeover(wrapped, obs, noise=0.0, rng=rng, expert=expert)
    finally:
        if wrapped is not env:
            wrapped.close()


def _head(episode: Episode, steps: int) -> Episode:
    """The first ``steps`` steps of a recorded episode (for training pairs: observations,
    labels, executed actions, history)."""
    extras = dict(episode.extras)
    extras["executed_actions"] = extras["executed_actions"][:steps]
    extras["learner_steps"] = np.array(steps, dtype=np.int32)
    failure_step = episode.label.failure_step
    label = replace(episode.label, failure_step=failure_step if failure_step < steps else steps)
    return replace(
        episode,
        label=label,
        obs={key: value[:steps] for key, value in episode.obs.items()},
        actions=episode.actions[:steps],
        rewards=episode.rewards[:steps],
        dones=episode.dones[:steps],
        states=episode.states[:steps],
        phases=episode.phases[:steps],
        final_state=episode.states[steps] if steps < episode.length else episode.final_state,
        extras=extras,
    )


_cache: dict[str, Any] = {}


def _worker_recover(
    task: str, dataset_path: str, position: int, settings: RecoverySettings, failure_types: list
) -> tuple[str, int, int, int | None, int, list[Episode]]:
    """Pool entry point: every recovery of failure ``position``; (failure type, runs, the
    teacher's kept rescues, the other expert's kept rescues (None in a DAgger round), replay
    mismatches, kept episodes)."""
    from robofail.failgen.generator import task_env

    if _cache.get("dataset_path") != dataset_path:
        _cache.update(dataset_path=dataset_path, dataset=open_dataset(dataset_path))
    if settings.monitor and _cache.get("monitor_path") != settings.monitor:
        from robofail.monitor.runtime import Monitor

        _cache.update(monitor_path=settings.monitor, monitor=Monitor.load(settings.monitor))
    learner = None
    if settings.learner:
        if _cache.get("learner_path") != settings.learner:
            from robofail.recovery.runtime import RecoveryPolicy

            _cache.update(
                learner_path=settings.learner, learner=RecoveryPolicy.load(settings.learner)
            )
        learner = _cache["learner"]
    episode = _cache["dataset"][position]
    env = task_env(task)
    alarm = first_alarm_step(episode, _cache["monitor"]) if settings.monitor else None
    teacher = EXPERTS.index(settings.teacher)
    kept, runs, mismatches = [], 0, 0
    for step, kind in start_steps(episode, settings, alarm):
        start = _dagger_start if learner is not None else _expert_start
        made, episodes, mismatch = start(env, episode, position, step, settings, learner)
        runs, mismatches = runs + made, mismatches + mismatch
        kept += [_as_recovery(e, episode, step, kind, failure_types, who) for who, e in episodes]
    taught = sum(int(e.extras["expert"]) == teacher for e in kept)
    judged = None if learner is not None else len(kept) - taught
    return episode.label.failure_type, runs, taught, judged, mismatches, kept


def _expert_start(
    env: Any,
    episode: Episode,
    position: int,
    step: int,
    settings: RecoverySettings,
    learner: Any,
) -> tuple[int, list[tuple[str, Episode]], int]:
    """The teacher's runs from ``step`` (one per ``settings.noise`` entry) and the other expert's
    clean run: (runs made, (expert, verified rescue) pairs, replay mismatches)."""
    other = EXPERTS[1 - EXPERTS.index(settings.teacher)]
    plan = [(settings.teacher, noise, 10 + run) for run, noise in enumerate(settings.noise)]
    runs, rescues = 0, []
    for expert, noise, stream in [*plan, (other, 0.0, 10 + len(plan))]:
        rng = np.random.default_rng(episode_seed(settings.seed, position, stream))
        wrapped, obs = restore(env, episode, step)
        try:  # closing the wrapper undoes the perturbation's model edits
            if obs is None:
                return runs, rescues, 1
            runs += 1
            rescue = expert_takeover(wrapped, obs, noise=noise, rng=rng, expert=expert)
        finally:
            if wrapped is not env:
                wrapped.close()
        if rescue.label.success:
            history = _history(episode, step)
            rescues.append((expert, replace(rescue, extras={**rescue.extras, "history": history})))
    return runs, rescues, 0


def _dagger_start(
    env: Any,
    episode: Episode,
    position: int,
    step: int,
    settings: RecoverySettings,
    learner: Any,
) -> tuple[int, list[tuple[str, Episode]], int]:
    """DAgger runs from ``step``, one per ``settings.noise`` entry, where the clean teacher
    still rescues (elsewhere its labels teach nothing): (runs made, (teacher, kept episode)
    pairs, replay mismatches)."""
    check = _clean_rescue(env, episode, step, settings.teacher)
    if check is None or not check.label.success:
        return 1, [], int(check is None)
    runs, kept = 1, []
    for run, noise in enumerate(settings.noise):
        rng = np.random.default_rng(episode_seed(settings.seed, position, 10 + run))
        made, episodes, mismatch = _dagger_runs(env, episode, step, learner, settings, noise, rng)
        runs += made
        kept += [(settings.teacher, e) for e in episodes]
        if mismatch:
            return runs, kept, 1
    return runs, kept, 0


def _as_recovery(
    rescue: Episode,
    source: Episode,
    step: int,
    kind: int,
    failure_types: list[str],
    expert: str,
) -> Episode:
    label = replace(
        rescue.label,
        seed=source.label.seed,
        perturbation=source.label.perturbation,
        source=f"{source.label.source}@{step}",
    )
    extras = {
        **rescue.extras,
        "start_step": np.array(step, dtype=np.int32),
        "start_kind": np.array(kind, dtype=np.int8),
        "failure_type": np.array(failure_types.index(source.label.failure_type), np.int16),
        "expert": np.array(EXPERTS.index(expert), np.int8),
    }
    return replace(rescue, label=label, extras=extras)


def collect_recoveries(
    task: str,
    failures: str | Path,
    out: str | Path,
    *,
    settings: RecoverySettings = RecoverySettings(),
    workers: int = 1,
    backend: str = "local",
    limit: int | None = None,
    progress: Any = None,
) -> RecoverySummary:
    """Collect verified expert recoveries of the failures in ``failures``; write them to ``out``.

    Args:
        task: bundled task the failures were generated on (checked against the dataset).
        failures: failure dataset (.h5 file or shard folder) written by ``robofail generate``.
        out: output ``.h5`` file (written atomically).
        settings: starts, noise, monitor.
        workers, backend: where the expert runs (see :func:`robofail.parallel.run_ordered`).
        limit: use only the first ``limit`` failed episodes.
        progress: called as ``progress(done, total)`` after each failure (optional).

    Raises:
        InvalidInputError: the dataset is of another task, has no failures, or none recovered.
    """
    from robofail.folders import check_writable
    from robofail.tasks import get_task

    check_writable(out, "--out")
    name = get_task(task).name
    with open_dataset(failures) as dataset:
        if dataset.info.task != name:
            raise InvalidInputError(
                f"{failures} holds episodes of task {dataset.info.task!r}, not {name!r}"
            )
        labels = dataset.labels()
        positions = [i for i, label in enumerate(labels) if not label.success]
        info = dataset.info
    if limit is not None:
        positions = positions[:limit]
    if not positions:
        raise InvalidInputError(f"{failures} has no failed episodes to recover")
    failure_types = sorted({labels[i].failure_type for i in positions})
    jobs = [(name, str(failures), i, settings, failure_types) for i in positions]
    summary = RecoverySummary(teacher=settings.teacher)

    def recoveries() -> Iterator[Episode]:
        for done, (kind, runs, kept, judged, mismatches, episodes) in enumerate(
            run_ordered(_worker_recover, jobs, backend=backend, workers=workers), start=1
        ):
            summary.add(kind, runs, kept, judged, mismatches)
            if progress is not None:
                progress(done, len(jobs))
            yield from episodes

    out_info = DatasetInfo(
        task=info.task,
        env_id=info.env_id,
        obs_names={"state": info.obs_names["state"]},
        action_names=info.action_names,
        phase_names=info.phase_names,
        control_hz=info.control_hz,
        extra={
            "kind": "recovery",
            "failures": str(failures),
            "failure_types": failure_types,
            "start_kinds": list(START_KINDS),
            "after": list(settings.after),
            "noise": list(settings.noise),
            "monitor": settings.monitor,
            "seed": settings.seed,
            "learner": settings.learner,
            "beta": settings.beta,
            "history": HISTORY,
            "experts": list(EXPERTS),
            "teacher": settings.teacher,
        },
    )
    episodes = _state_only(recoveries())
    first = next(episodes, None)
    if first is None:
        raise InvalidInputError(
            f"the expert recovered none of the {len(positions)} failures in {failures}; "
            "nothing to write"
        )
    write_episodes(out, _chain(first, episodes), out_info)
    return summary


def _state_only(episodes: Iterator[Episode]) -> Iterator[Episode]:
    """The episodes with only their state observation (images are not needed to train on)."""
    for episode in episodes:
        yield replace(episode, obs={"state": episode.obs["state"]})


def _chain(first: Episode, rest: Iterator[Episode]) -> Iterator[Episode]:
    yield first
    yield from rest
