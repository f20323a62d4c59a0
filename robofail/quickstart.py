"""``robofail quickstart``: the whole pipeline on a bundled task, one stage per robofail verb.

Stages, in order, each writing into the run folder (layout below) through the same verb a user
would type, so the run doubles as a worked example (``run.json`` records every stage's command):

demos -> train-policy -> rollout (calibration) -> generate (validation failures) -> calibrate ->
rollout (test) -> generate (test failures) -> evaluate -> discover -> recovery-data ->
train-recovery -> export -> closed-loop -> report.

A stage is skipped when its outputs exist and ``run.json`` records it finished with the same
command; when one runs again, every later stage runs again too. Two sizes: the default finishes
in about six minutes on two idle CPU cores (longer on a loaded machine) and shows real numbers;
``--full`` is the size behind the README's tables. Run folder::

    run.json  demos.h5  policy/  rollouts.h5  val_failures/  calib/  test_rollouts.h5
    test_failures/  metrics.json  plots/  discover/  recovery_data.h5  recovery/  recovery.onnx
    closed_loop.json  closed_loop.png  report.html
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from robofail.errors import InvalidInputError, OutputPathError
from robofail.folders import check_writable
from robofail.parallel import MAX_SEED


@dataclass(frozen=True)
class Size:
    """Episode counts and training lengths of a quickstart run."""

    demos: int
    epochs: int
    rollouts: int
    val_failures: int
    test_rollouts: int
    test_failures: int
    discover: int
    recovery_steps: int
    closed_loop: int


SIZES = {
    "default": Size(200, 100, 150, 60, 60, 60, 40, 3000, 40),
    "full": Size(200, 300, 620, 240, 220, 300, 120, 6000, 200),
}
ALPHA = "0.1"
DISCOVER_KIND = {"pick_place": "init_pose", "push": "friction", "peg_insert": "init_pose"}
RUN_FILE = "run.json"
SEED_OFFSETS = 6
"""The stages run with seeds ``seed`` to ``seed + SEED_OFFSETS``."""


def stages(task: str, run: Path, size: Size, seed: int, workers: int) -> list[tuple]:
    """(name, outputs, argv) per stage; outputs relative to ``run``."""
    from robofail.tasks import get_task

    get_task(task)
    w = ["--workers", str(workers)]
    p = lambda name: str(run / name)  # noqa: E731
    policy = ["--policy", p("policy")]
    failures = ["generate", "--task", task, "--spec", "policy_failures", *policy]
    return [
        ("demos", ["demos.h5"], ["demos", "--task", task, "-n", str(size.demos), "--noise", "0.1",
                                 "--seed", str(seed), *w, "--out", p("demos.h5"), "--overwrite"]),
        ("train-policy", ["policy"], ["train-policy", "--task", task, "--demos", p("demos.h5"),
                                      "--epochs", str(size.epochs), "--seed", str(seed),
                                      "--out", p("policy"), "--overwrite"]),
        ("rollout", ["rollouts.h5"], ["rollout", "--task", task, *policy, "-n",
                                      str(size.rollouts), "--seed", str(seed + 1), *w,
                                      "--out", p("rollouts.h5"), "--overwrite"]),
        ("val-failures", ["val_failures"], [*failures, "-n", str(size.val_failures), "--seed",
                                            str(seed + 2), *w, "--out", p("val_failures"),
                                            "--overwrite"]),
        ("calibrate", ["calib"], ["calibrate", "--rollouts", p("rollouts.h5"), "--val-failures",
                                  p("val_failures") + ":failure", "--alpha", ALPHA,
                                  "--out", p("calib"), "--overwrite"]),
        ("test-rollouts", ["test_rollouts.h5"], ["rollout", "--task", task, *policy, "-n",
                                                 str(size.test_rollouts), "--seed", str(seed + 3),
                                                 *w, "--out", p("test_rollouts.h5"),
                                                 "--overwrite"]),
        ("test-failures", ["test_failures"], [*failures, "-n", str(size.test_failures), "--seed",
                                              str(seed + 4), *w, "--out", p("test_failures"),
                                              "--overwrite"]),
        ("evaluate", ["metrics.json", "plots"], ["evaluate", "--monitor", p("calib"),
                                                 "--rollouts", p("test_rollouts.h5"),
                                                 p("test_failures") + ":failure",
                                                 "--json", p("metrics.json"),
                                                 "--plots", p("plots")]),
        ("discover", ["discover"], ["discover", "--task", task, "--spec", "policy_failures",
                                    "--kind", DISCOVER_KIND.get(task, "init_pose"), *policy,
                                    "-n", str(size.discover), "--seed", str(seed + 5), *w,
                                    "--out", p("discover"), "--overwrite"]),
        ("recovery-data", ["recovery_data.h5"], ["recovery-data", "--task", task, "--failures",
                                                 p("val_failures"), "--monitor", p("calib"), *w,
                                                 "--out", p("recovery_data.h5"), "--overwrite"]),
        ("train-recovery", ["recovery"], ["train-recovery", "--task", task, "--data",
                                          p("recovery_data.h5"), "--steps",
                                          str(size.recovery_steps), "--seed", str(seed),
                                          "--out", p("recovery"), "--overwrite"]),
        ("export", ["recovery.onnx"], ["export", "--recovery", p("recovery"),
                                       "--out", p("recovery.onnx")]),
        ("closed-loop", ["closed_loop.json", "closed_loop.png"],
         ["closed-loop", "--task", task, *policy, "--monitor", p("calib"), "--recovery",
          p("recovery.onnx"), "--spec", "policy_failures", "-n", str(size.closed_loop),
          "--seed", str(seed + 6), *w, "--json", p("closed_loop.json"),
          "--plot", p("closed_loop.png")]),
        ("report", ["report.html"], ["report", str(run), "--out", p("report.html")]),
    ]  # fmt: skip


def _record(run: Path) -> dict:
    """The stages an earlier quickstart recorded in ``run``: ``{}`` for a new or empty folder.

    Raises:
        OutputPathError: ``run`` holds files but no quickstart record (the stages would replace
            them), or a ``run.json`` that is not one.
    """
    path = run / RUN_FILE
    if not path.exists():
        if run.is_dir() and any(run.iterdir()):
            raise OutputPathError(
                f"--out {run} holds files but no {RUN_FILE} of an earlier quickstart; its stages "
                "would replace them: give a new folder"
            )
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # a folder, not JSON, too deep...
        record = None
    stages = record.get("stages") if isinstance(record, dict) else None
    if not isinstance(stages, dict) or not all(isinstance(s, dict) for s in stages.values()):
        raise OutputPathError(
            f"{path} is not a quickstart record; give a new --out folder (or delete {path} to "
            "run every stage again in this one)"
        )
    return stages


def _write_record(run: Path, record: dict) -> None:
    tmp = run / f".{RUN_FILE}.partial"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(run / RUN_FILE)


def quickstart(
    task: str = "pick_place",
    out: str | Path = "runs/quickstart",
    *,
    full: bool = False,
    seed: int = 0,
    workers: int = 2,
    run_verb: Callable[[list[str]], int] | None = None,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> dict:
    """Run (or resume) the pipeline; returns the ``run.json`` record.

    Args:
        run_verb: runs one robofail command line and returns its exit status (default: the CLI's
            ``main`` in this process).

    Raises:
        InvalidInputError: unknown task, a seed out of range, or a stage failed (its own error is
            printed above).
        OutputPathError: ``out`` is a file or cannot be written, or holds files but no
            quickstart record (``run.json``), or a ``run.json`` that is not one.
    """
    if run_verb is None:
        from robofail.cli import main as run_verb
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise OutputPathError(f"--out {run} is a file; give a folder")
    check_writable(run, "--out")
    if not 0 <= seed <= MAX_SEED - SEED_OFFSETS:
        raise InvalidInputError(
            f"seed must be in 0..{MAX_SEED - SEED_OFFSETS} (the stages use seed to seed + "
            f"{SEED_OFFSETS}), got {seed}"
        )
    size = SIZES["full" if full else "default"]
    plan = stages(task, run, size, seed, workers)
    run.mkdir(parents=True, exist_ok=True)
    previous = _record(run)
    if not (run / RUN_FILE).exists():  # mark the folder as this run's before the first stage
        _write_record(run, {"task": task, "seed": seed, "stages": {}})
    record = {"task": task, "seed": seed, "size": "full" if full else "default", "stages": {}}
    rerun = False
    started = time.perf_counter()
    for number, (name, outputs, argv) in enumerate(plan, start=1):
        done = previous.get(name, {})
        fresh = all((run / o).exists() for o in outputs) and done.get("argv") == argv
        if fresh and done.get("finished") and not rerun:
            echo(f"[{number}/{len(plan)}] {name}: up to date, skipped")
            record["stages"][name] = {**done, "skipped": True}
            continue
        rerun = True
        echo(f"[{number}/{len(plan)}] {name}: robofail {' '.join(argv)}")
        start = time.perf_counter()
        status = run_verb(argv)
        seconds = time.perf_counter() - start
        record["stages"][name] = {"argv": argv, "seconds": seconds, "finished": status == 0}
        _write_record(run, record | {"stages": {**previous, **record["stages"]}})
        if status != 0:
            raise InvalidInputError(
                f"stage {name} failed (exit status {status}); fix the error above and run "
                "quickstart again: finished stages are kept"
            )
    record["seconds"] = time.perf_counter() - started
    _write_record(run, record)
    echo(f"quickstart finished in {record['seconds']:.0f} s; open {run / 'report.html'}")
    return record
