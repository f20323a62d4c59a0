"""robofail render: MP4s read back with OpenCV (frames and size), from stored images with the
monitor's strip and from simulator states; bad episodes, methods and outputs refused."""

import cv2
import numpy as np
import pytest

from robofail.cli import main
from robofail.data import open_dataset
from robofail.report.episode_ref import parse_episode_ref
from robofail.report.video import render_episode


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    capture.release()
    return frames


def test_stored_images_with_the_monitor_strip(run_folder, tmp_path):
    out = tmp_path / "failure.mp4"
    summary = render_episode(
        f"{run_folder}/test_failures:failure:1", out, monitor=run_folder / "calib", fps=5
    )
    with open_dataset(run_folder / "test_failures") as dataset:
        length = dataset[dataset.mask("failure")[1]].length
    frames = read_video(out)
    assert len(frames) == summary.frames == length  # stored images: one per control step
    assert frames[0].shape == (summary.height, summary.width, 3)
    assert summary.width == 480 and summary.source == "stored images"
    strip_first, strip_last = frames[0][-150:-40], frames[-1][-150:-40]
    assert np.abs(strip_first.astype(int) - strip_last).max() > 100  # the cursor moved
    assert not list(tmp_path.glob(".*"))


def test_simulator_frames_without_monitor(tmp_path, capsys):
    demos = tmp_path / "demos.h5"
    assert main(["demos", "--task", "push", "-n", "1", "--out", str(demos)]) == 0
    out = tmp_path / "demo.mp4"
    assert main(["render", f"{demos}:demo_0", "--camera", "top", "--out", str(out)]) == 0
    assert "from simulator" in capsys.readouterr().out
    with open_dataset(demos) as dataset:
        length = dataset[0].length
    frames = read_video(out)
    assert len(frames) == length + 1  # every stored state and the final one
    height, width, _ = frames[0].shape
    assert width == 640 and height > 480
    assert frames[0][:480].std() > 10  # a rendered scene, not a blank frame


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope.h5:0", "no such dataset"),
        ("{data}", "expected PATH"),
        ("{data}:failure", "neither demo_<i> nor a number"),
        ("{data}:failure:x", "give a position"),
    ],
)
def test_bad_episode_syntax(run_folder, text, fragment):
    from robofail.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=fragment):
        parse_episode_ref(text.format(data=run_folder / "test_rollouts.h5"))


def _one_line_error(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_cli_refuses_bad_input(run_folder, tmp_path, capsys):
    data = run_folder / "test_failures"
    out = str(tmp_path / "x.mp4")
    calib = str(run_folder / "calib")
    _one_line_error(capsys, ["render", f"{data}:demo_99", "--out", out], "has no demo_99")
    _one_line_error(capsys, ["render", f"{data}:failure:50", "--out", out], "holds 8 episodes")
    _one_line_error(capsys, ["render", f"{data}:nofilter:0", "--out", out], "no filter")
    _one_line_error(
        capsys, ["render", f"{data}:0", "--monitor", calib, "--method", "magic", "--out", out],
        "has no method 'magic'",
    )  # fmt: skip
    _one_line_error(capsys, ["render", f"{data}:0", "--method", "rnd", "--out", out], "--monitor")
    _one_line_error(capsys, ["render", f"{data}:0", "--out", str(tmp_path / "x.avi")], ".mp4")
    _one_line_error(
        capsys, ["render", f"{data}:0", "--out", str(run_folder / "run.json" / "x.mp4")],
        "cannot write",
    )  # fmt: skip
    _one_line_error(capsys, ["render", f"{data}:0", "--camera", "top", "--out", out], "--camera")
    _one_line_error(
        capsys,
        ["render", f"{run_folder / 'rollouts.h5'}:0", "--out", out],
        "nothing to render",
    )
    assert not list(tmp_path.iterdir())
