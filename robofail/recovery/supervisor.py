"""The supervisor: base policy under the monitor, recovery policy switched in on an alarm.

Call :meth:`Supervisor.act` once per control step with the newest observation. In ``base`` mode
the base policy's chunks are executed and every inference goes through the monitor. On an alarm
the supervisor switches to ``recovery``: the recovery policy acts, while the base policy keeps
being queried every ``exec_horizon`` steps *for the monitor only*; it switches back when the
monitor has been calm for ``calm_inferences`` inferences in a row or after
``max_recovery_steps`` steps. Every switch is appended to :attr:`Supervisor.switches` and logged.
A recovery policy that looks at the last K states (``obs_horizon`` K > 1) gets them from a window
the supervisor fills every control step, whichever policy acts, so at the switch it already holds
the states that led to the alarm.

A recovery policy that raises or returns non-finite actions never takes the control loop down
silently: the error is logged at ERROR level, recorded in :attr:`Supervisor.errors`, and the
base policy takes over again. Bad observations raise :class:`~robofail.errors.InvalidInputError`.
Imports numpy and onnxruntime only.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from robofail.errors import IncompatibleArtifactError, InvalidInputError
from robofail.monitor.runtime import Monitor
from robofail.policy.protocol import ChunkPolicy, ObservationWindow, next_seed
from robofail.recovery.runtime import RecoveryPolicy

log = logging.getLogger("robofail.supervisor")

MAX_RECOVERY_STEPS = 100
"""Default control steps recovery may act per alarm: a whole episode of the bundled tasks."""
CALM_INFERENCES = 8
"""Default alarm-free verdicts in a row that hand control back to the base policy (16 control
steps at ``exec_horizon`` 2). Chosen on the validation seed 600 (``observation_faults`` spec, 100
episodes per task; recovery successes pick_place / push / peg_insert): 24 steps and 2 calm
verdicts, 81 / 30 / 17 %; 100 and 4, 88 / 40 / 13 %; 100 and 8, 88 / 47 / 13 %; 100 and never,
88 / 48 / 13 %. Under a persistent observation fault the monitor calms once recovery has brought
the robot back into familiar states, while the fault still fools the base policy: handing back
on the first quiet verdicts undoes the recovery (push obs_bias: 3 % with 2 calm verdicts, 24 %
with 8). The recovery policy is trained on the teacher's rescues to the episode's end, so
acting longer stays on its data."""


def _check_parts(policy: ChunkPolicy, monitor: Monitor, recovery: RecoveryPolicy) -> None:
    """Refuse a monitor calibrated for another policy or a recovery policy acting on other
    actions than the base policy."""
    fingerprint = str(getattr(policy, "fingerprint", ""))
    calibrated = str(monitor.calibration.get("policy_fingerprint", ""))
    if fingerprint and calibrated and fingerprint != calibrated:
        raise IncompatibleArtifactError(
            f"the monitor ({monitor.source}) was calibrated for policy {calibrated}, not this "
            f"base policy ({fingerprint}); calibrate it on rollouts of this policy"
        )
    if (monitor.horizon, monitor.action_dim) != (policy.horizon, len(policy.action_names)):
        raise IncompatibleArtifactError(
            f"the monitor ({monitor.source}) expects chunks of {monitor.horizon} x "
            f"{monitor.action_dim} actions, the base policy samples {policy.horizon} x "
            f"{len(policy.action_names)}"
        )
    if list(recovery.action_names) != list(policy.action_names):
        raise IncompatibleArtifactError(
            f"the recovery policy ({recovery.source}) emits actions {recovery.action_names}, "
            f"the base policy {list(policy.action_names)}; export one for this robot's actions"
        )


@dataclass(frozen=True)
class Switch:
    """One change of the acting policy at control step ``step``."""

    step: int
    to: str
    reason: str


class Supervisor:
    """Base policy + monitor + recovery policy in one control loop (see module docstring).

    Args:
        policy: the base chunk policy.
        monitor: its calibrated monitor.
        recovery: the recovery policy.
        samples: chunks sampled per base inference (B).
        max_recovery_steps: control steps recovery may act before the base policy takes over.
        calm_inferences: consecutive alarm-free monitor verdicts that end recovery early.
        failure_type: failure type given to a failure-conditioned recovery (None: unknown).
        seed: seed of the base policy's sampling.

    Raises:
        InvalidInputError: a bad count above.
        IncompatibleArtifactError: a monitor calibrated for another policy (or for chunks of
            another size), or a recovery policy emitting other actions than the base policy.
    """

    def __init__(
        self,
        policy: ChunkPolicy,
        monitor: Monitor,
        recovery: RecoveryPolicy,
        *,
        samples: int = 32,
        max_recovery_steps: int = MAX_RECOVERY_STEPS,
        calm_inferences: int = CALM_INFERENCES,
        failure_type: str | None = None,
        seed: int = 0,
    ) -> None:
        if max_recovery_steps < 1 or calm_inferences < 1 or samples < 2:
            raise InvalidInputError(
                "max_recovery_steps and calm_inferences must be >= 1 and samples >= 2"
            )
        _check_parts(policy, monitor, recovery)
        self.policy, self.monitor, self.recovery = policy, monitor, recovery
        self.samples, self.max_recovery_steps = samples, max_recovery_steps
        self.calm_inferences, self.failure_type = calm_inferences, failure_type
        self._seeds = np.random.SeedSequence([seed, 23])
        self._window = ObservationWindow(policy.obs_horizon)
        self._states: deque[np.ndarray] = deque(maxlen=getattr(recovery, "obs_horizon", 1))
        self.switches: list[Switch] = []
        self.errors: list[str] = []
        self.mode = "base"
        self.last_verdict = None
        self._started = False

    def reset(self) -> None:
        """Start a new episode (the next :meth:`act` gets its first observation)."""
        self.monitor.reset()
        self.mode = "base"
        self.switches, self.errors = [], []
        self._states.clear()
        self._started = False
        self._state_shape: tuple[int, ...] | None = None
        self._step = 0
        self._base_queue: list[np.ndarray] = []
        self._recovery_queue: list[np.ndarray] = []
        self._since_inference = 0
        self._recovery_steps = 0
        self._calm = 0

    def _switch(self, to: str, reason: str) -> None:
        self.mode = to
        self.switches.append(Switch(self._step, to, reason))
        log.info("step %d: switch to %s (%s)", self._step, to, reason)

    def _infer_base(self) -> bool:
        """Run the base policy and the monitor on the current window; True on an alarm."""
        window = self._window.window()
        seed = next_seed(self._seeds)
        chunks = self.policy.sample_chunks(window, self.samples, seed)
        self.last_verdict = self.monitor.update(self.policy.embed(window), chunks)
        self._base_queue = list(chunks[0, : self.policy.exec_horizon])
        self._since_inference = 0
        return self.last_verdict.alarm

    def _recovery_action(self) -> np.ndarray | None:
        if not self._recovery_queue:
            try:
                states = self._states
                state = states[-1] if states.maxlen == 1 else np.stack(states)
                chunk = self.recovery.act(state, self.failure_type)
                if not np.isfinite(chunk).all():
                    raise FloatingPointError("recovery policy returned non-finite actions")
            except Exception as exc:  # a broken recovery must not stop the robot silently
                message = f"step {self._step}: recovery failed ({type(exc).__name__}: {exc})"
                self.errors.append(message)
                log.error("%s; the base policy takes over", message)
                return None
            self._recovery_queue = list(chunk[: self.recovery.exec_horizon])
        return self._recovery_queue.pop(0)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The action for this control step, given the newest observation dict."""
        if not hasattr(self, "_step"):
            raise InvalidInputError("Supervisor.act before reset(): call reset() first")
        state = obs.get("state") if isinstance(obs, dict) else None
        if state is None:
            raise InvalidInputError("observation must be a dict with a 'state' array")
        shape = self._state_shape
        if not (
            isinstance(state, np.ndarray)
            and state.ndim == 1
            and state.shape == (shape or state.shape)
            and state.dtype.kind == "f"
            and np.isfinite(state).all()
        ):
            expected = "(S,)" if shape is None else f"{shape} like the episode's first one"
            raise InvalidInputError(
                f"observation['state'] must be a finite float array of shape {expected}, got "
                f"{getattr(state, 'dtype', type(state).__name__)} {getattr(state, 'shape', '')}"
            )
        if self._started:
            self._window.push(obs)
        else:
            self._window.reset(obs)
            self._started = True
            self._state_shape = state.shape
        if not self._states:  # an episode's window starts filled with its first state
            self._states.extend([state.copy()] * ((self._states.maxlen or 1) - 1))
        self._states.append(state.copy())
        if self.mode == "base":
            if not self._base_queue and self._infer_base():
                fired = ", ".join(self.last_verdict.fired)
                self._switch("recovery", f"alarm ({fired})")
                self._recovery_steps, self._calm, self._recovery_queue = 0, 0, []
        elif self._since_inference >= self.policy.exec_horizon:
            self._calm = 0 if self._infer_base() else self._calm + 1
            if self._calm >= self.calm_inferences:
                self._switch("base", f"monitor calm for {self._calm} inferences")
        if self.mode == "recovery" and self._recovery_steps >= self.max_recovery_steps:
            self._switch("base", f"recovery ran {self._recovery_steps} steps")
            self._base_queue = []  # a fresh base chunk, not one planned before recovery moved
        if self.mode == "recovery":
            action = self._recovery_action()
            if action is None:
                self._switch("base", "recovery error")
                self._base_queue = []
            else:
                self._recovery_steps += 1
                self._since_inference += 1
                self._step += 1
                return action
        if not self._base_queue:
            self._infer_base()  # right after recovery: one base chunk runs before a new switch
        self._since_inference += 1
        self._step += 1
        return self._base_queue.pop(0)
