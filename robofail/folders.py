"""Output folders that readers see whole: the old one or the new one, never a half-written mix.

A folder of outputs (a calibration artifact, a saved policy) is written into a hidden staging
folder next to it, then swapped into place: on Linux with one atomic ``renameat2`` exchange, so
a process killed at any instant leaves either the old folder or the new one at the path; elsewhere
with two renames (a kill between them leaves the old folder under a hidden ``.NAME.old-PID`` name).
The next write to the same path removes what killed processes left (and puts an old folder
left by the two-rename fallback back in place).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from robofail.errors import OutputPathError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def check_writable(path: str | Path, what: str = "output") -> None:
    """Raise :class:`OutputPathError` unless ``path`` could be written: its nearest existing
    ancestor is a folder in which a file can be created. Creates nothing that stays.

    Args:
        path: a file or folder to be written, existing or not.
        what: how messages name it, e.g. ``"--out"``.
    """
    path = Path(path)
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            break
    else:  # pragma: no cover - the root always exists
        folder = Path.cwd()
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {what} {path}: {folder} is a file, not a folder")
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".robofail-write-test-", dir=folder)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {what} {path}: {exc.strerror or exc}; choose a writable path"
        ) from None


def read_json_object(path: Path) -> dict | None:
    """The JSON object in file ``path``, or None for anything else (unreadable, not JSON, too
    deep or with numbers too long to parse, not an object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # ValueError covers JSON and UTF-8 errors
        return None
    return data if isinstance(data, dict) else None


def check_replaceable_folder(
    path: Path,
    flag: str,
    what: str,
    marker: str,
    kind: str,
    own: Callable[[str], bool],
    *,
    overwrite: bool,
) -> None:
    """Fail fast unless ``path`` can be written as a ``what`` folder: new, or (with
    ``overwrite``) an earlier ``what`` to replace whole: not a file, writable, and if it holds
    anything, its ``marker`` JSON file names ``kind`` and every entry (hidden ones too) is one
    ``own`` claims, since replacing the folder deletes all that is in it."""
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path} is a file; give a folder for the {what}")
    check_writable(path, flag)
    if not path.is_dir() or not any(path.iterdir()):
        return
    if (read_json_object(path / marker) or {}).get("kind") != kind:
        raise OutputPathError(
            f"{flag} {path} holds something other than a {what} (no {marker} of one); a {what} "
            "is saved by replacing its folder whole: give a folder of its own"
        )
    others = sorted(p.name for p in path.iterdir() if not own(p.name))
    if others:
        raise OutputPathError(
            f"{flag} {path} holds other files ({', '.join(others[:3])}); a {what} is saved by "
            "replacing its folder whole: give a folder of its own"
        )


@contextlib.contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """Yield a new empty folder next to ``out``; when the block succeeds, it replaces ``out``
    (see the module docstring), else it is removed and ``out`` is left as it was.

    Raises:
        OutputPathError: the staging folder cannot be created, or ``out`` is a file.
    """
    out = Path(out)
    staging = staging_folder(out)
    try:
        yield staging
        replace_folder(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def staging_folder(out: str | Path) -> Path:
    """A new empty hidden folder next to ``out`` to write its replacement in (then
    :func:`replace_folder`); removes what killed writers of ``out`` left.

    Raises:
        OutputPathError: ``out`` is a file, or the folder cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{out} is a file; give a folder")
    try:
        _remove_stale(out)
        staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {out}: {exc.strerror or exc}; choose a writable path"
        ) from None
    return staging


def replace_folder(staging: Path, out: Path) -> None:
    """Put the finished folder ``staging`` at ``out``; an old ``out`` is removed only after."""
    if not out.exists():
        staging.rename(out)
    elif _exchange(staging, out):
        shutil.rmtree(staging)
    else:
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _remove_stale(out: Path) -> None:
    """Remove staging and old folders next to ``out`` left by processes that no longer run."""
    if not out.parent.is_dir():
        return
    for path in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = path.name[len(out.name) + 2 :].rpartition("-")
        if not pid.isdigit() or _running(int(pid)):
            continue
        if kind == "old" and not out.exists():
            path.rename(out)  # killed between two renames: the old folder is the only one
        elif kind in ("partial", "old"):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether a process with id ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
