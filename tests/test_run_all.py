"""``benchmarks/run_all.py`` renders RESULTS.md from the JSON in ``benchmarks/results/`` (one
section per file, a broken one noted in its own section) and README's block between the markers.
Runs no benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.run_all import (
    BENCHMARKS,
    END,
    RESULTS_DIR,
    START,
    render_results,
    render_summary,
    replace_block,
    select,
)


def arm(rate: float, time: float | None, by_family: dict[str, float]) -> dict:
    """One arm of a closed-loop result, as ``robofail.recovery.closed_loop`` summarises it."""
    return {
        "success_rate": rate,
        "mean_time_to_success": time,
        "n": 4,
        "by_family": {name: {"success_rate": r, "n": 2} for name, r in by_family.items()},
    }


CLOSED_LOOP = {
    "benchmark": "closed_loop",
    "machine": {"platform": "Synthetic-1.0", "python": "3.11"},
    "recoverable_threshold": 0.5,
    "judge": "observation",
    "judge_start": "alarm",
    "tasks": {
        "pick_place": {
            "arms": {
                "base": arm(0.25, 4.0, {"friction": 0.5, "slip": 0.0}),
                "abort_retry": arm(0.5, 9.5, {"friction": 0.5, "slip": 0.5}),
                "recovery": arm(0.75, 4.5, {"friction": 1.0, "slip": 0.5}),
            },
            "decision": {"explanation": "continue: synthetic"},
            "settings": {"n": 4, "spec": "policy_failures", "seed": 500, "task": "pick_place"},
            "families": {
                "friction": {
                    "recoverability_privileged": 0.9,
                    "recoverability_privileged_at_alarm": 0.85,
                    "recoverability_observable": 0.8,
                    "recoverability_observable_at_alarm": 0.6,
                    "recoverable": True,
                    "gain_points": 50.0,
                    "n": 2,
                },
                "slip": {
                    "recoverability_privileged": 1.0,
                    "recoverability_privileged_at_alarm": 0.5,
                    "recoverability_observable": 0.25,
                    "recoverability_observable_at_alarm": 0.0,
                    "recoverable": False,
                    "gain_points": 50.0,
                    "n": 2,
                },
            },
            "pooled_gain_recoverable": 50.0,
        }
    },
}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A copy of ``benchmarks/results`` plus a synthetic closed_loop.json."""
    folder = tmp_path / "results"
    shutil.copytree(RESULTS_DIR, folder)
    (folder / "closed_loop.json").write_text(json.dumps(CLOSED_LOOP))
    return folder


def test_every_json_gets_a_section(results: Path) -> None:
    text = render_results(results)
    for path in results.glob("*.json"):
        assert f"`results/{path.name}`, from `" in text, path.name
    assert "could not" not in text
    for bench in BENCHMARKS:
        assert f"## {bench.title}\n" in text
        if not (results / bench.json).exists():
            assert f"_No `results/{bench.json}` yet: run `{bench.command}`._" in text


def test_closed_loop_tables(results: Path) -> None:
    text = render_results(results)
    section = text[text.index("## Closed loop\n") :]
    assert "ran on Synthetic-1.0, python 3.11" in section
    assert "| pick_place | 4 | 25 % (4.0 s) | 50 % (9.5 s) | 75 % (4.5 s) |" in section
    rows = [
        "| friction | 2 | 50 % | 50 % | 100 % | 90.0 % | 85.0 % | 80.0 % | 60.0 % | yes | +50 |",
        "| slip | 2 | 0 % | 50 % | 50 % | 100.0 % | 50.0 % | 25.0 % | 0.0 % | no | +50 |",
    ]
    assert all(row in section for row in rows)
    assert "observable recoverability from the first alarm is at least 50 %" in section
    assert "Pooled gain over the recoverable families: +50 points." in section
    assert "continue: synthetic" in section


def test_a_broken_json_is_noted_and_the_others_render(results: Path) -> None:
    (results / "recovery.json").write_text(json.dumps({"benchmark": "recovery_latency"}))
    (results / "soak.json").write_text("{not json")
    (results / "extra.json").write_text(json.dumps({"a": {"b": [1, 2.5]}, "ok": True}))
    text = render_results(results)
    recovery = text[text.index("## Recovery policy latency\n") : text.index("## Monitor latency")]
    assert "_could not render: KeyError: 'results'_" in recovery
    assert "_could not read `results/soak.json`:" in text
    assert "| `a.b[1]` | 2.5 |" in text and "| `ok` | yes |" in text
    assert "| pick_place | 4 | 25 % (4.0 s)" in text


def test_readme_block_is_replaced_between_the_markers(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before, after = "# Project\n\nintro\n\n", "\n\n## Development\n\nrest\n"
    readme.write_text(f"{before}{START}\nold summary\n{END}{after}")
    summary = render_summary(results)
    assert replace_block(readme, summary)
    text = readme.read_text()
    assert text.startswith(before + START + "\n") and text.endswith(END + after)
    assert "old summary" not in text
    assert "[benchmarks/RESULTS.md](benchmarks/RESULTS.md)" in text
    assert "| robofail |" in text  # monitor quality mean balanced accuracy
    assert "| pick_place | 4 | 25 % (4.0 s)" in text  # closed loop
    assert "| Monitor.update, interleaved with torch |" in text  # latency
    assert replace_block(readme, summary) and readme.read_text() == text  # idempotent


def test_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n{START}\nno end marker\n")
    assert not replace_block(readme, "summary")
    assert readme.read_text() == f"# Project\n{START}\nno end marker\n"


def test_selection() -> None:
    names = [bench.name for bench in select([], [], quick=True)]
    assert not {"policy_quality", "monitor_quality", "closed_loop"} & set(names)
    assert names[0] == "bad_inputs" and "camera_faults" in names
    assert [b.name for b in select(["closed_loop", "sim"], [], quick=True)] == [
        "sim",
        "closed_loop",
    ]
    assert "sim" not in [b.name for b in select([], ["sim"], quick=False)]
