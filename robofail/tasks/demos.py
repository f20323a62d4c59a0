"""Expert demonstrations: run a bundled task's scripted expert and record episodes.

Episode ``i`` of a collection with seed ``s`` depends only on ``(task, s, i, action_noise)``, so
the dataset is the same whatever the number of workers. With ``action_noise > 0`` the *executed*
action is the expert's plus Gaussian noise on the position dims (DART-style), while the recorded
``actions`` are the expert's own corrective labels; the executed ones go in
``extras["executed_actions"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np

from robofail.data import DatasetInfo, Episode
from robofail.data.recorder import EpisodeRecorder
from robofail.errors import InvalidInputError
from robofail.parallel import episode_seed, run_ordered
from robofail.tasks import get_task, make_env, make_expert
from robofail.tasks.base import MocapTaskEnv
from robofail.tasks.expert import KeyframeHook


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
    env: gym.Env,
    *,
    seed: int,
    index: int,
    action_noise: float = 0.0,
    keyframe_hook: KeyframeHook | None = None,
    source: str | None = None,
    vision: bool = False,
    observation: bool = False,
) -> Episode:
    """Run the scripted expert for one episode and record it.

    Args:
        env: a bundled task env, possibly wrapped (e.g. by a perturbation); reused across
            episodes. Stepping goes through the wrappers, simulator queries to ``env.unwrapped``.
        seed: collection seed; with ``index`` it fixes the initial conditions and the noise.
        index: episode index within the collection.
        action_noise: std of the Gaussian noise added to the executed action's position dims, in
            action units (1 = the maximum step).
        keyframe_hook: passed to the expert (demo-level perturbations edit its keyframes).
        source: id stored in the label; default ``expert/<task>/<seed>/<index>``.
        vision: run the task's vision expert, which perceives the object in the observation's
            camera image (as the wrappers deliver it, faults included) instead of reading the
            simulator; ``env`` must render images.
        observation: run the task's observation expert, which plans from ``obs["state"]`` (as
            the wrappers deliver it, faults included) instead of reading the simulator.

    Returns:
        The episode; ``actions`` are the expert's labels, ``extras["executed_actions"]`` what ran.
    """
    base: MocapTaskEnv = env.unwrapped
    expert = make_expert(base, vision=vision, observation=observation, keyframe_hook=keyframe_hook)
    noise_rng = np.random.default_rng(episode_seed(seed, index, 1))
    position_dims = list(base.position_action_dims)
    reset_seed = episode_seed(seed, index)
    obs, info = env.reset(seed=reset_seed)
    expert.reset()
    recorder = EpisodeRecorder()
    executed = []
    for _ in range(base.max_episode_steps):
        recorder.before_action(obs, base.get_state(), info["phase_index"])
        expert.observe(obs)
        action = expert.act()
        applied = action.copy()
        if action_noise > 0:
            applied[position_dims] += noise_rng.normal(0.0, action_noise, len(position_dims))
            applied = np.clip(applied, -1.0, 1.0)
        obs, reward, terminated, truncated, info = env.step(applied)
        recorder.after_action(action, reward, terminated or truncated, info)
        executed.append(applied)
        if terminated or truncated:
            break
    noisy = action_noise > 0
    return recorder.build(
        final_state=base.get_state(),
        seed=reset_seed,
        source=source or f"expert/{base.task_name}/{seed}/{index}",
        perturbation={"kind": "action_noise", "std": action_noise} if noisy else None,
        onset_step=0 if noisy else -1,
        phase_names=base.phase_names,
        extras={"executed_actions": np.stack(executed).astype(np.float32)},
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
    return run_ordered(_worker_episode, jobs, workers=workers)
