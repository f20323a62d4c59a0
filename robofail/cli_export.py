"""The ``export-dataset`` verb of the ``robofail`` command."""

from __future__ import annotations

import argparse

from robofail.data.export import FORMATS

EXPORT_EXAMPLE = """examples:
  robofail export-dataset data/pick_place_failures --format lerobot --out exports/pick_place
  robofail export-dataset data/pick_place_failures --format robomimic --out exports/pick_place.hdf5

lerobot: LeRobot's v3.0 layout (parquet data + meta/), images as PNG inside the parquet files;
  load it with LeRobotDataset(repo_id="local/pick_place", root="exports/pick_place").
  The failure labels (type, perturbation and its parameters, onset and failure step, phase,
  success, seed, source) are in meta/failures.parquet, one row per episode_index.
robomimic: robofail's store already is robomimic's HDF5 layout, so this merges the shards into
  one file (demos renumbered demo_0.., masks kept) and writes env_args in robomimic's schema.
Needs pyarrow for lerobot: pip install 'robofail[export]'."""


def cmd_export_dataset(args: argparse.Namespace) -> int:
    """Export a stored dataset to another library's layout and print what was written."""
    from robofail.data.export import export_dataset

    summary = export_dataset(args.dataset, args.out, format=args.format, overwrite=args.overwrite)
    print(
        f"exported {summary.episodes} episodes ({summary.frames} frames) of {args.dataset} "
        f"to {summary.out} ({args.format})"
    )
    return 0


def add_parsers(verb) -> None:
    """Register ``export-dataset`` with ``verb(name, func, help, example) -> parser``."""
    export = verb(
        "export-dataset",
        cmd_export_dataset,
        "export a dataset to LeRobot's v3.0 layout or to one robomimic HDF5 file",
        EXPORT_EXAMPLE,
    )
    export.add_argument("dataset", help="dataset to export (.h5 file or shard folder)")
    export.add_argument(
        "--format", required=True, metavar="{" + ",".join(FORMATS) + "}", help="output layout"
    )
    export.add_argument(
        "--out", required=True, help="output folder (lerobot) or .h5/.hdf5 file (robomimic)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out")
