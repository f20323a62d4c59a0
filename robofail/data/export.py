"""Export a stored robofail dataset to another library's layout: LeRobot v3.0 or one robomimic file.

:func:`export_dataset` checks the paths before any work and dispatches to the format's writer;
every writer builds its output under a temporary name and renames it into place when complete, so
a failed or killed export leaves the old output (with ``overwrite``) or nothing.

robomimic: robofail's store already uses robomimic's HDF5 layout (``data/demo_<i>/{obs/<key>,
actions, rewards, dones, states}``, ``mask/<filter>``), so :func:`export_robomimic` merges the
shards into one file through the store's own writer. Two things differ and are fixed on the way:
demos are renumbered ``demo_0 .. demo_{M-1}`` (the source's global index is kept in the demo
attribute ``robofail_index``), and ``data.attrs["env_args"]`` is written in robomimic's schema
(``env_name``, ``type`` = 2 for a gym env, ``env_kwargs``) with robofail's DatasetInfo moved to
``data.attrs["robofail_info"]``. There is no ``next_obs`` group: robomimic's BC and diffusion
configs do not load it (``hdf5_load_next_obs`` False); its offline-RL algorithms need it.
The result is a robomimic file, no longer one that :func:`robofail.data.open_dataset` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from robofail.errors import InvalidInputError, OutputPathError, RobofailError, UnknownNameError
from robofail.folders import check_writable

FORMATS = ("lerobot", "robomimic")
"""Formats :func:`export_dataset` writes."""

ROBOMIMIC_GYM_TYPE = 2
"""robomimic's ``EnvType.GYM_TYPE``: ``env_args["type"]`` of an environment made by gym.make."""

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    out: Path
    """The output folder (LeRobot) or file (robomimic)."""
    episodes: int
    """Number of episodes written."""
    frames: int
    """Number of frames (control steps) written, over all episodes."""


def export_dataset(
    source: PathLike, out: PathLike, *, format: str, overwrite: bool = False
) -> ExportSummary:
    """Export the dataset at ``source`` (``.h5`` file or shard folder) to ``out`` in ``format``.

    Args:
        source: a robofail dataset, as :func:`robofail.data.open_dataset` takes it.
        out: a folder for ``"lerobot"``, an ``.h5``/``.hdf5`` file for ``"robomimic"``.
        format: one of :data:`FORMATS`.
        overwrite: replace an existing output (a LeRobot folder is replaced only if it holds a
            LeRobot dataset or nothing).

    Raises:
        UnknownNameError: ``format`` is not one of :data:`FORMATS`.
        InvalidInputError: ``source`` does not exist, holds no episodes, or is ``out``.
        OutputPathError: ``out`` exists (without ``overwrite``) or cannot be written.
        CorruptFileError: ``source`` cannot be read.
    """
    if format == "lerobot":
        from robofail.data.lerobot import export_lerobot

        return export_lerobot(source, out, overwrite=overwrite)
    if format == "robomimic":
        return export_robomimic(source, out, overwrite=overwrite)
    raise UnknownNameError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")


LEROBOT_TOP_LEVEL = ("meta", "data", "videos")
"""What a LeRobot v3.0 dataset folder holds at its top level."""


def check_paths(source: Path, out: Path, *, folder: bool, overwrite: bool) -> None:
    """Fail before any work unless ``source`` exists and ``out`` can be written.

    ``folder`` tells whether ``out`` is a folder (else a file). An existing folder is replaced
    only with ``overwrite`` and only if it is empty or holds a LeRobot dataset
    (``meta/info.json``), so a mistyped ``--out`` cannot wipe unrelated files.
    """
    if not source.exists():
        raise InvalidInputError(f"no such dataset: {source}; give a .h5 file or a shard folder")
    resolved, inside = out.resolve(), source.resolve()
    if resolved == inside or resolved in inside.parents or inside in resolved.parents:
        raise InvalidInputError(
            f"--out {out} would write over or into the dataset {source} it exports; give a path "
            "outside it"
        )
    if folder and out.suffix.lower() in (".h5", ".hdf5"):
        raise OutputPathError(f"--out {out}: LeRobot writes a folder; give a folder name")
    if out.exists():
        if not overwrite:
            raise OutputPathError(f"{out} already exists; pass --overwrite to replace it")
        if folder and not out.is_dir():
            raise OutputPathError(f"--out {out} is a file; give a folder for the LeRobot dataset")
        if not folder and out.is_dir():
            raise OutputPathError(f"--out {out} is a folder; give a file name ending in .h5")
        if folder and any(out.iterdir()) and not (out / "meta" / "info.json").is_file():
            raise OutputPathError(
                f"--out {out} holds files but no LeRobot dataset (meta/info.json); it would be "
                "replaced whole: give a folder of its own"
            )
        others = (
            []
            if not folder
            else sorted(p.name for p in out.iterdir() if p.name not in LEROBOT_TOP_LEVEL)
        )
        if others:
            raise OutputPathError(
                f"--out {out} holds other files ({', '.join(others[:3])}) next to its LeRobot "
                "dataset; it would be replaced whole: give a folder of its own"
            )
    check_writable(out, "--out")


def export_robomimic(source: PathLike, out: PathLike, *, overwrite: bool = False) -> ExportSummary:
    """Write the dataset at ``source`` as one robomimic HDF5 file at ``out`` (see the module
    docstring for what differs from robofail's store).

    Raises:
        InvalidInputError: ``out`` does not end in ``.h5``/``.hdf5``; and as :func:`export_dataset`.
        OutputPathError, CorruptFileError: as :func:`export_dataset`.
    """
    import h5py

    from robofail.data.store import open_dataset, write_episodes

    source, out = Path(source), Path(out)
    if out.suffix not in (".h5", ".hdf5"):
        raise InvalidInputError(f"--out must name an .h5 or .hdf5 file for robomimic, got {out}")
    check_paths(source, out, folder=False, overwrite=overwrite)
    with open_dataset(source) as dataset:
        if not len(dataset):
            raise InvalidInputError(f"{source} holds no episodes; nothing to export")
        info, names = dataset.info, dataset.episode_names()
        frames = 0

        def counted() -> Iterator:
            nonlocal frames
            for episode in dataset:
                frames += episode.length
                yield episode

        partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            write_episodes(partial, counted(), info)
            with h5py.File(partial, "r+") as f:
                data = f["data"]
                data.attrs["env_args"] = json.dumps(
                    {
                        "env_name": info.env_id,
                        "type": ROBOMIMIC_GYM_TYPE,
                        "env_kwargs": info.extra.get("env_kwargs", {}),
                    }
                )
                if "env_args_sha256" in data.attrs:  # robofail's checksum of its own env_args
                    del data.attrs["env_args_sha256"]
                data.attrs["robofail_info"] = json.dumps(info.to_json())
                for position, name in enumerate(names):
                    data[f"demo_{position}"].attrs["robofail_index"] = int(name.split("_")[1])
            os.replace(partial, out)
        except RobofailError:
            raise
        except OSError as exc:
            raise OutputPathError(f"cannot write {out}: {exc.strerror or exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
    return ExportSummary(out=out, episodes=len(names), frames=frames)
