"""The closed loop's summary: the stable JSON of issue 6, the decision block, table and chart."""

from __future__ import annotations

import json
import math

import numpy as np

from robofail.recovery.closed_loop import (
    ARMS,
    _arm_summary,
    decision_summary,
    format_table,
    plot_bars,
)


def records(rng: np.random.Generator, n: int = 60) -> list[dict]:
    families = ["init_pose", "obs_noise", "none"]
    out = []
    for i in range(n):
        base_ok = bool(rng.random() < 0.5)
        alarm = None if base_ok and rng.random() < 0.9 else float(rng.uniform(0.5, 3.0))
        out.append({
            "index": i,
            "family": families[i % 3],
            "base": {"success": base_ok, "seconds": 3.0 if base_ok else 10.0},
            "first_alarm_seconds": alarm,
            "abort_retry": {"success": bool(rng.random() < 0.6), "seconds": 9.0, "attempts": 2},
            "recovery": {"success": bool(rng.random() < 0.8), "seconds": 4.0, "switches": 1,
                         "errors": 0},
        })  # fmt: skip
    return out


def test_arm_summary_has_the_stable_keys_and_counts(tmp_path):
    episodes = records(np.random.default_rng(0))
    arms = {arm: _arm_summary(episodes, arm) for arm in ARMS}
    for arm, summary in arms.items():
        assert set(summary) == {"success_rate", "mean_time_to_success", "n", "by_family"}
        assert summary["n"] == len(episodes)
        wins = [e for e in episodes if e[arm]["success"]]
        assert math.isclose(summary["success_rate"], len(wins) / len(episodes))
        assert math.isclose(
            summary["mean_time_to_success"], np.mean([e[arm]["seconds"] for e in wins])
        )
        assert sum(f["n"] for f in summary["by_family"].values()) == len(episodes)
        for family, row in summary["by_family"].items():
            members = [e[arm]["success"] for e in episodes if e["family"] == family]
            assert set(row) == {"success_rate", "n"} and row["n"] == len(members)
            assert math.isclose(row["success_rate"], sum(members) / len(members))
    result = {"arms": arms, "decision": decision_summary(episodes, 5.0),
              "settings": {"task": "pick_place", "n": len(episodes)}}  # fmt: skip
    json.dumps(result)  # JSON-serialisable as written
    table = format_table(result)
    assert all(arm in table for arm in ARMS) and "decision" in table
    chart = plot_bars(result, tmp_path / "bars.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_decision_uses_the_measured_confusion_matrix():
    episodes = records(np.random.default_rng(1))
    decision = decision_summary(episodes, 5.0)
    model = decision["model"]
    ok = [e for e in episodes if e["base"]["success"]]
    bad = [e for e in episodes if not e["base"]["success"]]
    assert math.isclose(model["p_success"], len(ok) / len(episodes))
    assert math.isclose(
        model["tpr"], sum(e["first_alarm_seconds"] is not None for e in bad) / len(bad)
    )
    assert math.isclose(
        model["fpr"], sum(e["first_alarm_seconds"] is not None for e in ok) / len(ok)
    )
    assert decision["abort_on_alarm"] == (
        decision["makespan_abort"] < decision["makespan_continue"]
    )
    never = [{**e, "base": {"success": False, "seconds": 10.0}} for e in episodes]
    assert "skipped" in decision_summary(never, 5.0)
