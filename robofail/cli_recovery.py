"""The recovery verbs of the ``robofail`` command: ``recovery-data``, ``train-recovery``,
``export`` and ``closed-loop``."""

from __future__ import annotations

import argparse
from pathlib import Path

from robofail import cli_args as arg
from robofail.cli_args import (
    check_new_file,
    check_result_file,
    json_with_keys,
)
from robofail.errors import InvalidInputError, OutputPathError, RobofailError
from robofail.figures import is_robofail_png

RECOVERY_DATA_EXAMPLE = """example:
  robofail recovery-data --task pick_place --failures data/pick_place_failures \\
      --monitor calib/pick_place --out data/pick_place_recovery.h5 --workers 2"""

TRAIN_EXAMPLE = """example:
  robofail train-recovery --task pick_place --data data/pick_place_recovery.h5 \\
      --out models/pick_place/recovery"""

EXPORT_EXAMPLE = """example:
  robofail export --recovery models/pick_place/recovery --out models/pick_place/recovery.onnx"""

CLOSED_LOOP_EXAMPLE = """example:
  robofail closed-loop --task pick_place --policy models/pick_place/policy \\
      --monitor calib/pick_place --recovery models/pick_place/recovery.onnx \\
      --spec policy_failures -n 200 --json closed_loop.json --plot closed_loop.png"""


class _Progress:
    """A progress bar that appears with the first finished item, so errors raised while the
    inputs are checked stay one line."""

    def __init__(self, desc: str) -> None:
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="ep")
        self.bar.update(done - self.bar.n)

    def close(self, failed: bool = False) -> None:
        """Close the bar; on failure erase it, so the error stays the only line."""
        if self.bar is not None:
            self.bar.leave = not failed
            self.bar.close()


def _run_with_progress(desc: str, work):
    """``work(progress)`` with a :class:`_Progress` bar that is erased if ``work`` raises."""
    progress = _Progress(desc)
    try:
        result = work(progress)
    except BaseException:
        progress.close(failed=True)
        raise
    progress.close()
    return result


def is_recovery_onnx(path: Path) -> bool:
    """Whether ``path`` is an ONNX recovery policy written by ``robofail export``."""
    from robofail.ort import load_session
    from robofail.recovery.runtime import RECOVERY_KIND

    try:
        metadata = load_session(path).get_modelmeta().custom_metadata_map
    except RobofailError:
        return False
    return metadata.get("robofail_kind") == RECOVERY_KIND


def cmd_recovery_data(args: argparse.Namespace) -> int:
    """Let the scripted expert rescue generated failures; keep the verified recoveries."""
    from robofail.recovery.data import RecoverySettings, collect_recoveries

    out = Path(args.out)
    check_new_file(out, "--out", arg.H5_SUFFIXES, overwrite=args.overwrite)
    if args.learner is None and (args.beta > 0 or args.check_every is not None):
        raise InvalidInputError(
            "--beta and --check-every set a DAgger round: add --learner MODEL.onnx or drop them"
        )
    settings = RecoverySettings(
        after=tuple(args.after),
        noise=tuple(args.noise),
        monitor=args.monitor,
        seed=args.seed,
        learner=args.learner,
        beta=args.beta,
        check_every=10 if args.check_every is None else args.check_every,
        teacher=args.teacher,
    )
    summary = _run_with_progress(
        f"recovery-data {args.task}",
        lambda progress: collect_recoveries(
            args.task,
            args.failures,
            out,
            settings=settings,
            workers=args.workers,
            limit=args.limit,
            progress=progress,
        ),
    )
    print(summary.table())
    judged = sum(summary.judged.values())
    other = f" (+ the other expert's rescues of {judged} failures)" if judged else ""
    print(f"wrote {sum(summary.kept.values())} verified recoveries by the {args.teacher} teacher"
          f"{other} to {out}")  # fmt: skip
    return 0


def cmd_train_recovery(args: argparse.Namespace) -> int:
    """Train the recovery policy on recovery data."""
    from robofail.recovery.train import train_recovery_policy

    out = Path(args.out)
    if out.suffix.lower() == ".onnx":
        raise OutputPathError(
            f"--out {out} is the recovery policy's folder (torch weights); the .onnx file comes "
            "from `robofail export --recovery FOLDER --out FILE.onnx`: give a folder name"
        )
    record = train_recovery_policy(
        args.data,
        args.out,
        task=args.task,
        horizon=args.horizon,
        exec_horizon=args.exec_horizon,
        obs_horizon=args.obs_horizon,
        window_summary=args.window_summary,
        condition_on_failure=args.condition_on_failure,
        steps=args.steps,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    training = record["training"]
    print(
        f"trained on {training['pairs']} pairs, {training['steps']} steps in "
        f"{training['seconds']:.0f} s (final loss {training['final_loss']:.4f}) -> {args.out}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained recovery policy to one ONNX file (parity-checked)."""
    from robofail.recovery.train import export_recovery

    out = Path(args.out)
    check_result_file(out, "--out", (".onnx",), is_recovery_onnx)
    result = export_recovery(args.recovery, out)
    print(
        f"wrote {out} ({result['bytes'] / 1024:.0f} KiB, fingerprint {result['fingerprint']}); "
        f"torch vs onnxruntime max |diff| {result['max_abs_diff']:.1e}"
    )
    return 0


def cmd_closed_loop(args: argparse.Namespace) -> int:
    """Base policy vs abort-and-retry vs recovery, closed loop under a failure spec."""
    from robofail.recovery.closed_loop import (
        PLOT_KIND,
        ClosedLoopSettings,
        closed_loop,
        format_table,
        plot_bars,
        write_json,
    )

    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        check_result_file(json_path, "--json", (".json",), json_with_keys("arms"))
    if args.plot:
        check_result_file(
            Path(args.plot), "--plot", (".png",), lambda path: is_robofail_png(path, PLOT_KIND)
        )
    settings = ClosedLoopSettings(
        task=args.task,
        policy=args.policy,
        monitor=args.monitor,
        recovery=args.recovery,
        spec=args.spec,
        seed=args.seed,
        samples=args.samples,
        method=args.method,
        max_attempts=args.max_attempts,
        reset_seconds=args.reset_seconds,
        max_recovery_steps=args.max_recovery_steps,
        calm_inferences=args.calm_inferences,
    )
    result = _run_with_progress(
        f"closed-loop {args.task}",
        lambda progress: closed_loop(settings, args.n, workers=args.workers, progress=progress),
    )
    print(format_table(result))
    if json_path is not None:
        write_json(result, json_path)
        print(f"wrote {json_path}")
    if args.plot:
        print(f"wrote {plot_bars(result, args.plot)}")
    return 0


def add_parsers(verb) -> None:
    """Register the recovery verbs with the CLI's ``verb(name, func, help, example)``."""

    data = verb(
        "recovery-data",
        cmd_recovery_data,
        "let the scripted expert rescue generated failures from their onset, later steps and "
        "the monitor's first alarm; keep the simulator-verified recoveries",
        RECOVERY_DATA_EXAMPLE,
    )
    data.add_argument("--task", required=True, help="task the failures were generated on")
    data.add_argument("--failures", required=True, help="failure dataset (robofail generate)")
    data.add_argument("--out", required=True, help="output .h5 file")
    data.add_argument("--monitor", help="calibration artifact: also restart at its first alarm")
    data.add_argument(
        "--after",
        type=float,
        nargs="*",
        default=[0.5],
        help="fractions of the way from onset to failure to restart from (default 0.5)",
    )
    data.add_argument(
        "--noise",
        type=arg.action_noise,
        nargs="+",
        default=[0.0, 0.1],
        help="executed-action noise std of each expert run per start (default 0 0.1)",
    )
    data.add_argument(
        "--learner",
        help="DAgger round: this exported recovery policy (.onnx) acts from every start and the "
        "expert labels the states it visits (verified; see robofail.recovery.data)",
    )
    data.add_argument(
        "--beta",
        type=arg.probability,
        default=0.0,
        help="DAgger: per-step probability that the expert's action runs instead (default 0)",
    )
    data.add_argument(
        "--check-every",
        type=arg.positive_int,
        help="DAgger: learner steps between the expert's verification takeovers (default 10)",
    )
    data.add_argument(
        "--teacher",
        choices=["privileged", "observation"],
        default="privileged",
        help="expert whose verified rescues are the training labels: privileged (reads the "
        "simulator, default) or observation (plans from the observed state, faults included); "
        "the other runs once, clean, from every start to measure its recoverability",
    )
    data.add_argument("--limit", type=arg.positive_int, help="use only the first N failures")
    data.add_argument("--seed", type=arg.seed, default=0, help="noise seed (default 0)")
    data.add_argument("--workers", type=arg.workers, default=1, help="processes (default 1)")
    data.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    train = verb("train-recovery", cmd_train_recovery, "train the recovery policy", TRAIN_EXAMPLE)
    train.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="recovery data (robofail recovery-data); several files: expert data + DAgger rounds",
    )
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--task", help="expected task of the data (checked)")
    train.add_argument("--horizon", type=arg.positive_int, default=8, help="chunk length (8)")
    train.add_argument(
        "--exec-horizon", type=arg.positive_int, default=2, help="actions run per inference (2)"
    )
    train.add_argument(
        "--obs-horizon",
        type=arg.positive_int,
        default=8,
        help="states the policy looks at: the newest and the N - 1 before it (8)",
    )
    train.add_argument(
        "--window-summary",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the network sees the window's mean and newest state, a built-in filter for noisy "
        "observations (default: on when --obs-horizon > 1)",
    )
    train.add_argument(
        "--condition-on-failure",
        action="store_true",
        help="add the failure type as an input (the controller must then name it)",
    )
    train.add_argument(
        "--steps", type=arg.positive_int, default=6000, help="optimiser steps (6000)"
    )
    train.add_argument("--seed", type=arg.seed, default=0, help="default 0")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out")

    export = verb(
        "export",
        cmd_export,
        "export a trained recovery policy to one self-contained ONNX file (dynamic batch, "
        "metadata, onnx.checker, torch vs onnxruntime parity checked)",
        EXPORT_EXAMPLE,
    )
    export.add_argument("--recovery", required=True, help="trained recovery policy folder")
    export.add_argument("--out", required=True, help="output .onnx file (replaced atomically)")

    loop = verb(
        "closed-loop",
        cmd_closed_loop,
        "success rate and time to success of the base policy, base + monitor + abort/retry, "
        "and base + monitor + recovery, per perturbation family",
        CLOSED_LOOP_EXAMPLE,
    )
    loop.add_argument("--task", required=True, help="task name (see `robofail tasks`)")
    loop.add_argument("--policy", required=True, help="saved base policy folder")
    loop.add_argument("--monitor", required=True, help="calibration artifact folder")
    loop.add_argument("--recovery", required=True, help="recovery policy .onnx file")
    loop.add_argument(
        "--spec", required=True, help="environment-level failure spec, e.g. policy_failures"
    )
    loop.add_argument("-n", type=arg.positive_int, required=True, help="episodes per arm")
    loop.add_argument("--seed", type=arg.seed, default=0, help="run seed (use one not trained on)")
    loop.add_argument("--samples", type=arg.samples, default=32, help="chunks per inference")
    loop.add_argument("--method", help="monitor method (default: the artifact's, robofail)")
    loop.add_argument(
        "--max-attempts", type=arg.positive_int, default=3, help="abort/retry attempts (3)"
    )
    loop.add_argument(
        "--reset-seconds",
        type=arg.seconds,
        default=5.0,
        help="time to reset the scene after an aborted attempt (5 s)",
    )
    loop.add_argument(
        "--max-recovery-steps",
        type=arg.positive_int,
        default=100,  # Supervisor's MAX_RECOVERY_STEPS (not imported: it loads onnxruntime)
        help="control steps recovery may act per alarm (100)",
    )
    loop.add_argument(
        "--calm-inferences",
        type=arg.positive_int,
        default=8,  # Supervisor's CALM_INFERENCES
        help="alarm-free monitor verdicts in a row that end recovery early (8)",
    )
    loop.add_argument("--workers", type=arg.workers, default=1, help="processes (default 1)")
    loop.add_argument("--json", help="write the results here")
    loop.add_argument("--plot", help="write the success-rate bar chart here (PNG)")
