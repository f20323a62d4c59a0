"""The ``robofail`` command: one sub-command per verb, each a thin layer over the library.

Errors a user can cause (:class:`robofail.errors.RobofailError`, bad arguments) are printed as one
line on stderr with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# OpenMP threads (torch's intra-op pool) that wait at a barrier sleep instead of spinning: with
# spinning, training with 2 threads on 2 cores ran 43 s/epoch instead of 1.7 s when another process
# held one core. Set before torch loads; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from robofail import __version__
from robofail import cli_args as arg
from robofail.cli_export import add_parsers as add_export_parsers
from robofail.cli_monitor import add_parsers as add_monitor_parsers
from robofail.cli_recovery import add_parsers as add_recovery_parsers
from robofail.cli_report import add_parsers as add_report_parsers
from robofail.errors import InvalidInputError, RobofailError
from robofail.folders import check_replaceable_folder, staged_folder

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``robofail demos: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


POLICY_FILES = ("config.json", "model.safetensors", "loss_curve.png", "train_log.json")

RAY_WORKERS_HELP = (
    "processes, or Ray CPUs (default 1; at most twice this machine's CPUs, except on a Ray "
    "cluster: --address)"
)


def check_policy_folder(path: Path, *, overwrite: bool) -> None:
    """Fail fast, before training, unless ``path`` can become a policy folder: new, or (with
    ``overwrite``) holding nothing but an earlier policy (the folder is replaced as a whole)."""
    check_replaceable_folder(
        path,
        "--out",
        "policy",
        "config.json",
        "flow_chunk_policy",
        POLICY_FILES.__contains__,
        overwrite=overwrite,
    )


def _write_with_summary(out: Path, episodes, info, n: int, desc: str, noun: str) -> None:
    """Write ``n`` episodes to one file with a progress bar, then print the success rate."""
    from tqdm import tqdm

    from robofail.data import write_episodes

    start, successes = time.perf_counter(), 0

    def counted(items):
        nonlocal successes
        for episode in tqdm(items, total=n, desc=desc, unit="ep"):
            successes += episode.label.success
            yield episode

    write_episodes(out, counted(episodes), info)
    print(
        f"wrote {n} {noun} to {out}: success rate {successes / n:.1%} ({successes}/{n}), "
        f"{time.perf_counter() - start:.1f} s"
    )


# --------------------------------------------------------------------------- verbs
def cmd_tasks(args: argparse.Namespace) -> int:
    """List the bundled tasks with their observation and action names."""
    from robofail.tasks import TASKS

    for entry in TASKS.values():
        env = entry.env_type()
        print(
            f"{entry.name}  ({entry.env_id}, {env.control_hz:g} Hz, {env.max_episode_steps} steps)"
        )
        print(f"  actions ({len(env.action_names)}): {', '.join(env.action_names)}")
        print(f"  state   ({len(env.state_names)}): {', '.join(env.state_names)}")
        print(f"  phases: {', '.join(env.phase_names)}")
    return 0


def cmd_demos(args: argparse.Namespace) -> int:
    """Collect scripted-expert demonstrations into one HDF5 file."""
    from robofail.tasks import get_task, make_env
    from robofail.tasks.demos import collect_demos, dataset_info

    task = get_task(args.task).name
    out = Path(args.out)
    arg.check_new_file(out, "--out", arg.H5_SUFFIXES, overwrite=args.overwrite)
    env = make_env(task, obs_image=args.image)
    info = dataset_info(env, seed=args.seed, action_noise=args.noise, source="scripted_expert")
    env.close()
    episodes = collect_demos(
        task,
        args.n,
        seed=args.seed,
        workers=args.workers,
        action_noise=args.noise,
        obs_image=args.image,
    )
    _write_with_summary(out, episodes, info, args.n, f"demos {task}", "episodes")
    return 0


def _position_dims(given: list[int] | None, info, n_actions: int) -> list[int]:
    """``--position-dims`` if given, else the dataset's, else every action dim."""
    if given is not None:
        return given
    return list(info.extra.get("position_dims", range(n_actions)))


def _default_exec_horizon(task: str) -> int:
    """The bundled task's recommended executed actions per chunk, 8 for other datasets."""
    from robofail.tasks import TASKS

    entry = TASKS.get(task)
    return entry.env_type().policy_exec_horizon if entry else 8


def cmd_train_policy(args: argparse.Namespace) -> int:
    """Train the reference flow-matching chunk policy on a dataset."""
    import json

    from robofail.data import open_dataset
    from robofail.policy.train import (
        TrainConfig,
        policy_config_for,
        save_loss_curve,
        train_flow_policy,
    )

    out = Path(args.out)
    check_policy_folder(out, overwrite=args.overwrite)
    with open_dataset(args.demos) as dataset:
        info = dataset.info
        if args.task is not None and args.task not in (info.task, info.env_id):
            raise InvalidInputError(
                f"{args.demos} holds demos of task {info.task!r}, not {args.task!r}; "
                "pass the matching --task or another --demos file"
            )
        episodes = list(dataset)
    longest = max((e.length for e in episodes), default=0)
    for flag, value in (("--horizon", args.horizon), ("--obs-horizon", args.obs_horizon)):
        if episodes and value > longest:
            raise InvalidInputError(
                f"{flag} {value} is longer than the longest demo in {args.demos} ({longest} "
                f"steps); give at most {longest}"
            )
    overrides = {"obs_horizon": args.obs_horizon, "horizon": args.horizon}
    overrides["exec_horizon"] = args.exec_horizon or _default_exec_horizon(info.task)
    if args.image:
        if "image" not in info.obs_names:
            raise InvalidInputError(f"{args.demos} has no images; record demos with --image")
        first = episodes[0].obs["image"]
        overrides["image_size"] = list(first.shape[1:3])
    position_dims = _position_dims(args.position_dims, info, len(info.action_names))
    config = policy_config_for(info, position_dims, **overrides)
    config.validate()
    train = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, threads=args.threads
    )
    result = train_flow_policy(episodes, config, train)
    log = {
        "demos": str(args.demos),
        "episodes": result.episodes,
        "pairs": result.pairs,
        "epochs": args.epochs,
        "seconds": result.seconds,
        "final_loss": result.losses[-1],
        "losses": result.losses,
        "fingerprint": result.policy.fingerprint,
    }
    with staged_folder(out) as staging:  # a kill leaves the old policy or the new one, whole
        result.policy.save(staging)
        save_loss_curve(result.losses, staging / "loss_curve.png")
        (staging / "train_log.json").write_text(json.dumps(log, indent=2))
    print(
        f"trained on {result.episodes} successful episodes ({result.pairs} pairs) in "
        f"{result.seconds:.0f} s, final loss {result.losses[-1]:.4f}; saved to {out} "
        f"(fingerprint {result.policy.fingerprint})"
    )
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    """Run a saved policy closed loop and store monitored rollouts."""
    import json

    from robofail.policy.flow import FlowChunkPolicy
    from robofail.policy.rollout import (
        as_obs_dict,
        collect_rollouts,
        make_rollout_env,
        rollout_info,
    )

    if (args.task is None) == (args.env is None):
        raise InvalidInputError("give exactly one of --task (a bundled task) or --env (a gym id)")
    try:
        env_kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--env-kwargs is not valid JSON: {exc}") from None
    if not isinstance(env_kwargs, dict):
        raise InvalidInputError("--env-kwargs must be a JSON object, e.g. '{\"obs_image\": true}'")
    task = None
    if args.task is not None:
        from robofail.tasks import get_task

        task = get_task(args.task).name
    out = Path(args.out)
    arg.check_new_file(out, "--out", arg.H5_SUFFIXES, overwrite=args.overwrite)
    policy = FlowChunkPolicy.load(args.policy)
    env = make_rollout_env(task, args.env, env_kwargs)
    obs, _ = env.reset(seed=0)
    obs = as_obs_dict(obs)
    state_names = list(getattr(env.unwrapped, "state_names", policy.config.state_names))
    trained_for = policy.config.task
    env_names = getattr(env.unwrapped, "state_names", None)
    if env_names is not None and list(env_names) != list(policy.config.state_names):
        raise InvalidInputError(
            f"the env's observation fields differ from those the policy was trained on "
            f"(policy trained for {trained_for!r}); roll it out on its own task"
        )
    if env.action_space.shape != (len(policy.action_names),):
        raise InvalidInputError(
            f"the env's actions have shape {env.action_space.shape}, the policy (trained for "
            f"{trained_for!r}) emits {len(policy.action_names)}: {', '.join(policy.action_names)}"
        )
    if obs["state"].shape != (policy.config.state_dim,):
        raise InvalidInputError(
            f"the env's observation has shape {obs['state'].shape}, the policy expects "
            f"({policy.config.state_dim},) (fields {policy.config.state_names[:4]}...)"
        )
    info = rollout_info(
        env,
        policy,
        task=task or args.env,
        state_names=state_names,
        policy=str(args.policy),
        samples=args.samples,
        seed=args.seed,
        env_kwargs=env_kwargs,
    )
    env.close()
    episodes = collect_rollouts(
        args.policy,
        args.n,
        task=task,
        env_id=args.env,
        env_kwargs=env_kwargs,
        seed=args.seed,
        samples=args.samples,
        workers=args.workers,
    )
    _write_with_summary(out, episodes, info, args.n, f"rollout {info.task}", "rollouts")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate perturbed episodes from a spec into a sharded dataset and print a summary."""
    from robofail.failgen.generator import generate

    summary = generate(
        args.task,
        args.spec,
        args.n,
        args.out,
        seed=args.seed,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        policy_dir=args.policy,
        samples=args.samples,
        resume=args.resume,
        overwrite=args.overwrite,
        shard_size=args.shard_size,
        image=args.image,
        progress=True,
    )
    print(summary.table())
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    """Search the failure boundary of one perturbation kind and print a short summary."""
    from robofail.failgen.discover import discover

    result = discover(
        args.task,
        args.spec,
        args.n,
        args.out,
        kind=args.kind,
        seed=args.seed,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        policy_dir=args.policy,
        samples=args.samples,
        image=args.image,
        initial_fraction=args.initial_fraction,
        rounds=args.rounds,
        overwrite=args.overwrite,
        progress=True,
    )
    print(result.summary())
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Summarise a stored dataset: task, episodes, outcomes, failure types, lengths."""
    from collections import Counter

    from robofail.data import open_dataset
    from robofail.monitor.episodes import split_source

    path, filter_name = split_source(args.dataset)
    with open_dataset(path) as dataset:
        positions = dataset.mask(filter_name) if filter_name else range(len(dataset))
        everything = dataset.labels()
        labels = [everything[i] for i in positions]
        lengths = [dataset[i].length for i in positions] if args.lengths else []
        info = dataset.info
    n = len(labels)
    successes = sum(label.success for label in labels)
    print(f"{args.dataset}: task {info.task} ({info.env_id}), {n} episodes")
    if n:
        print(f"  success rate {successes / n:.1%} ({successes}/{n})")
    for failure_type, count in Counter(label.failure_type for label in labels).most_common():
        print(f"  {failure_type}: {count}")
    if lengths:
        print(f"  length: mean {sum(lengths) / n:.1f}, min {min(lengths)}, max {max(lengths)}")
    print(f"  actions: {', '.join(info.action_names)}")
    for key, names in info.obs_names.items():
        print(f"  obs/{key}: {len(names)} fields" if names else f"  obs/{key}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """Run or resume the whole pipeline on a bundled task."""
    from robofail.quickstart import quickstart

    quickstart(args.task, args.out, full=args.full, seed=args.seed, workers=args.workers)
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="robofail",
        description="Failure monitoring, failure generation and recovery for generative robot "
        "policies.",
    )
    parser.add_argument("--version", action="version", version=f"robofail {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    verbs.required = True

    def verb(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str, example: str = ""
    ):
        sub = verbs.add_parser(
            name,
            help=help_text,
            description=textwrap.fill(help_text, 88),
            epilog=example or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(func=func)
        return sub

    verb(
        "tasks",
        cmd_tasks,
        "list the bundled tasks with their observation and action names",
        "example:\n  robofail tasks",
    )

    quick = verb(
        "quickstart",
        cmd_quickstart,
        "the whole pipeline on a bundled task: demos, policy, monitored rollouts, failures, "
        "calibration, evaluation, boundary search, recovery data and policy, ONNX export, closed "
        "loop, report; finished stages are skipped when run again",
        "example:\n  robofail quickstart --task pick_place --out runs/quickstart   "
        "# about 6 minutes on 2 cores",
    )
    quick.add_argument("--task", default="pick_place", help="bundled task (default pick_place)")
    quick.add_argument("--out", default="runs/quickstart", help="run folder (runs/quickstart)")
    quick.add_argument("--full", action="store_true", help="the size behind the README tables")
    quick.add_argument("--seed", type=arg.seed, default=0, help="default 0")
    quick.add_argument("--workers", type=arg.workers, default=2, help="processes (default 2)")

    demos = verb(
        "demos",
        cmd_demos,
        "collect scripted-expert demonstrations (HDF5)",
        "example:\n  robofail demos --task pick_place -n 200 --noise 0.1 --workers 2 "
        "--out data/pick_place_demos.h5",
    )
    demos.add_argument("--task", required=True, help="task name (see `robofail tasks`)")
    demos.add_argument("-n", type=arg.positive_int, required=True, help="number of episodes")
    demos.add_argument("--out", required=True, help="output .h5 file")
    demos.add_argument("--seed", type=arg.seed, default=0, help="collection seed (default 0)")
    demos.add_argument("--workers", type=arg.workers, default=1, help="processes (default 1)")
    demos.add_argument(
        "--noise",
        type=arg.action_noise,
        default=0.0,
        help="std of Gaussian noise on the executed position actions, in action units "
        "(DART-style; labels stay the expert's). Default 0",
    )
    demos.add_argument("--image", action="store_true", help="also record camera images")
    demos.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    train = verb(
        "train-policy",
        cmd_train_policy,
        "train the reference flow-matching policy",
        "example:\n  robofail train-policy --task pick_place --demos data/pick_place_demos.h5 "
        "--out models/pick_place/policy",
    )
    train.add_argument("--demos", required=True, help="dataset (.h5 file or shard folder)")
    train.add_argument("--out", required=True, help="output folder, e.g. models/pick_place/policy")
    train.add_argument("--task", help="expected task of the dataset (checked)")
    train.add_argument("--epochs", type=arg.positive_int, default=300, help="default 300")
    train.add_argument("--batch-size", type=arg.positive_int, default=256, help="default 256")
    train.add_argument("--obs-horizon", type=arg.positive_int, default=2, help="default 2")
    train.add_argument(
        "--horizon", type=arg.positive_int, default=16, help="chunk length, default 16"
    )
    train.add_argument(
        "--exec-horizon",
        type=arg.positive_int,
        help="actions executed per inference (default: the task's, 8 for other datasets)",
    )
    train.add_argument(
        "--position-dims", type=arg.action_dims, help="action dims that are positions, e.g. 0,1,2"
    )
    train.add_argument("--image", action="store_true", help="also encode the camera image")
    train.add_argument("--seed", type=arg.seed, default=0, help="default 0")
    train.add_argument("--threads", type=arg.threads, default=0, help="torch threads (0: default)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing policy")

    rollout = verb(
        "rollout",
        cmd_rollout,
        "run a policy closed loop and store monitored rollouts",
        "example:\n  robofail rollout --task pick_place --policy models/pick_place/policy -n 150 "
        "--workers 2 --out data/pick_place_rollouts.h5",
    )
    rollout.add_argument("--policy", required=True, help="saved policy folder")
    rollout.add_argument("-n", type=arg.positive_int, required=True, help="number of episodes")
    rollout.add_argument("--out", required=True, help="output .h5 file")
    rollout.add_argument("--task", help="bundled task name")
    rollout.add_argument("--env", help="any registered gymnasium id (instead of --task)")
    rollout.add_argument("--env-kwargs", help="JSON object of keyword arguments for the env")
    rollout.add_argument(
        "--samples", type=arg.samples, default=32, help="chunks per inference (32)"
    )
    rollout.add_argument("--seed", type=arg.seed, default=0, help="default 0")
    rollout.add_argument("--workers", type=arg.workers, default=1, help="processes (default 1)")
    rollout.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    gen = verb(
        "generate",
        cmd_generate,
        "generate labelled failure episodes from a spec",
        "examples:\n  robofail generate --task pick_place --spec failures -n 1000 --workers 2 "
        "--out data/pick_place_failures\n  robofail generate --task pick_place --spec "
        "policy_failures --policy models/pick_place/policy -n 300 --out data/pick_place_test",
    )
    gen.add_argument("--task", required=True, help="task name (see `robofail tasks`)")
    gen.add_argument(
        "--spec",
        required=True,
        help="spec file (YAML/JSON) or shipped name: nominal, failures (scripted expert), "
        "policy_failures and observation_faults (need --policy), camera_faults (pick_place)",
    )
    gen.add_argument("-n", type=arg.positive_int, required=True, help="number of episodes")
    gen.add_argument("--out", required=True, help="output folder (shards + manifest.json)")
    gen.add_argument("--seed", type=arg.seed, default=0, help="run seed (default 0)")
    gen.add_argument("--policy", help="saved policy folder, for specs with source: policy")
    gen.add_argument(
        "--samples", type=arg.samples, default=32, help="chunks per policy inference (32)"
    )
    gen.add_argument("--workers", type=arg.positive_int, default=1, help=RAY_WORKERS_HELP)
    gen.add_argument(
        "--backend",
        choices=["local", "inprocess", "ray"],
        default="local",
        help="local process pool (default), in-process, or Ray",
    )
    gen.add_argument("--address", help="Ray cluster address (--backend ray; default: local Ray)")
    gen.add_argument(
        "--shard-size", type=arg.positive_int, default=100, help="episode indices per shard (100)"
    )
    gen.add_argument(
        "--image", action="store_true", help="also record camera images (camera faults need them)"
    )
    gen.add_argument("--resume", action="store_true", help="continue the dataset in --out")
    gen.add_argument("--overwrite", action="store_true", help="replace the dataset in --out")

    disc = verb(
        "discover",
        cmd_discover,
        "search the failure boundary of one perturbation kind (Latin hypercube, then samples "
        "where a logistic risk model predicts a failure probability of 0.3-0.7)",
        "example:\n  robofail discover --task pick_place --spec failures --kind init_pose -n 200 "
        "--workers 2 --out data/pick_place_boundary",
    )
    disc.add_argument("--task", required=True, help="task name (see `robofail tasks`)")
    disc.add_argument(
        "--spec", required=True, help="spec file (YAML/JSON) or shipped name, e.g. failures"
    )
    disc.add_argument(
        "--kind", help="perturbation kind of the spec to search (optional if it has only one)"
    )
    disc.add_argument("-n", type=arg.positive_int, required=True, help="episodes in all (>= 20)")
    disc.add_argument(
        "--out", required=True, help="output folder (samples/model/report .json, boundary.png)"
    )
    disc.add_argument("--seed", type=arg.seed, default=0, help="search seed (default 0)")
    disc.add_argument(
        "--initial-fraction",
        type=arg.fraction,
        default=0.5,
        help="share of -n spent on the Latin hypercube design (default 0.5)",
    )
    disc.add_argument(
        "--rounds", type=arg.positive_int, default=4, help="boundary-phase rounds (default 4)"
    )
    disc.add_argument("--policy", help="saved policy folder, for specs with source: policy")
    disc.add_argument(
        "--samples", type=arg.samples, default=32, help="chunks per policy inference (32)"
    )
    disc.add_argument("--workers", type=arg.positive_int, default=1, help=RAY_WORKERS_HELP)
    disc.add_argument(
        "--backend",
        choices=["local", "inprocess", "ray"],
        default="local",
        help="local process pool (default), in-process, or Ray",
    )
    disc.add_argument("--address", help="Ray cluster address (--backend ray; default: local Ray)")
    disc.add_argument(
        "--image", action="store_true", help="render camera images (camera faults need them)"
    )
    disc.add_argument(
        "--overwrite", action="store_true", help="replace an earlier search's files in --out"
    )

    add_monitor_parsers(verb)
    add_export_parsers(verb)
    add_recovery_parsers(verb)
    add_report_parsers(verb)

    inspect = verb(
        "inspect",
        cmd_inspect,
        "summarise a stored dataset (.h5 file or shard folder)",
        "example:\n  robofail inspect data/pick_place_failures:failure --lengths",
    )
    inspect.add_argument("dataset", help="dataset file or folder, optionally PATH:FILTER")
    inspect.add_argument("--lengths", action="store_true", help="also read episode lengths")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robofail`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RobofailError as exc:
        print(f"robofail {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"robofail {args.verb}: interrupted; finished outputs are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
