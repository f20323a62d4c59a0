"""Closed-loop rollouts of a :class:`ChunkPolicy`, recorded for the monitor.

Per inference (every ``exec_horizon`` control steps) the rollout stores the policy's embedding,
``samples`` chunks drawn for the same observation window, and the chunk actually executed (the
first ``exec_horizon`` actions of sample 0), so any monitor score can be recomputed offline.
Works on the bundled tasks and on any gymnasium env with a Box or Dict observation; success comes
from ``info["success"]`` or ``info["is_success"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from robofail.data import Episode
from robofail.data.recorder import EpisodeRecorder
from robofail.errors import InvalidInputError
from robofail.policy.protocol import ChunkPolicy, ObservationWindow, next_seed


def as_obs_dict(obs: Any) -> dict[str, np.ndarray]:
    """An env observation as robofail's dict: a Box observation becomes ``{"state": obs}``."""
    if isinstance(obs, Mapping):
        return {key: np.asarray(value) for key, value in obs.items()}
    return {"state": np.asarray(obs, dtype=np.float32)}


def simulator_state(env: gym.Env) -> np.ndarray:
    """Full MuJoCo state of ``env`` when it has one (bundled tasks: ``get_state``; other MuJoCo
    envs: ``mj_getState`` on ``unwrapped.model/data``), else an empty (0,) array."""
    base = env.unwrapped
    if hasattr(base, "get_state") and hasattr(base, "state_size"):
        return base.get_state()
    model, data = getattr(base, "model", None), getattr(base, "data", None)
    if model is not None and data is not None:
        import mujoco

        sig = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(model, sig))
        mujoco.mj_getState(model, data, state, sig)
        return state
    return np.zeros(0)


def policy_episode(
    env: gym.Env,
    policy: ChunkPolicy,
    *,
    seed: int,
    samples: int = 32,
    max_steps: int | None = None,
    source: str = "",
    monitor: Any = None,
) -> Episode:
    """Run ``policy`` closed loop for one episode and record it with the monitor's inputs.

    Args:
        env: the environment (reset with ``seed``).
        policy: the chunk policy.
        seed: env reset seed; the policy's sampling seeds derive from it.
        samples: chunks drawn per inference (B of the entropy score).
        max_steps: step limit; defaults to the env's own limit (``max_episode_steps`` or its spec).
        monitor: a :class:`robofail.monitor.Monitor` to run on every inference (optional).

    Returns:
        The episode; ``extras`` hold ``embeddings`` (K, D), ``sampled_chunks`` (K, B, H, A),
        ``executed_chunks`` (K, exec_horizon, A) and ``inference_steps`` (K,) int32; with a
        monitor also ``monitor_alarms`` (K,) int8 and ``monitor_ratios`` (K, m), S/threshold of
        each of the monitor's scores.
    """
    if samples < 1:
        raise InvalidInputError(f"samples per inference must be >= 1, got {samples}")
    limit = max_steps or _step_limit(env)
    low, high = env.action_space.low, env.action_space.high
    base = env.unwrapped
    phase_of = getattr(base, "phase_index", None)
    window = ObservationWindow(policy.obs_horizon)
    obs, _ = env.reset(seed=seed)
    obs = as_obs_dict(obs)
    window.reset(obs)
    sample_seeds = np.random.SeedSequence([seed, 7])
    recorder = EpisodeRecorder()
    embeddings, sampled, executed, inference_steps = [], [], [], []
    alarms, ratios = [], []
    if monitor is not None:
        monitor.reset()
    queue: list[np.ndarray] = []
    for step in range(limit):
        recorder.before_action(obs, simulator_state(env), phase_of() if phase_of else 0)
        if not queue:
            current = window.window()
            chunk_seed = next_seed(sample_seeds)
            chunks = policy.sample_chunks(current, samples, chunk_seed)
            embeddings.append(policy.embed(current))
            sampled.append(chunks)
            if monitor is not None:
                verdict = monitor.update(embeddings[-1], chunks)
                alarms.append(verdict.alarm)
                ratios.append(list(verdict.ratios.values()))
            executed.append(chunks[0, : policy.exec_horizon])
            inference_steps.append(step)
            queue = list(chunks[0, : policy.exec_horizon])
        action = np.clip(queue.pop(0), low, high).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        obs = as_obs_dict(obs)
        window.push(obs)
        recorder.after_action(action, reward, terminated or truncated, info)
        if terminated or truncated:
            break
    extras = {
        "embeddings": np.stack(embeddings).astype(np.float32),
        "sampled_chunks": np.stack(sampled).astype(np.float32),
        "executed_chunks": np.stack(executed).astype(np.float32),
        "inference_steps": np.asarray(inference_steps, dtype=np.int32),
    }
    if monitor is not None:
        extras["monitor_alarms"] = np.asarray(alarms, dtype=np.int8)
        extras["monitor_ratios"] = np.asarray(ratios, dtype=np.float64)
    return recorder.build(final_state=simulator_state(env), seed=seed, source=source, extras=extras)


def control_hz(env: gym.Env) -> float:
    """Control rate of an env: robofail's ``control_hz``, else ``1 / dt`` (gymnasium MuJoCo
    envs), else ``metadata["render_fps"]``, else 1.0 (unknown)."""
    base = env.unwrapped
    if getattr(base, "control_hz", None):
        return float(base.control_hz)
    if getattr(base, "dt", None):
        return 1.0 / float(base.dt)
    return float(env.metadata.get("render_fps") or 1.0)


def rollout_info(
    env: gym.Env,
    policy: ChunkPolicy,
    /,
    *,
    task: str = "",
    state_names: list[str] | None = None,
    **extra: Any,
):
    """The :class:`~robofail.data.DatasetInfo` of rollouts of ``policy`` on ``env``: names from
    the env where it has them (else ``state_names``, else ``s0, s1, ...``), and the policy's
    fingerprint, position dims and horizons (what
    ``robofail calibrate`` reads). ``extra`` adds JSON fields (seed, env kwargs...)."""
    from robofail.data import DatasetInfo

    base = env.unwrapped
    obs = as_obs_dict(env.observation_space.sample())
    state_names = getattr(base, "state_names", None) or state_names
    if state_names is None:
        state_names = [f"s{i}" for i in range(obs["state"].shape[-1])] if "state" in obs else []
    return DatasetInfo(
        task=task or (env.spec.id.replace("/", "_") if env.spec else "custom"),
        env_id=getattr(base, "spec_id", "") or (env.spec.id if env.spec else ""),
        obs_names={key: (list(state_names) if key == "state" else []) for key in obs},
        action_names=list(policy.action_names),
        phase_names=list(getattr(base, "phase_names", ["run"])),
        control_hz=control_hz(env),
        extra={
            "policy_fingerprint": policy.fingerprint,
            "position_dims": [int(d) for d in policy.position_dims],
            "horizon": int(policy.horizon),
            "exec_horizon": int(policy.exec_horizon),
            **extra,
        },
    )


def _step_limit(env: gym.Env) -> int:
    base = env.unwrapped
    if getattr(base, "max_episode_steps", None):
        return int(base.max_episode_steps)
    if env.spec is not None and env.spec.max_episode_steps:
        return int(env.spec.max_episode_steps)
    layer = env
    while isinstance(layer, gym.Wrapper):  # a TimeLimit added by hand has no spec
        if isinstance(layer, gym.wrappers.TimeLimit):
            return int(layer._max_episode_steps)
        layer = layer.env
    raise InvalidInputError("the env has no step limit; pass max_steps")


def make_rollout_env(task: str | None, env_id: str | None, env_kwargs: dict | None) -> gym.Env:
    """A bundled task's env (``task``) or any registered gymnasium env (``env_id``).

    Raises:
        InvalidInputError: an unknown env id, or keyword arguments the env does not take.
    """
    import robofail.tasks  # registers the robofail/* ids

    try:
        if env_id is None:
            return robofail.tasks.make_env(task, **(env_kwargs or {}))
        return gym.make(env_id, **(env_kwargs or {}))
    except (gym.error.Error, TypeError) as exc:
        raise InvalidInputError(
            f"cannot make env {env_id or task!r} with --env-kwargs {env_kwargs or {}}: {exc}"
        ) from None


_worker_cache: dict[str, Any] = {}


def _worker_rollout(
    policy_dir: str, task: str | None, env_id: str | None, env_kwargs: dict | None,
    seed: int, samples: int, source: str,
) -> Episode:  # fmt: skip
    """Process-pool entry point: one rollout with this worker's cached policy and env."""
    from robofail.policy.flow import FlowChunkPolicy

    key = f"{policy_dir}|{task}|{env_id}|{env_kwargs}"
    if _worker_cache.get("key") != key:
        _worker_cache.update(
            key=key,
            policy=FlowChunkPolicy.load(policy_dir),
            env=make_rollout_env(task, env_id, env_kwargs),
        )
    return policy_episode(
        _worker_cache["env"], _worker_cache["policy"], seed=seed, samples=samples, source=source
    )


def collect_rollouts(
    policy_dir: str,
    n: int,
    *,
    task: str | None = None,
    env_id: str | None = None,
    env_kwargs: dict | None = None,
    seed: int = 0,
    samples: int = 32,
    workers: int = 1,
):
    """Iterator over ``n`` monitored rollouts of the saved policy at ``policy_dir``, in index
    order, on ``workers`` processes; rollout ``i`` resets the env with
    ``episode_seed(seed, i)`` and depends on nothing else."""
    from robofail.parallel import episode_seed, run_ordered

    if n < 1 or samples < 1 or workers < 1:
        raise InvalidInputError(
            f"n, samples and workers must be >= 1, got {n}, {samples}, {workers}"
        )
    jobs = [
        (
            str(policy_dir),
            task,
            env_id,
            env_kwargs,
            episode_seed(seed, i),
            samples,
            f"rollout/{seed}/{i}",
        )
        for i in range(n)
    ]
    return run_ordered(_worker_rollout, jobs, workers=workers)
