"""The monitor around a gymnasium env: a wrapper and a one-call monitored rollout (simulation side).

:class:`MonitorWrapper` runs a :class:`~robofail.policy.protocol.ChunkPolicy` inference whenever
the current chunk is used up, feeds the embedding and the sampled chunks to the monitor, and puts
the verdict in ``info["robofail"]`` (``None`` on steps without an inference). The actions to
execute are the first ``exec_horizon`` of the first sampled chunk: ``wrapper.next_action()``
gives them one by one, so the policy runs once per chunk, not twice::

    env = MonitorWrapper(gym.make("robofail/PickPlace-v0"), policy, Monitor.load(calib))
    obs, info = env.reset(seed=0)
    while True:
        obs, reward, terminated, truncated, info = env.step(env.next_action())
        if info["robofail"] and info["robofail"]["alarm"]: ...
        if terminated or truncated: break

:func:`monitored_rollout` records a whole episode with the monitor's inputs (and its verdicts),
ready for ``robofail calibrate`` once saved with :func:`robofail.policy.rollout.rollout_info`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robofail.data import Episode
from robofail.errors import InvalidInputError
from robofail.monitor.artifact import check_fingerprint
from robofail.monitor.runtime import Monitor
from robofail.policy.protocol import ChunkPolicy, ObservationWindow, next_seed
from robofail.policy.rollout import as_obs_dict, policy_episode


class MonitorWrapper(gym.Wrapper):
    """Runs ``policy`` and ``monitor`` alongside ``env``; see the module docstring.

    Args:
        env: any gymnasium env with Box or Dict observations.
        policy: the chunk policy being monitored (its fingerprint must match the monitor's).
        monitor: a loaded :class:`~robofail.monitor.Monitor`.
        samples: chunks sampled per inference (B).
        seed: seed of the policy's sampling; each reset derives its own from it.
    """

    def __init__(
        self, env: gym.Env, policy: ChunkPolicy, monitor: Monitor, samples: int = 32, seed: int = 0
    ) -> None:
        super().__init__(env)
        check_fingerprint(monitor.calibration, policy.fingerprint, monitor.source)
        if samples < 2:
            raise InvalidInputError(f"the monitor needs samples >= 2 per inference, got {samples}")
        self.policy, self.monitor, self.samples = policy, monitor, samples
        self._seeds = np.random.SeedSequence([seed, 11])
        self._window = ObservationWindow(policy.obs_horizon)
        self._queue: list[np.ndarray] = []
        self._pending: dict | None = None
        self.last_verdict = None

    def _infer(self) -> None:
        window = self._window.window()
        chunk_seed = next_seed(self._seeds)
        chunks = self.policy.sample_chunks(window, self.samples, chunk_seed)
        self.last_verdict = self.monitor.update(self.policy.embed(window), chunks)
        self._pending = self.last_verdict.as_dict()
        self._queue = list(chunks[0, : self.policy.exec_horizon])

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._window.reset(as_obs_dict(obs))
        self.monitor.reset()
        self._queue, self.last_verdict = [], None
        self._infer()
        info = dict(info)
        info["robofail"], self._pending = self._pending, None
        return obs, info

    def next_action(self) -> np.ndarray:
        """The next action of the current chunk (runs a new inference when it is used up)."""
        if not self._queue:
            self._infer()
        return self._queue.pop(0)

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._window.push(as_obs_dict(obs))
        info = dict(info)
        info["robofail"], self._pending = self._pending, None
        return obs, reward, terminated, truncated, info


def monitored_rollout(
    env: gym.Env,
    policy: ChunkPolicy,
    monitor: Monitor | None = None,
    *,
    seed: int,
    samples: int = 32,
    max_steps: int | None = None,
    source: str = "",
) -> Episode:
    """One closed-loop episode of ``policy`` on ``env``, recorded with the monitor's inputs.

    Without ``monitor`` it records calibration rollouts; with one it also stores, per
    inference, ``monitor_alarms`` (K,) and ``monitor_ratios`` (K, m) in ``extras``.
    """
    if monitor is not None:
        check_fingerprint(monitor.calibration, policy.fingerprint, monitor.source)
    return policy_episode(
        env, policy, seed=seed, samples=samples, max_steps=max_steps, source=source,
        monitor=monitor,
    )  # fmt: skip
