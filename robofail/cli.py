"""The ``robofail`` command: one sub-command per verb, each a thin layer over the library.

Errors a user can cause (:class:`robofail.errors.RobofailError`, bad arguments) are printed as one
line on stderr with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from robofail import __version__
from robofail.errors import InvalidInputError, OutputPathError, RobofailError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``robofail demos: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def check_output_file(path: Path, *, overwrite: bool) -> None:
    """Fail fast, before any work, if ``path`` cannot be written or would replace a file
    without ``overwrite``."""
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it")
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a file name ending in .h5")
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise OutputPathError(f"cannot write {path}: {folder} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".robofail-write-test-{time.monotonic_ns()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None


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
    from tqdm import tqdm

    from robofail.data import write_episodes
    from robofail.tasks import get_task, make_env
    from robofail.tasks.demos import collect_demos, dataset_info

    task = get_task(args.task).name
    out = Path(args.out)
    if out.suffix not in (".h5", ".hdf5"):
        raise InvalidInputError(f"--out must name an .h5 file, got {out}")
    check_output_file(out, overwrite=args.overwrite)
    env = make_env(task, obs_image=args.image)
    info = dataset_info(env, seed=args.seed, action_noise=args.noise, source="scripted_expert")
    env.close()
    start = time.perf_counter()
    successes = 0

    def counted(episodes):
        nonlocal successes
        for episode in tqdm(episodes, total=args.n, desc=f"demos {task}", unit="ep"):
            successes += episode.label.success
            yield episode

    episodes = collect_demos(
        task,
        args.n,
        seed=args.seed,
        workers=args.workers,
        action_noise=args.noise,
        obs_image=args.image,
    )
    write_episodes(out, counted(episodes), info)
    seconds = time.perf_counter() - start
    print(
        f"wrote {args.n} episodes to {out}: success rate {successes / args.n:.1%} "
        f"({successes}/{args.n}), {seconds:.1f} s"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Summarise a stored dataset: task, episodes, outcomes, failure types, lengths."""
    from collections import Counter

    from robofail.data import open_dataset

    with open_dataset(args.dataset) as dataset:
        labels = dataset.labels()
        lengths = [dataset[i].length for i in range(len(dataset))] if args.lengths else []
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

    def verb(name: str, func: Callable[[argparse.Namespace], int], help_text: str):
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    verb("tasks", cmd_tasks, "list the bundled tasks with their observation and action names")

    demos = verb("demos", cmd_demos, "collect scripted-expert demonstrations (HDF5)")
    demos.add_argument("--task", required=True, help="task name (see `robofail tasks`)")
    demos.add_argument("-n", type=_positive_int, required=True, help="number of episodes")
    demos.add_argument("--out", required=True, help="output .h5 file")
    demos.add_argument("--seed", type=int, default=0, help="collection seed (default 0)")
    demos.add_argument("--workers", type=_positive_int, default=1, help="processes (default 1)")
    demos.add_argument(
        "--noise",
        type=_non_negative_float,
        default=0.0,
        help="std of Gaussian noise on the executed position actions, in action units "
        "(DART-style; labels stay the expert's). Default 0",
    )
    demos.add_argument("--image", action="store_true", help="also record camera images")
    demos.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    inspect = verb("inspect", cmd_inspect, "summarise a stored dataset (.h5 file or shard folder)")
    inspect.add_argument("dataset", help="dataset file or folder")
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
