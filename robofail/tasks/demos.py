"""Expert demonstrations: run a bundled task's scripted expert and record episodes.

Episode ``i`` of a collection with seed ``s`` depends only on ``(task, s, i, action_noise)``, so
the dataset is the same whatever the number of workers. With ``action_noise > 0`` the *executed*
action is the expert's plus Gaussian noise on the position dims (DART-style), while the recorded
``actions`` are the expert's own corrective labels; the executed ones go in
``extras["executed_actions"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from robofail import __version__
from robofail.data import DatasetInfo, Episode, EpisodeLabel
from robofail.errors import InvalidInputError
from robofail.parallel import episode_seed, ordered_map
from robofail.tasks import get_task, make_env, make_expert
from robofail.tasks.base import MocapTaskEnv


def dataset_info(env: MocapTaskEnv, **extra) -> DatasetInfo:
    """The :class:`DatasetInfo` of episodes recorded from ``env``."""
    obs_names = {"state": list(env.state_names)}
    if env.obs_image:
        obs_names["image"] = []
    return DatasetInfo(
        task=env.task_name,
        env_id=get_task(env.task_name).env_id,
        obs_names=obs_names,
        action_names=list(env.action_names),
        phase_names=list(env.phase_names),
        control_hz=float(env.control_hz),
        extra={"position_dims": list(env.position_action_dims), **extra},
    )


def run_expert_episode(
    env: MocapTaskEnv, *, seed: int, index: int, action_noise: float = 0.0
) -> Episode:
    """Run the scripted expert for one episode and record it.

    Args:
        env: a bundled task env (reused across episodes).
        seed: collection seed; with ``index`` it fixes the initial conditions and the noise.
        index: episode index within the collection.
        action_noise: std of the Gaussian noise added to the executed action's position dims, in
            action units (1 = the maximum step).
    """
    expert = make_expert(env)
    noise_rng = np.random.default_rng(episode_seed(seed, index, 1))
    position_dims = list(env.position_action_dims)
    obs, info = env.reset(seed=episode_seed(seed, index))
    observations: dict[str, list[np.ndarray]] = {key: [] for key in obs}
    actions, executed, states, phases, rewards, dones = [], [], [], [], [], []
    failure_step = -1
    for step in range(env.max_episode_steps):
        for key, value in obs.items():
            observations[key].append(value)
        states.append(env.get_state())
        phases.append(info["phase_index"])
        action = expert.act()
        applied = action.copy()
        if action_noise > 0:
            applied[position_dims] += noise_rng.normal(0.0, action_noise, len(position_dims))
            applied = np.clip(applied, -1.0, 1.0)
        obs, reward, terminated, truncated, info = env.step(applied)
        actions.append(action)
        executed.append(applied)
        rewards.append(reward)
        dones.append(terminated or truncated)
        if info["failure"] and failure_step < 0:
            failure_step = step + 1
        if terminated or truncated:
            break
    success = bool(info["success"])
    if success:
        failure_type = "none"
    elif failure_step >= 0:
        failure_type = "task_failure"
    else:
        failure_type, failure_step = "timeout", len(actions)
    label = EpisodeLabel(
        success=success,
        failure_type=failure_type,
        perturbation={"kind": "action_noise", "std": action_noise} if action_noise else {},
        seed=episode_seed(seed, index),
        onset_step=0 if action_noise else -1,
        failure_step=failure_step,
        source=f"expert/{env.task_name}/{seed}/{index}",
        generator_version=__version__,
        phase_at_onset=env.phase_names[phases[0]] if action_noise else "",
    )
    return Episode(
        obs={key: np.stack(values) for key, values in observations.items()},
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        dones=np.asarray(dones, dtype=bool),
        states=np.stack(states),
        phases=np.asarray(phases, dtype=np.int8),
        label=label,
        extras={"executed_actions": np.stack(executed).astype(np.float32)},
        final_state=env.get_state(),
    )


_worker_env: MocapTaskEnv | None = None


def _worker_episode(
    task: str, seed: int, index: int, action_noise: float, obs_image: bool
) -> Episode:
    """Process-pool entry point: one episode on this worker's cached env."""
    global _worker_env
    if _worker_env is None or _worker_env.task_name != task or _worker_env.obs_image != obs_image:
        _worker_env = make_env(task, obs_image=obs_image)
    return run_expert_episode(_worker_env, seed=seed, index=index, action_noise=action_noise)


def collect_demos(
    task: str,
    n: int,
    *,
    seed: int = 0,
    workers: int = 1,
    action_noise: float = 0.0,
    obs_image: bool = False,
) -> Iterator[Episode]:
    """Iterator over ``n`` expert episodes of ``task`` in index order, on ``workers`` processes.

    Raises:
        InvalidInputError: ``n`` < 1, ``workers`` < 1 or ``action_noise`` < 0.
    """
    get_task(task)
    if n < 1:
        raise InvalidInputError(f"number of episodes must be >= 1, got {n}")
    if workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}")
    if not np.isfinite(action_noise) or action_noise < 0:
        raise InvalidInputError(f"action noise must be a finite number >= 0, got {action_noise}")
    jobs = [(task, seed, i, action_noise, obs_image) for i in range(n)]
    return ordered_map(_worker_episode, jobs, workers=workers, chunksize=4)
