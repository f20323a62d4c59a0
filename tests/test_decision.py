"""The abort-or-continue rule against a Monte-Carlo simulation of repeated attempts."""

import math

import numpy as np
import pytest

from robofail.decision import AttemptModel, decide
from robofail.errors import InvalidInputError


def simulate(model: AttemptModel, policy: str, tasks: int, seed: int) -> float:
    """Mean time to the first success over ``tasks`` simulated tasks; attempt durations drawn
    from gamma distributions (shape 4) with the model's means."""
    rng = np.random.default_rng(seed)

    def draw(mean: float) -> float:
        return float(rng.gamma(4.0, mean / 4.0)) if mean > 0 else 0.0

    total = 0.0
    for _ in range(tasks):
        while True:
            success = rng.random() < model.p_success
            flagged = rng.random() < (model.fpr if success else model.tpr)
            if policy == "abort" and flagged:
                total += draw(model.abort_success if success else model.abort_failure)
                total += draw(model.reset)
            elif success:
                total += draw(model.success)
                break
            else:
                total += draw(model.failure) + draw(model.reset)
    return total / tasks


# pick-and-place-like attempts: 3 s successes, failures run to the 10 s limit, alarms after ~4 s
MODELS = [
    AttemptModel(p_success=0.6, tpr=0.9, fpr=0.05, success=3.0, failure=10.0,
                 abort_failure=4.0, abort_success=2.0, reset=5.0),
    AttemptModel(p_success=0.9, tpr=0.5, fpr=0.3, success=3.0, failure=4.0,
                 abort_failure=3.5, abort_success=1.5, reset=1.0),
    AttemptModel(p_success=0.3, tpr=0.95, fpr=0.1, success=20.0, failure=60.0,
                 abort_failure=10.0, abort_success=5.0, reset=15.0),
]  # fmt: skip


@pytest.mark.parametrize("model", MODELS)
def test_predicted_makespans_match_monte_carlo_within_5_percent(model):
    decision = decide(model)
    simulated_continue = simulate(model, "continue", 6000, seed=1)
    simulated_abort = simulate(model, "abort", 6000, seed=2)
    assert math.isclose(decision.makespan_continue, simulated_continue, rel_tol=0.05)
    assert math.isclose(decision.makespan_abort, simulated_abort, rel_tol=0.05)
    assert decision.abort_on_alarm == (simulated_abort < simulated_continue)


def test_a_good_predictor_on_a_slow_failing_task_says_abort():
    decision = decide(MODELS[0])
    assert decision.abort_on_alarm and decision.saving > 0
    assert "abort and retry" in decision.explain()


def test_a_trigger_happy_predictor_says_run_it_out():
    decision = decide(MODELS[1])
    assert not decision.abort_on_alarm


def test_perfect_success_never_needs_a_retry():
    model = AttemptModel(p_success=1.0, tpr=0.0, fpr=0.0, success=3.0, failure=10.0,
                         abort_failure=1.0, abort_success=1.0)  # fmt: skip
    assert decide(model).makespan_continue == decide(model).makespan_abort == 3.0


@pytest.mark.parametrize(
    "field, value", [("tpr", 1.5), ("fpr", -0.1), ("p_success", 0.0), ("reset", float("nan")),
                     ("failure", -2.0), ("tpr", True)],
)  # fmt: skip
def test_bad_model_inputs_name_the_field(field, value):
    values = dict(p_success=0.5, tpr=0.8, fpr=0.1, success=1.0, failure=2.0,
                  abort_failure=1.0, abort_success=1.0, reset=0.5)  # fmt: skip
    values[field] = value
    with pytest.raises(InvalidInputError, match=field):
        AttemptModel(**values)
