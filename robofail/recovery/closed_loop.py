"""Closed-loop evaluation: the base policy alone, with abort-and-retry, and with recovery.

Episode ``i`` of a run seeded ``s`` draws its perturbation from the spec exactly as ``robofail
generate`` does (``spec.sample(s, i)``, reset seed ``episode_seed(s, i)``), and runs three arms
on the same initial conditions and perturbation:

- ``base``: the base policy for one attempt, to the task's time limit;
- ``abort_retry``: the base policy under the monitor; an alarm aborts the attempt, the scene is
  reset (``reset_seconds``) and a new attempt starts (fresh policy samples and perturbation
  noise; the same scene and perturbation), up to ``max_attempts``; the last attempt runs out;
- ``recovery``: the :class:`~robofail.recovery.supervisor.Supervisor`: base policy, recovery
  policy switched in on an alarm.

The monitor watches the base arm without acting, and the first attempt of ``abort_retry`` is the
base arm's run cut at its first alarm (same seeds, so the same steps): the base arm's outcome of
an attempt the monitor flagged is therefore known, which gives the monitor's confusion matrix and
the inputs of the abort-or-continue decision (:mod:`robofail.decision`). Time is simulated time:
steps / control rate, plus resets.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robofail.errors import InvalidInputError
from robofail.figures import save_png
from robofail.parallel import episode_seed, run_ordered
from robofail.policy.protocol import ObservationWindow, next_seed
from robofail.recovery.supervisor import CALM_INFERENCES, MAX_RECOVERY_STEPS, Supervisor

ARMS = ("base", "abort_retry", "recovery")


@dataclass(frozen=True)
class ClosedLoopSettings:
    """One closed-loop evaluation (small, picklable: sent to every worker)."""

    task: str
    policy: str
    monitor: str
    recovery: str
    spec: str
    seed: int = 0
    samples: int = 32
    method: str | None = None
    max_attempts: int = 3
    reset_seconds: float = 5.0
    max_recovery_steps: int = MAX_RECOVERY_STEPS
    calm_inferences: int = CALM_INFERENCES

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_recovery_steps < 1 or self.calm_inferences < 1:
            raise InvalidInputError(
                "max attempts, max recovery steps and calm inferences must be >= 1"
            )
        if not (math.isfinite(self.reset_seconds) and self.reset_seconds >= 0):
            raise InvalidInputError(f"reset seconds must be >= 0, got {self.reset_seconds}")


@dataclass(frozen=True)
class Attempt:
    """How one run of the base policy ended."""

    success: bool
    steps: int
    alarm_step: int
    """Control step of the monitor's first alarm, -1 without one (or without a monitor)."""


_cache: dict[str, Any] = {}


def _components(settings: ClosedLoopSettings) -> dict[str, Any]:
    """This process's env, policy, monitor, recovery policy and spec, loaded once."""
    key = repr(settings)
    if _cache.get("key") != key:
        from robofail.failgen.generator import load_policy, task_env
        from robofail.failgen.spec import load_spec
        from robofail.monitor.runtime import Monitor
        from robofail.recovery.runtime import RecoveryPolicy

        env = task_env(settings.task)
        policy = load_policy(settings.policy)
        _cache.update(
            key=key,
            env=env,
            policy=policy,
            monitor=Monitor.load(
                settings.monitor, method=settings.method, policy_fingerprint=policy.fingerprint
            ),
            recovery=RecoveryPolicy.load(
                settings.recovery,
                task=env.task_name,
                state_names=list(env.state_names),
                action_names=list(env.action_names),
            ),
            spec=load_spec(settings.spec, settings.task),
        )
    return _cache


def _wrapped(env: Any, perturbation: Any, seed: int) -> Any:
    from robofail.failgen.wrappers import PerturbationWrapper

    return env if perturbation is None else PerturbationWrapper(env, perturbation, seed=seed)


def run_attempt(
    env: Any,
    policy: Any,
    *,
    reset_seed: int,
    sample_seed: np.random.SeedSequence,
    samples: int,
    monitor: Any = None,
    abort_on_alarm: bool = False,
) -> Attempt:
    """Run the base policy once from ``env.reset(seed=reset_seed)`` to the end, or to the
    monitor's first alarm when ``abort_on_alarm``."""
    from robofail.policy.rollout import as_obs_dict

    base = env.unwrapped
    low, high = env.action_space.low, env.action_space.high
    obs, _ = env.reset(seed=reset_seed)
    window = ObservationWindow(policy.obs_horizon)
    window.reset(as_obs_dict(obs))
    if monitor is not None:
        monitor.reset()
    queue: list[np.ndarray] = []
    alarm_step, info = -1, {}
    for step in range(base.max_episode_steps):
        if not queue:
            current = window.window()
            chunks = policy.sample_chunks(current, samples, next_seed(sample_seed))
            watching = monitor is not None and alarm_step < 0
            if watching and monitor.update(policy.embed(current), chunks).alarm:
                alarm_step = step
                if abort_on_alarm:
                    return Attempt(False, step, alarm_step)
            queue = list(chunks[0, : policy.exec_horizon])
        action = np.clip(queue.pop(0), low, high).astype(np.float32)
        obs, _, terminated, truncated, info = env.step(action)
        window.push(as_obs_dict(obs))
        if terminated or truncated:
            return Attempt(bool(info.get("success")), step + 1, alarm_step)
    return Attempt(bool(info.get("success")), base.max_episode_steps, alarm_step)


def run_supervised(env: Any, supervisor: Any, *, reset_seed: int) -> tuple[bool, int, int]:
    """One episode under the supervisor: (success, steps, switches to recovery)."""
    from robofail.policy.rollout import as_obs_dict

    base = env.unwrapped
    low, high = env.action_space.low, env.action_space.high
    obs, _ = env.reset(seed=reset_seed)
    supervisor.reset()
    info: dict = {}
    steps = 0
    while steps < base.max_episode_steps:
        action = np.clip(supervisor.act(as_obs_dict(obs)), low, high).astype(np.float32)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            break
    switches = sum(s.to == "recovery" for s in supervisor.switches)
    return bool(info.get("success")), steps, switches


def _episode(settings: ClosedLoopSettings, index: int) -> dict[str, Any]:
    """Pool entry point: the three arms on episode ``index``."""
    parts = _components(settings)
    env, policy, monitor, spec = parts["env"], parts["policy"], parts["monitor"], parts["spec"]
    hz = float(env.control_hz)
    reset_seed = episode_seed(settings.seed, index)
    first = spec.sample(settings.seed, index)
    family = first.kind if first is not None else "none"

    def attempt(number: int, **kwargs: Any) -> Attempt:
        perturbation = spec.sample(settings.seed, index)
        noise_seed = settings.seed if number == 0 else episode_seed(settings.seed, index, number)
        wrapped = _wrapped(env, perturbation, noise_seed)
        try:
            return run_attempt(
                wrapped,
                policy,
                reset_seed=reset_seed,
                sample_seed=np.random.SeedSequence([reset_seed, 7, number]),
                samples=settings.samples,
                **kwargs,
            )
        finally:
            if wrapped is not env:
                wrapped.close()

    base = attempt(0, monitor=monitor)  # the monitor only watches: the base arm is unchanged
    seconds, attempts = 0.0, []
    for number in range(settings.max_attempts):
        aborting = number < settings.max_attempts - 1  # the last attempt runs out
        if number == 0:  # same seeds as the base arm: it is the base run cut at the alarm
            cut = aborting and base.alarm_step >= 0
            attempts.append(Attempt(False, base.alarm_step, base.alarm_step) if cut else base)
        else:
            attempts.append(attempt(number, monitor=monitor, abort_on_alarm=aborting))
        seconds += attempts[-1].steps / hz
        if not (aborting and attempts[-1].alarm_step >= 0):
            break
        seconds += settings.reset_seconds
    first_alarm = attempts[0].alarm_step
    wrapped = _wrapped(env, spec.sample(settings.seed, index), settings.seed)
    supervisor = Supervisor(
        policy,
        monitor,
        parts["recovery"],
        samples=settings.samples,
        max_recovery_steps=settings.max_recovery_steps,
        calm_inferences=settings.calm_inferences,
        seed=reset_seed,
    )
    try:
        recovered, steps, switches = run_supervised(wrapped, supervisor, reset_seed=reset_seed)
    finally:
        if wrapped is not env:
            wrapped.close()
    return {
        "index": index,
        "family": family,
        "base": {"success": base.success, "seconds": base.steps / hz},
        "first_alarm_seconds": None if first_alarm < 0 else first_alarm / hz,
        "abort_retry": {
            "success": attempts[-1].success,
            "seconds": seconds,
            "attempts": len(attempts),
        },
        "recovery": {
            "success": recovered,
            "seconds": steps / hz,
            "switches": switches,
            "errors": len(supervisor.errors),
        },
    }


def closed_loop(
    settings: ClosedLoopSettings,
    n: int,
    *,
    workers: int = 1,
    backend: str = "local",
    progress: Any = None,
) -> dict[str, Any]:
    """Run ``n`` episodes of every arm and summarise them; ``progress(done, n)`` is called after
    each episode (optional). Every input is loaded once here first, so a bad path or spec fails
    before any worker starts.

    Returns:
        ``{"arms": {ARM: {"success_rate", "mean_time_to_success", "n", "by_family": {FAMILY:
        {"success_rate", "n"}}}}, "decision": {...}, "settings": {...}, "episodes": [...]}``;
        times in seconds of simulated time.
    """
    if n < 1:
        raise InvalidInputError(f"number of episodes must be >= 1, got {n}")
    check_inputs(settings)
    jobs = [(settings, i) for i in range(n)]
    episodes = []
    for done, record in enumerate(
        run_ordered(_episode, jobs, backend=backend, workers=workers), start=1
    ):
        episodes.append(record)
        if progress is not None:
            progress(done, n)
    return {
        "arms": {arm: _arm_summary(episodes, arm) for arm in ARMS},
        "decision": decision_summary(episodes, settings.reset_seconds),
        "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__ if k != "task"}
        | {"task": settings.task, "n": n},
        "episodes": episodes,
    }


def check_inputs(settings: ClosedLoopSettings) -> None:
    """Load every input once in this process, so a bad path or spec fails before any worker
    starts (robofail errors naming the input)."""
    parts = _components(settings)
    if parts["spec"].is_nominal:
        return
    for entry in parts["spec"].entries:
        from robofail.failgen.perturbation import perturbation_type

        if perturbation_type(entry.kind).level == "demo":
            raise InvalidInputError(
                f"spec perturbation {entry.kind!r} edits the scripted expert's keyframes; the "
                "closed loop runs a policy: use environment-level perturbations (e.g. "
                "--spec policy_failures)"
            )


def _arm_summary(episodes: list[dict], arm: str) -> dict[str, Any]:
    wins = [e[arm]["seconds"] for e in episodes if e[arm]["success"]]
    families: dict[str, list[bool]] = {}
    for e in episodes:
        families.setdefault(e["family"], []).append(e[arm]["success"])
    return {
        "success_rate": len(wins) / len(episodes),
        "mean_time_to_success": float(np.mean(wins)) if wins else None,
        "n": len(episodes),
        "by_family": {
            name: {"success_rate": sum(v) / len(v), "n": len(v)}
            for name, v in sorted(families.items())
        },
    }


def decision_summary(episodes: list[dict], reset_seconds: float) -> dict[str, Any]:
    """The abort-or-continue decision from the base arm and the monitor's first alarms.

    The base arm gives each episode's outcome and duration; the abort arm's first attempt (same
    seeds) tells whether and when the monitor flagged it.
    """
    from robofail.decision import AttemptModel, decide

    ok = [e for e in episodes if e["base"]["success"]]
    bad = [e for e in episodes if not e["base"]["success"]]
    if not ok:
        return {"skipped": "the base policy never succeeded: no makespan to compare"}

    def mean(values: list[float], default: float) -> float:
        return float(np.mean(values)) if values else default

    flagged_ok = [e["first_alarm_seconds"] for e in ok if e["first_alarm_seconds"] is not None]
    flagged_bad = [e["first_alarm_seconds"] for e in bad if e["first_alarm_seconds"] is not None]
    failure_seconds = mean([e["base"]["seconds"] for e in bad], 0.0)
    model = AttemptModel(
        p_success=len(ok) / len(episodes),
        tpr=len(flagged_bad) / len(bad) if bad else 0.0,
        fpr=len(flagged_ok) / len(ok),
        success=mean([e["base"]["seconds"] for e in ok], 0.0),
        failure=failure_seconds,
        abort_failure=mean(flagged_bad, failure_seconds),
        abort_success=mean(flagged_ok, 0.0),
        reset=reset_seconds,
    )
    verdict = decide(model)
    return {
        "model": {k: getattr(model, k) for k in model.__dataclass_fields__},
        "abort_on_alarm": verdict.abort_on_alarm,
        "makespan_continue": verdict.makespan_continue,
        "makespan_abort": verdict.makespan_abort,
        "explanation": verdict.explain(),
    }


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table: per arm the success rate, mean time to success and per-family rates."""
    arms = result["arms"]
    families = sorted({f for arm in arms.values() for f in arm["by_family"]})
    lines = [
        f"{'arm':<13}{'success':>8}{'t_success':>11}  " + "".join(f"{f[:12]:>13}" for f in families)
    ]
    for name, arm in arms.items():
        t = arm["mean_time_to_success"]
        cells = "".join(
            f"{arm['by_family'][f]['success_rate']:>12.0%} " if f in arm["by_family"] else " " * 13
            for f in families
        )
        time = "-" if t is None else f"{t:.1f} s"
        lines.append(f"{name:<13}{arm['success_rate']:>8.0%}{time:>11}  {cells}")
    counts = "".join(f"{arms['base']['by_family'][f]['n']:>13}" for f in families)
    lines.append(f"{'episodes':<13}{arms['base']['n']:>8}{'':>11}  {counts}")
    decision = result.get("decision", {})
    if "explanation" in decision:
        lines.append(f"decision (geometric retries, measured rates): {decision['explanation']}")
    return "\n".join(line.rstrip() for line in lines)


PLOT_KIND = "closed_loop"
"""The kind :func:`plot_bars` writes into its PNG (see :mod:`robofail.figures`)."""


def plot_bars(result: dict[str, Any], path: str | Path) -> Path:
    """Bar chart PNG: success rate per perturbation family (and overall), one bar per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = result["arms"]
    families = [*sorted(arms["base"]["by_family"]), "all"]
    x = np.arange(len(families))
    width = 0.8 / len(arms)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(families)), 3.6), dpi=120)
    for k, (name, arm) in enumerate(arms.items()):
        rates = [
            arm["success_rate"] if f == "all" else arm["by_family"][f]["success_rate"]
            for f in families
        ]
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, rates, width, label=name.replace("_", "/"))
    ax.set_xticks(x, [f.replace("_", "\n") for f in families], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate")
    ax.set_title(f"closed loop: {result['settings']['task']}, {result['settings']['n']} episodes")
    ax.legend(fontsize=8, ncol=len(arms))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path, PLOT_KIND)
    plt.close(fig)
    return path


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``result`` as JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return path
