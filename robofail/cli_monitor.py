"""The monitor's verbs of the ``robofail`` command: ``calibrate`` and ``evaluate``."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from robofail import cli_args as arg
from robofail.cli_args import check_result_file, json_with_keys
from robofail.errors import CorruptFileError, InvalidInputError, OutputPathError
from robofail.figures import is_robofail_png
from robofail.folders import check_writable

CALIBRATE_EXAMPLE = """example:
  robofail calibrate --policy models/pick_place/policy --rollouts data/pick_place_rollouts.h5 \\
      --val-failures data/pick_place_val_failures:failure --alpha 0.05 --out calib/pick_place

Datasets may end in :FILTER to take one mask filter (e.g. :failure, :success)."""

EVALUATE_EXAMPLE = """example:
  robofail evaluate --monitor calib/pick_place \\
      --rollouts data/pick_place_test.h5 data/pick_place_test_failures:failure \\
      --json metrics.json"""


def _policy_identity(policy_dir: str | None, extra: dict) -> tuple[str, list[int]]:
    """(fingerprint, position dims) from a saved policy's config.json, else from the rollouts."""
    fingerprint = str(extra.get("policy_fingerprint", ""))
    position_dims = extra.get("position_dims")
    if policy_dir is not None:
        if not Path(policy_dir).is_dir():
            raise InvalidInputError(
                f"--policy {policy_dir} is not a folder; pass the folder `robofail train-policy` "
                "wrote (e.g. models/pick_place/policy)"
            )
        path = Path(policy_dir) / "config.json"
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            raise InvalidInputError(
                f"--policy {policy_dir}: no config.json, not a saved policy"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptFileError(f"{path}: not valid JSON ({exc})") from None
        if not (
            isinstance(saved, dict)
            and saved.get("kind") == "flow_chunk_policy"
            and isinstance(saved.get("config"), dict)
        ):
            raise InvalidInputError(
                f"--policy {policy_dir}: its config.json is not a saved policy's; pass the folder "
                "`robofail train-policy` wrote"
            )
        policy_fp = str(saved.get("fingerprint", ""))
        if fingerprint and policy_fp and fingerprint != policy_fp:
            raise InvalidInputError(
                f"the rollouts were recorded with policy {fingerprint}, not {policy_dir} "
                f"({policy_fp}); calibrate on rollouts of this policy"
            )
        fingerprint = policy_fp or fingerprint
        position_dims = saved["config"].get("position_dims", position_dims)
    if not fingerprint:
        raise InvalidInputError(
            "the rollouts carry no policy fingerprint; pass --policy DIR (or record them with "
            "robofail.monitor.monitored_rollout, which stores it)"
        )
    if not position_dims:
        raise InvalidInputError("no position dims known for ACE; pass --position-dims, e.g. 0,1,2")
    return fingerprint, [int(d) for d in position_dims]


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the scores on successful rollouts, set conformal thresholds, write the artifact."""
    from robofail.monitor.calibrate import CalibrationSettings, calibrate
    from robofail.monitor.episodes import load_episodes

    out = Path(args.out)
    rollouts, extra = load_episodes(args.rollouts)
    failures = []
    if args.val_failures:
        failures, failure_extra = load_episodes(args.val_failures)
        if all(e.success for e in failures):
            raise InvalidInputError(
                f"--val-failures holds no failed episode ({len(failures)} successes); pass "
                "failed rollouts, e.g. a policy_failures dataset with :failure"
            )
        theirs = failure_extra.get("policy_fingerprint")
        if theirs and extra.get("policy_fingerprint") and theirs != extra["policy_fingerprint"]:
            raise InvalidInputError(
                "--val-failures come from another policy than --rollouts "
                f"({theirs} vs {extra['policy_fingerprint']})"
            )
    fingerprint, position_dims = _policy_identity(args.policy, extra)
    if args.position_dims:
        position_dims = args.position_dims
    settings = CalibrationSettings(
        alpha=args.alpha,
        delta=None if args.marginal else args.delta,
        seed=args.seed,
        fit_fraction=args.fit_fraction,
        validation_fraction=args.validation_fraction,
        training_steps=args.training_steps,
    )
    calibration = calibrate(
        rollouts,
        out,
        position_dims=position_dims,
        policy_fingerprint=fingerprint,
        validation_failures=failures,
        settings=settings,
        task=str(extra.get("task", "")),
        overwrite=args.overwrite,
        progress=lambda message: print(f"  {message}", flush=True),
    )
    counts = calibration["n_episodes"]
    print(
        f"calibrated {len(calibration['methods'])} methods at alpha={args.alpha} on "
        f"{counts['fit']} fit / {counts['threshold']} threshold / {counts['validation']} "
        f"validation successes and {counts['validation_failures']} validation failures -> {out}"
    )
    for name, record in calibration["selection"].items():
        if name == "ace_variant" or "skipped" in record:
            if "skipped" in record:
                print(f"  {name:<12} skipped: {record['skipped']}")
            continue
        chosen = f"windows {record['windows']}, {record['style']}"
        if "weights" in record:
            chosen += f", weights {record['weights']}"
        score = record.get("validation", {}).get("balanced_accuracy")
        tail = f", validation balanced accuracy {score:.3f}" if score is not None else ""
        print(f"  {name:<12} {chosen}{tail}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate every calibrated method on labelled rollouts: table, JSON, plots."""
    from robofail.monitor.episodes import load_episodes
    from robofail.monitor.evaluate import TABLE_LEGEND, evaluate, format_table

    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        check_result_file(json_path, "--json", (".json",), METRICS_JSON)
    if args.plots:
        _check_plots_folder(Path(args.plots))
    methods = None
    if args.methods is not None:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        if not methods:
            raise InvalidInputError(
                f"--methods {args.methods!r} names no method; give names like robofail,rnd or all"
            )
    episodes, extra = load_episodes(args.rollouts)
    evaluation = evaluate(
        args.monitor,
        episodes,
        methods=methods,
        policy_fingerprint=str(extra.get("policy_fingerprint", "")),
    )
    result = evaluation.result
    print(f"alpha {result['alpha']}; {len(episodes)} episodes")
    print(format_table(result))
    print(f"\nalarms counted only before step {result['length_cap_steps']} (95th percentile of "
          "the calibration successes' lengths):")  # fmt: skip
    print(format_table(result, "methods_length_capped"))
    print(textwrap.fill(TABLE_LEGEND, 100))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        partial = json_path.with_name(f".{json_path.name}.partial")
        partial.write_text(json.dumps(result, indent=1))
        partial.replace(json_path)
        print(f"wrote {json_path}")
    if args.plots:
        from robofail.monitor.plots import plot_roc, plot_traces, sample_episodes

        folder = Path(args.plots)
        folder.mkdir(parents=True, exist_ok=True)
        indices = sample_episodes(evaluation)
        method = "robofail" if "robofail" in evaluation.rules else next(iter(evaluation.rules))
        plot_traces(evaluation, method, folder / f"traces_{method}.png", indices)
        plot_roc(evaluation, folder / "roc.png")
        print(f"wrote plots to {folder}")
    return 0


METRICS_JSON = json_with_keys("alpha", "methods", "methods_length_capped")
PLOT_NAMES = {"roc.png": "roc", "traces_*.png": "traces"}
"""File name pattern -> plot kind of what ``evaluate --plots`` writes."""


def _check_plots_folder(folder: Path) -> None:
    """``--plots`` can take the PNGs: a writable folder whose files of those names are earlier
    plots of the same kind."""
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"--plots {folder} is a file; give a folder")
    check_writable(folder, "--plots")
    if folder.is_dir():
        for pattern, kind in PLOT_NAMES.items():
            for path in folder.glob(pattern):
                if not is_robofail_png(path, kind):
                    raise OutputPathError(
                        f"--plots {folder}: {path.name} exists and is not a robofail plot, so it "
                        "would be lost; give another folder"
                    )


def add_parsers(verb) -> None:
    """Register ``calibrate`` and ``evaluate`` with ``verb(name, func, help) -> parser``."""

    calib = verb(
        "calibrate",
        cmd_calibrate,
        "calibrate the failure monitor on successful rollouts (split conformal)",
        CALIBRATE_EXAMPLE,
    )
    calib.add_argument(
        "--rollouts", nargs="+", required=True, help="monitored rollouts (files/folders[:FILTER])"
    )
    calib.add_argument("--out", required=True, help="artifact folder, e.g. calib/pick_place")
    calib.add_argument("--policy", help="saved policy folder (optional if the rollouts name it)")
    calib.add_argument(
        "--val-failures",
        nargs="+",
        help="failed rollouts for choosing settings (a validation part, never the test part)",
    )
    calib.add_argument("--alpha", type=arg.alpha, default=0.05, help="false-alarm bound (0.05)")
    calib.add_argument(
        "--delta",
        type=arg.open_unit,
        default=0.1,
        help="P(false-alarm rate > alpha) <= delta over the calibration draw (default 0.1)",
    )
    calib.add_argument(
        "--marginal",
        action="store_true",
        help="plain split conformal: false-alarm rate <= alpha on average (ignores --delta)",
    )
    calib.add_argument(
        "--seed", type=arg.seed, default=0, help="split and fitting seed (default 0)"
    )
    calib.add_argument("--fit-fraction", type=arg.open_unit, default=0.3, help="default 0.3")
    calib.add_argument("--validation-fraction", type=arg.open_unit, default=0.3, help="default 0.3")
    calib.add_argument(
        "--training-steps",
        type=arg.positive_int,
        help="gradient steps of the learned scores (RND, logpZO; default 1500 and 3000)",
    )
    calib.add_argument(
        "--position-dims", type=arg.action_dims, help="action dims ACE looks at, e.g. 0,1,2"
    )
    calib.add_argument("--overwrite", action="store_true", help="replace an existing artifact")

    ev = verb(
        "evaluate",
        cmd_evaluate,
        "evaluate the calibrated methods on labelled rollouts (table, JSON, plots)",
        EVALUATE_EXAMPLE,
    )
    ev.add_argument("--monitor", required=True, help="calibration artifact folder")
    ev.add_argument(
        "--rollouts", nargs="+", required=True, help="labelled rollouts (files/folders[:FILTER])"
    )
    ev.add_argument("--methods", help="comma-separated method names, or 'all' (default)")
    ev.add_argument("--json", help="write the metrics here")
    ev.add_argument("--plots", help="folder for score-trace and ROC plots (PNG)")
