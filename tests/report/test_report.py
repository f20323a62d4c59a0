"""robofail report: every section on a complete run folder, missing inputs named with their
commands, a self-contained page, one-line errors; in Chromium when it is installed (slow)."""

import base64
import json
import re
import shutil
import subprocess

import pytest

from robofail.cli import main
from robofail.report.build import build_report

SECTION_TITLES = (
    "Methods", "Score traces", "ROC curves", "Detection and lead times", "Failures by type",
    "Failure boundary", "Closed loop", "Run timings",
)  # fmt: skip

IMAGE = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def page(run_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "report.html"
    assert build_report(run_folder, out) == out
    return out


def test_every_section_is_there_with_embedded_images(page):
    text = page.read_text()
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in text, title
    assert "Missing input" not in text and 'class="error"' not in text
    images = IMAGE.findall(text)
    # traces, ROC, histograms, failure types, boundary, closed loop
    assert len(images) == 6
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert text.count("<img") == len(images)
    for external in ("http://", "https://", "<script", "<link", "url("):
        assert external not in text


def test_tables_hold_the_runs_numbers(page, run_folder):
    text = page.read_text()
    metrics = json.loads((run_folder / "metrics.json").read_text())
    for method in metrics["methods"]:
        assert f"<td>{method}</td>" in text
    assert "Alarms counted only before step" in text
    assert "unreachable_goal" in text and "goal_jump" in text  # failure types and families
    assert "abort_retry" in text and "80.0 %" in text  # closed loop
    assert "calibrate" in text and "40.0" in text  # run timings
    assert "robofail render " in text and "test_failures:demo_" in text


def test_missing_inputs_name_their_commands(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"task": "push", "seed": 3}))
    text = build_report(run).read_text()
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in text, title
    assert text.count('class="missing"') == len(SECTION_TITLES)
    for command in (
        f"robofail calibrate --rollouts {run}/rollouts.h5",
        f"robofail rollout --task push --policy {run}/policy",
        f"robofail evaluate --monitor {run}/calib",
        "robofail generate --task push --spec policy_failures",
        "robofail discover --task push",
        "robofail closed-loop --task push",
        f"robofail quickstart --task push --out {run}",
    ):
        assert command in text, command
    assert "<img" not in text


def test_a_broken_input_is_named_and_the_rest_still_shown(run_folder, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_folder, run)
    (run / "closed_loop.json").write_text("{not json")
    (run / "metrics.json").write_text(json.dumps({"alpha": 0.1}))
    text = build_report(run).read_text()
    assert "closed_loop.json is not closed-loop" in text
    assert "metrics.json is not evaluate" in text
    assert len(IMAGE.findall(text)) == 5


def _one_line_error(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_cli_writes_the_page_and_refuses_bad_input(run_folder, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(run_folder), "--out", str(out)]) == 0
    assert "self-contained" in capsys.readouterr().out and out.exists()
    _one_line_error(capsys, ["report", str(tmp_path / "nope")], "no such run folder")
    _one_line_error(capsys, ["report", str(out)], "is a file")
    _one_line_error(capsys, ["report", str(run_folder), "--out", str(tmp_path)], "is a folder")
    _one_line_error(
        capsys, ["report", str(run_folder), "--out", str(out / "x.html")], "cannot write"
    )
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_chromium_renders_the_page(page, tmp_path):
    import cv2

    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1400,6000", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = cv2.imread(str(shot))
    assert image.shape == (6000, 1400, 3)
    # the page is long and drawn all the way: figures and tables down to the closed loop
    rows_with_ink = (image.std(axis=(1, 2)) > 10).nonzero()[0]
    assert rows_with_ink.max() > 4000
