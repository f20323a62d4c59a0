"""The verbs check their output paths before any work and never replace a file they did not write.

The expensive work (closed loop, export, training) is replaced by a stub that fails the test if
it is reached: a bad output path must be refused first, with exit status 2 and one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robofail.cli import main


def _never(*args, **kwargs):
    raise AssertionError("the work started although an output path was bad")


def _refused(argv: list, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


CLOSED_LOOP = ["closed-loop", "--task", "pick_place", "--policy", "p", "--monitor", "m",
               "--recovery", "r.onnx", "--spec", "policy_failures", "-n", "1"]  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "name", "content", "expected"),
    [
        ("--json", "closed_loop.h5", None, "must name a .json file"),
        ("--plot", "plot.txt", None, "must name a .png file"),
        ("--plot", "plots", None, "must name a .png file"),
        ("--json", "other.json", '{"mine": 1}', "not a file this command writes"),
        ("--plot", "other.png", "not a png", "not a file this command writes"),
        ("--plot", "b.png", "\x89PNG\r\n\x1a\n..tEXtSoftware\x00matplotlib", "not a file this"),
    ],
)
def test_closed_loop_checks_its_outputs_before_running(
    tmp_path, capsys, monkeypatch, flag, name, content, expected
):
    monkeypatch.setattr("robofail.recovery.closed_loop.closed_loop", _never)
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    message = _refused([*CLOSED_LOOP, flag, path], capsys)
    assert expected in message
    if content is not None:
        assert path.read_bytes() == content.encode("latin-1")


def test_closed_loop_rewrites_its_own_results(tmp_path, monkeypatch):
    """Running closed-loop again replaces the JSON and PNG it wrote before."""
    result = {
        "settings": {"task": "pick_place", "n": 2},
        "arms": {
            arm: {"success_rate": 0.5, "mean_time_to_success": 1.0, "n": 2,
                  "by_family": {"obs_noise": {"success_rate": 0.5, "n": 2}}}
            for arm in ("base", "abort_retry", "recovery")
        }
    }  # fmt: skip
    monkeypatch.setattr("robofail.recovery.closed_loop.closed_loop", lambda *a, **k: result)
    out_json, out_png = tmp_path / "closed_loop.json", tmp_path / "closed_loop.png"
    argv = [*CLOSED_LOOP, "--json", str(out_json), "--plot", str(out_png)]
    assert main(argv) == 0
    first = out_png.read_bytes()
    assert main(argv) == 0
    assert json.loads(out_json.read_text())["arms"]["base"]["n"] == 2
    assert out_png.read_bytes()[:8] == first[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_never_replaces_another_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("robofail.recovery.train.export_recovery", _never)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    assert "must name a .onnx file" in _refused(
        ["export", "--recovery", tmp_path, "--out", weights], capsys
    )
    other = tmp_path / "other.onnx"
    other.write_bytes(b"someone's model")
    assert "not a file this command writes" in _refused(
        ["export", "--recovery", tmp_path, "--out", other], capsys
    )
    assert weights.read_bytes() == b"weights" and other.read_bytes() == b"someone's model"


@pytest.mark.parametrize("verb", ["train-recovery", "train-policy"])
def test_overwrite_refuses_a_folder_with_other_files(tmp_path, capsys, monkeypatch, verb):
    monkeypatch.setattr("robofail.recovery.train.train_recovery", _never)
    monkeypatch.setattr("robofail.policy.train.train_flow_policy", _never)
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    data = "--data" if verb == "train-recovery" else "--demos"
    message = _refused([verb, data, tmp_path / "none.h5", "--out", out, "--overwrite"], capsys)
    assert "give a folder of its own" in message
    assert (out / "notes.txt").read_text() == "mine"


def test_train_recovery_out_must_be_a_folder_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("robofail.recovery.train.train_recovery_policy", _never)
    message = _refused(
        ["train-recovery", "--data", tmp_path / "d.h5", "--out", tmp_path / "r.onnx"], capsys
    )
    assert "robofail export" in message
    assert not (tmp_path / "r.onnx").exists()


def test_progress_bar_is_erased_when_the_work_fails(capsys):
    from robofail.cli_recovery import _run_with_progress
    from robofail.errors import InvalidInputError

    def work(progress):
        progress(1, 3)
        raise InvalidInputError("nothing to write")

    with pytest.raises(InvalidInputError):
        _run_with_progress("recovery-data", work)
    err = capsys.readouterr().err
    assert "\n" not in err.rstrip("\r"), repr(err)  # the bar's line was cleared, not left


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [("run.json", "[1, 2]", "not a quickstart record"), ("demos.h5", "mine", "no run.json")],
)
def test_quickstart_never_runs_over_files_it_did_not_write(tmp_path, name, content, expected):
    """The stages replace their outputs, so quickstart refuses a folder that is not its own."""
    from robofail.errors import OutputPathError
    from robofail.quickstart import quickstart

    (tmp_path / name).write_text(content)
    with pytest.raises(OutputPathError, match=expected):
        quickstart("push", tmp_path, run_verb=_never, echo=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert (tmp_path / name).read_text() == content


def test_quickstart_resumes_its_own_run(tmp_path):
    from robofail.quickstart import quickstart

    def run_verb(argv: list[str]) -> int:  # writes the stage's outputs, as the verb would
        for flag in ("--out", "--json", "--plot", "--plots"):
            if flag in argv:
                out = Path(argv[argv.index(flag) + 1])
                out.mkdir() if not out.suffix else out.write_text("")
        return 0

    first = quickstart("push", tmp_path, run_verb=run_verb, echo=lambda line: None)
    again = quickstart("push", tmp_path, run_verb=_never, echo=lambda line: None)
    assert len(first["stages"]) == 14
    assert all(stage["skipped"] for stage in again["stages"].values())


def test_report_refuses_a_folder_that_holds_no_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert "none of a pipeline run's files" in _refused(["report", tmp_path], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_report_refuses_to_replace_another_html_file(tmp_path, capsys):
    (tmp_path / "run.json").write_text("{}")
    page = tmp_path / "index.html"
    page.write_text("<html>mine</html>")
    assert "not a robofail report" in _refused(["report", tmp_path, "--out", page], capsys)
    assert page.read_text() == "<html>mine</html>"


def test_render_keeps_an_existing_video_without_overwrite(tmp_path, capsys):
    dataset, video = tmp_path / "d.h5", tmp_path / "v.mp4"
    dataset.write_bytes(b"")
    video.write_bytes(b"my video")
    assert "pass --overwrite" in _refused(["render", f"{dataset}:0", "--out", video], capsys)
    assert video.read_bytes() == b"my video"


def test_quickstart_resumes_a_run_killed_in_its_first_stage(tmp_path):
    """run.json is written before the first stage, so a stage's leftovers never lock the run."""
    from robofail.quickstart import quickstart

    def killed(argv: list[str]) -> int:
        (tmp_path / "demos.h5.tmp-123").write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quickstart("push", tmp_path, run_verb=killed, echo=lambda line: None)
    calls: list = []
    quickstart("push", tmp_path, run_verb=lambda argv: calls.append(argv) or 0,
               echo=lambda line: None)  # fmt: skip
    assert len(calls) == 14


def test_quickstart_refuses_a_run_json_folder(tmp_path, capsys):
    (tmp_path / "run.json").mkdir()
    assert "not a quickstart record" in _refused(["quickstart", "--out", tmp_path], capsys)


@pytest.mark.parametrize(
    "text", ['{"kind": ' + "1" * 5001 + "}", "[" * 200_000, "\udcff", '{"kind": "other"}']
)
def test_odd_marker_json_is_refused_not_a_traceback(tmp_path, capsys, monkeypatch, text):
    monkeypatch.setattr("robofail.policy.train.train_flow_policy", _never)
    out = tmp_path / "policy"
    out.mkdir()
    (out / "config.json").write_text(text, errors="surrogateescape")
    message = _refused(
        ["train-policy", "--demos", tmp_path / "d.h5", "--out", out, "--overwrite"], capsys
    )
    assert "holds something other than a policy" in message


def test_report_survives_odd_recorded_seconds(tmp_path):
    from robofail.report.pipeline_sections import _seconds

    assert [_seconds(v) for v in (10**400, -3, float("nan"), "x", True, 2.5)] == [
        0.0, 0.0, 0.0, 0.0, 0.0, 2.5,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sources", "refused"),
    [
        (["a.h5", "a.h5"], True),
        (["a.h5", "a.h5:failure"], True),
        (["a.h5:failure", "a.h5:failure"], True),
        (["a.h5:success", "a.h5:failure"], False),
        (["a.h5", "b.h5"], False),
    ],
)
def test_a_dataset_is_taken_once(tmp_path, monkeypatch, sources, refused):
    from robofail.errors import InvalidInputError
    from robofail.monitor.episodes import check_distinct_datasets, split_source

    monkeypatch.chdir(tmp_path)
    pairs = [split_source(source) for source in sources]
    if refused:
        with pytest.raises(InvalidInputError, match="listed twice"):
            check_distinct_datasets(pairs)
    else:
        check_distinct_datasets(pairs)
