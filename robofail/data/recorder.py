"""Record an episode step by step and turn it into a labelled :class:`Episode`.

Used by every loop that runs an env (expert demos, policy rollouts, the failure generator), so
they label outcomes the same way: ``success`` from the env's success flag, ``failure_step`` the
first step after which the task's failure predicate held (or the episode's length for a
time-out), ``failure_type`` the given one, ``"task_failure"`` or ``"timeout"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robofail import __version__
from robofail.data.episode import NO_FAILURE, Episode, EpisodeLabel


class EpisodeRecorder:
    """Collects per-step records; call :meth:`before_action` then :meth:`after_action` each step."""

    def __init__(self) -> None:
        self.obs: list[Mapping[str, np.ndarray]] = []
        self.states: list[np.ndarray] = []
        self.phases: list[int] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.dones: list[bool] = []
        self.success = False
        self.failure_step = -1

    @property
    def steps(self) -> int:
        """Actions recorded so far."""
        return len(self.actions)

    def before_action(self, obs: Mapping[str, np.ndarray], state: np.ndarray, phase: int) -> None:
        """Record the observation dict, simulator state (N,) and phase index before an action."""
        self.obs.append(obs)
        self.states.append(state)
        self.phases.append(int(phase))

    def after_action(
        self, action: np.ndarray, reward: float, done: bool, info: Mapping[str, Any]
    ) -> None:
        """Record the action (A,) taken and what the env answered."""
        self.actions.append(np.asarray(action, dtype=np.float32))
        self.rewards.append(float(reward))
        self.dones.append(bool(done))
        self.success = bool(info.get("success", info.get("is_success", False)))
        if info.get("failure") and self.failure_step < 0:
            self.failure_step = len(self.actions)

    def build(
        self,
        *,
        final_state: np.ndarray,
        seed: int,
        source: str,
        failure_type: str | None = None,
        perturbation: dict[str, Any] | None = None,
        onset_step: int = -1,
        phase_names: tuple[str, ...] | list[str] = (),
        extras: dict[str, np.ndarray] | None = None,
    ) -> Episode:
        """The recorded :class:`Episode`.

        Args:
            final_state: (N,) simulator state after the last action.
            seed: the episode's reset seed.
            source: id of what produced the episode (``expert/pick_place/0/3``...).
            failure_type: label of a failed episode (default: ``task_failure`` when the failure
                predicate held, else ``timeout``); ignored for successes.
            perturbation: ``{"kind": ..., params}`` or None.
            onset_step: step at which the perturbation took effect, -1 for none.
            phase_names: the task's phase names, to name the phase at onset.
            extras: extra per-episode arrays.
        """
        failure_step = self.failure_step
        if self.success:
            failure_type, failure_step = NO_FAILURE, -1
        else:
            if failure_step < 0:
                failure_step = self.steps
            if failure_type is None:
                failure_type = "task_failure" if self.failure_step >= 0 else "timeout"
        onset_step = min(onset_step, self.steps - 1)
        phase_at_onset = ""
        if onset_step >= 0 and phase_names:
            phase_at_onset = phase_names[self.phases[onset_step]]
        label = EpisodeLabel(
            success=self.success,
            seed=seed,
            failure_type=failure_type,
            perturbation=perturbation or {},
            onset_step=onset_step,
            failure_step=failure_step,
            source=source,
            generator_version=__version__,
            phase_at_onset=phase_at_onset,
        )
        return Episode(
            obs={key: np.stack([o[key] for o in self.obs]) for key in self.obs[0]},
            actions=np.stack(self.actions),
            rewards=np.asarray(self.rewards, dtype=np.float32),
            dones=np.asarray(self.dones, dtype=bool),
            states=np.stack(self.states),
            phases=np.asarray(self.phases, dtype=np.int8),
            final_state=final_state,
            label=label,
            extras=extras or {},
        )
