"""The report verbs of the ``robofail`` command: ``report`` (one HTML page for a run folder) and
``render`` (one episode as a video)."""

from __future__ import annotations

import argparse
from pathlib import Path

REPORT_EXAMPLE = """example:
  robofail report runs/quickstart        # writes runs/quickstart/report.html

Sections whose inputs are missing name the command that produces them."""

RENDER_EXAMPLE = """examples:
  robofail render runs/quickstart/test_failures:failure:0 --monitor runs/quickstart/calib \\
      --out failure0.mp4
  robofail render runs/quickstart/demos.h5:demo_3 --camera top --out demo3.mp4

EPISODE is PATH:demo_<i> (a stored episode name), PATH:<k> (the k-th episode, from 0; -1 is the
last) or PATH:<FILTER>:<k> (the k-th episode of a filter such as failure, success or a failure
type)."""


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of a run folder."""
    from robofail.report.build import build_report

    out = build_report(args.run_dir, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Render one stored episode to MP4, with the monitor's scores when --monitor is given."""
    from robofail.report.video import render_episode

    summary = render_episode(
        args.episode,
        Path(args.out),
        monitor=args.monitor,
        method=args.method,
        camera=args.camera,
        fps=args.fps,
        overwrite=args.overwrite,
    )
    print(
        f"wrote {summary.out}: {summary.frames} frames of {summary.width}x{summary.height} at "
        f"{summary.fps:g} fps from {summary.source} ({summary.episode})"
    )
    return 0


def _frame_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be in [1, 1000], got {text}")
    return value


def add_parsers(verb) -> None:
    """Register ``report`` and ``render`` with ``verb(name, func, help, example) -> parser``."""
    report = verb(
        "report",
        cmd_report,
        "one self-contained HTML page for a pipeline run folder: methods, score traces, ROC, "
        "detection times, failures by type, failure boundary, closed loop, timings",
        REPORT_EXAMPLE,
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="run folder (robofail quickstart's)")
    report.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")

    render = verb(
        "render",
        cmd_render,
        "render one stored episode to MP4 (simulator states or stored images), optionally with "
        "the monitor's scores, thresholds and alarm beneath the frames",
        RENDER_EXAMPLE,
    )
    render.add_argument(
        "episode", metavar="EPISODE", help="PATH:demo_<i>, PATH:<k> or PATH:<FILTER>:<k>"
    )
    render.add_argument("--out", required=True, help="video file to write (.mp4)")
    render.add_argument("--monitor", help="calibration artifact folder: draw its scores")
    render.add_argument("--method", help="calibrated method to show (default: the artifact's)")
    render.add_argument("--camera", help="scene camera, e.g. front or top (simulator frames)")
    render.add_argument(
        "--fps", type=_frame_rate, help="frames per second (default: the control rate)"
    )
    render.add_argument("--overwrite", action="store_true", help="replace an existing --out")
