"""Output folders swapped in whole (robofail.folders): the old folder or the new one, never a mix,
and what killed writers left is cleaned up or put back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robofail import folders
from robofail.errors import OutputPathError


def write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("atomic", [True, False], ids=["renameat2", "two renames"])
def test_staged_folder_replaces_the_old_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atomic: bool
) -> None:
    if not atomic:
        monkeypatch.setattr(folders, "_exchange", lambda a, b: False)
    out = tmp_path / "artifact"
    write(out, a="old", b="old")
    with folders.staged_folder(out) as staging:
        assert staging.parent == out.parent and staging.name.startswith(".")
        write(staging, a="new", c="new")
        assert contents(out) == {"a": "old", "b": "old"}  # untouched until the block succeeds
    assert contents(out) == {"a": "new", "c": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_a_failing_block_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "artifact"
    write(out, a="old")
    with pytest.raises(RuntimeError), folders.staged_folder(out) as staging:
        write(staging, a="half")
        raise RuntimeError("killed halfway")
    assert contents(out) == {"a": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_killed_writers_are_removed_or_put_back(tmp_path: Path) -> None:
    out = tmp_path / "artifact"
    pid = dead_pid()
    write(tmp_path / f".artifact.partial-{pid}", a="half")
    write(tmp_path / f".artifact.old-{pid}", a="old")  # killed between the two renames
    write(tmp_path / ".artifact.partial-1", a="busy")  # a running process's (pid 1): kept
    staging = folders.staging_folder(out)
    assert staging.name == f".artifact.partial-{os.getpid()}" and contents(staging) == {}
    assert contents(out) == {"a": "old"}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([".artifact.partial-1", staging.name, "artifact"])


def test_unwritable_outputs_are_refused_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        folders.check_writable(blocker / "out")
    with pytest.raises(OutputPathError, match="is a file"):
        folders.staging_folder(blocker)
    with pytest.raises(OutputPathError, match="cannot write"):
        folders.check_writable(Path("/proc/robofail-test/out"))
    folders.check_writable(tmp_path / "new" / "deeper" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
