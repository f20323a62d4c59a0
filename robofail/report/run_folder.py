"""A pipeline run folder as the report reads it: its files, its ``run.json``, its task, and the
command that produces each file.

The layout is ``robofail quickstart``'s (see :mod:`robofail.quickstart`); a folder filled by hand
with the same commands reads the same. The commands the report names for missing files are the
quickstart's own stage commands (the recorded ones where ``run.json`` has them), so they write
exactly where the report looks.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robofail.errors import InvalidInputError

TASK_PLACEHOLDER = "TASK"
"""Stands for the task in commands when the run's task is not a bundled one."""
_DATASETS = ("rollouts.h5", "test_rollouts.h5", "demos.h5")


@dataclass(frozen=True)
class RunFolder:
    """The run folder ``path``, its ``run.json`` record (``{}`` when missing or unreadable, with
    the reason in ``record_problem``) and its task (``""`` when nothing names one)."""

    path: Path
    record: dict[str, Any]
    record_problem: str
    task: str

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """Read the run folder at ``path``.

        Raises:
            InvalidInputError: ``path`` does not exist or is not a folder.
        """
        path = Path(path)
        if not path.exists():
            raise InvalidInputError(
                f"{path}: no such run folder; make one with `robofail quickstart --out {path}`"
            )
        if not path.is_dir():
            raise InvalidInputError(f"{path} is a file; give the run folder (RUN_DIR)")
        if not any((path / name).exists() for name in _run_outputs()):
            raise InvalidInputError(
                f"{path} holds none of a pipeline run's files (run.json, calib/, "
                "test_rollouts.h5, ...); give a run folder, e.g. one `robofail quickstart` wrote"
            )
        record, problem = _read_record(path / "run.json")
        task = str(record.get("task", "")) or _dataset_task(path)
        return cls(path, record, problem, task)

    def find(self, name: str) -> Path | None:
        """``path / name`` if it exists, else None."""
        target = self.path / name
        return target if target.exists() else None

    def command(self, output: str) -> str:
        """The command line that produces ``output`` (a name in the run folder)."""
        from robofail.quickstart import SIZES, stages
        from robofail.tasks import TASKS

        known = self.task in TASKS
        task = self.task if known else next(iter(TASKS))
        size = SIZES.get(str(self.record.get("size", "default")), SIZES["default"])
        seed = self.record.get("seed", 0)
        seed = seed if isinstance(seed, int) else 0
        recorded = self.record.get("stages", {})
        for name, outputs, argv in stages(task, self.path, size, seed, workers=2):
            if output in outputs:
                argv = recorded.get(name, {}).get("argv") or argv
                if not known:
                    argv = [(self.task or TASK_PLACEHOLDER) if a == task else a for a in argv]
                return "robofail " + shlex.join(argv)
        return self.quickstart_command()

    def quickstart_command(self) -> str:
        """The command that runs (or resumes) the whole pipeline into this folder."""
        return shlex.join(
            [
                "robofail",
                "quickstart",
                "--task",
                self.task or TASK_PLACEHOLDER,
                "--out",
                str(self.path),
            ]
        )

    def missing(self, *names: str) -> list[tuple[str, str]]:
        """``(name, command)`` for each of ``names`` not in the folder."""
        return [(name, self.command(name)) for name in names if self.find(name) is None]


def _run_outputs() -> set[str]:
    """Every file or folder name a pipeline run writes (``run.json`` and the stages' outputs)."""
    from robofail.quickstart import RUN_FILE, SIZES, stages

    outputs = {RUN_FILE}
    for _, names, _ in stages("pick_place", Path("."), SIZES["default"], 0, workers=1):
        outputs.update(names)
    return outputs


def _read_record(path: Path) -> tuple[dict[str, Any], str]:
    if not path.exists():
        return {}, ""
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{path} is not valid JSON ({exc})"
    if not isinstance(record, dict):
        return {}, f"{path} does not hold a JSON object"
    return record, ""


def _dataset_task(path: Path) -> str:
    """The task named by the first of the run's datasets that can be read, else ``""``."""
    from robofail.data import open_dataset
    from robofail.errors import RobofailError

    for name in _DATASETS:
        if (path / name).exists():
            try:
                with open_dataset(path / name) as dataset:
                    return dataset.info.task
            except RobofailError:
                continue
    return ""
