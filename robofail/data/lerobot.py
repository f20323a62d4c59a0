"""Export a robofail dataset to LeRobot's v3.0 dataset layout, so it loads in ``LeRobotDataset``.

Layout written under the output folder (M episodes, N frames)::

    data/chunk-000/file-000.parquet    one row per frame, one row group per episode; a new file
                                       once one holds ``data_files_size_in_mb`` (100), a new
                                       chunk folder every ``chunks_size`` (1000) files
    meta/info.json                     codebase_version "v3.0", fps, features (dtype, shape,
                                       names), totals, chunks_size, path templates, splits
    meta/stats.json                    per feature: min, max, mean, std, count, q01 ... q99
    meta/tasks.parquet                 task string (pandas index "task") -> task_index
    meta/subtasks.parquet              the task's phase names (index "subtask") -> subtask_index
    meta/episodes/chunk-000/file-000.parquet
                                       one row per episode: episode_index, tasks, length,
                                       data/chunk_index, data/file_index, dataset_from_index,
                                       dataset_to_index, meta/episodes/chunk_index,
                                       meta/episodes/file_index, stats/<feature>/<stat>
    meta/failures.parquet              robofail's sidecar: each episode's label, one row per
                                       episode_index (LeRobot reads only the files above)
    meta/robofail.json                 the source's DatasetInfo and path, robofail's version

Frame columns (the ``features``): ``observation.state`` (S,) float32, ``action`` (A,) float32,
``observation.images.<camera>`` (H, W, 3) image, any other observation key as
``observation.<key>``; ``next.reward`` float32 and ``next.done`` bool (reward and end flag of the
frame's action, as in LeRobot's simulation datasets); ``subtask_index`` int64 (the task phase);
and LeRobot's own ``timestamp`` (frame_index / fps, seconds) float32, ``frame_index``,
``episode_index``, ``index`` (0 .. N-1 over the dataset) and ``task_index`` int64. Episodes are
renumbered 0 .. M-1 in the source's order; ``meta/failures.parquet`` maps each to its source
index. Full simulator states and per-episode extras are not exported (they stay in the HDF5).

Images go into the parquet files as PNG (feature dtype ``image``), not into mp4 files (dtype
``video``): PNG is lossless, so scores and camera faults computed on the export see the pixels
the simulator rendered; LeRobot's videos are AV1 (FFmpeg's libsvtav1), which OpenCV's mp4 writer
does not produce, and reading them needs torchcodec or PyAV with FFmpeg and timestamps within
1e-4 s; the bundled tasks' 96 x 96 frames are a few KB each as PNG.

Stats follow LeRobot's ``compute_episode_stats``: per episode, for every feature, per dimension
(images per channel on pixel values scaled to [0, 1], each (3, 1, 1)); the dataset's stats
aggregate the episodes' as LeRobot's ``aggregate_stats`` does: exact min, max, mean, std and
count, quantiles the count-weighted mean of the episodes' quantiles. The episodes' quantiles are
exact (np.quantile's linear rule; LeRobot estimates them and subsamples images).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from robofail import __version__
from robofail.data.episode import DatasetInfo, Episode
from robofail.data.export import ExportSummary, PathLike, check_paths
from robofail.errors import InvalidInputError
from robofail.folders import staged_folder

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
"""Data files per chunk folder (LeRobot's default)."""
DATA_FILES_SIZE_IN_MB = 100
"""A data file is closed once it holds this many MB (LeRobot's default)."""
VIDEO_FILES_SIZE_IN_MB = 200
"""LeRobot's default, recorded in info.json; no video is written."""
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
FAILURES_PATH = "meta/failures.parquet"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
"""The quantiles LeRobot's stats carry."""
DEFAULT_CAMERA = "front"
"""Camera of the bundled tasks' ``image`` observation, unless the env kwargs name another."""

_SCALAR = [1]


def export_lerobot(
    source: PathLike,
    out: PathLike,
    *,
    overwrite: bool = False,
    data_files_size_in_mb: float = DATA_FILES_SIZE_IN_MB,
) -> ExportSummary:
    """Write the dataset at ``source`` (``.h5`` file or shard folder) as a LeRobot v3.0 dataset
    in the folder ``out`` (see the module docstring). The folder is built under a temporary name
    and renamed into place when complete.

    Args:
        source: a robofail dataset.
        out: the output folder.
        overwrite: replace an existing LeRobot dataset (or empty folder) at ``out``.
        data_files_size_in_mb: start a new data file once one holds this many MB.

    Raises:
        InvalidInputError: ``source`` does not exist, holds no episodes or is ``out``; an
            observation is neither a scalar, a vector nor an (H, W, 3) image; pyarrow is missing;
            ``data_files_size_in_mb`` <= 0.
        OutputPathError: ``out`` exists (without ``overwrite``) or cannot be written.
        CorruptFileError: ``source`` cannot be read.
    """
    from robofail.data.store import open_dataset

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InvalidInputError(
            "--format lerobot writes parquet and needs pyarrow: pip install 'robofail[export]'"
        ) from None
    if not data_files_size_in_mb > 0:
        raise InvalidInputError(f"data_files_size_in_mb must be > 0, got {data_files_size_in_mb}")
    source, out = Path(source), Path(out)
    check_paths(source, out, folder=True, overwrite=overwrite)
    with open_dataset(source) as dataset:
        if not len(dataset):
            raise InvalidInputError(f"{source} holds no episodes; nothing to export")
        with staged_folder(out) as staging:
            frames = _write_dataset(dataset, source, staging, data_files_size_in_mb)
        return ExportSummary(out=out, episodes=len(dataset), frames=frames)


def task_description(info: DatasetInfo) -> str:
    """The natural-language task of ``info`` (LeRobot's ``task``): the bundled task's
    description, else the task name with spaces for underscores."""
    from robofail.tasks import TASKS

    entry = TASKS.get(info.task)
    return entry.description if entry and entry.description else info.task.replace("_", " ")


def lerobot_features(info: DatasetInfo, episode: Episode) -> dict[str, dict[str, Any]]:
    """LeRobot's ``features`` (column -> dtype, shape, names) for episodes shaped like
    ``episode``, in column order.

    Raises:
        InvalidInputError: an observation is neither (T,), (T, D) nor (T, H, W, 3) uint8.
    """
    features = {}
    for key, column in _obs_columns(info, episode).items():
        array = episode.obs[key]
        names = info.obs_names.get(key) or []
        if column.startswith("observation.images."):
            names = ["height", "width", "channels"]
            features[column] = {"dtype": "image", "shape": list(array.shape[1:]), "names": names}
        elif array.ndim in (1, 2):
            shape = [1] if array.ndim == 1 else [array.shape[1]]
            names = names if len(names) == shape[0] and array.ndim == 2 else None
            features[column] = {"dtype": array.dtype.name, "shape": shape, "names": names}
        else:
            raise InvalidInputError(
                f"cannot export obs[{key!r}] of shape {array.shape[1:]} per step: LeRobot "
                "columns are scalars, vectors or (H, W, 3) uint8 images"
            )
    features["action"] = {
        "dtype": "float32",
        "shape": [len(info.action_names)],
        "names": list(info.action_names),
    }
    for name, dtype in (
        ("next.reward", "float32"),
        ("next.done", "bool"),
        ("subtask_index", "int64"),
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def _obs_columns(info: DatasetInfo, episode: Episode) -> dict[str, str]:
    """Observation key -> LeRobot column: ``state`` -> ``observation.state``, an (H, W, 3)
    uint8 image -> ``observation.images.<camera>`` (the env's camera for ``image``), any other
    key -> ``observation.<key>``."""
    kwargs = info.extra.get("env_kwargs")
    camera = str((kwargs.get("camera") if isinstance(kwargs, dict) else None) or DEFAULT_CAMERA)
    columns = {}
    for key in sorted(episode.obs):
        array = episode.obs[key]
        if key == "state":
            columns[key] = "observation.state"
        elif array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] == 3:
            columns[key] = f"observation.images.{camera if key == 'image' else key}"
        else:
            columns[key] = f"observation.{key}"
    return columns


def _write_dataset(dataset: Any, source: Path, root: Path, data_files_size_in_mb: float) -> int:
    """Write the data files and the ``meta/`` files of ``dataset`` under ``root``; return the
    number of frames."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    info, names = dataset.info, dataset.episode_names()
    first = dataset[0]
    obs_columns, features = _obs_columns(info, first), lerobot_features(info, first)
    schema = pa.schema([(name, _arrow_type(feature)) for name, feature in features.items()])
    task = task_description(info)
    fps = info.control_hz
    episodes, failures, all_stats = [], [], []
    frames = 0
    data_files = _DataFiles(root, schema, int(data_files_size_in_mb * 2**20))
    try:
        for position, episode in enumerate(dataset):
            values = _frame_values(episode, obs_columns, position=position, start=frames, fps=fps)
            _check_shapes(values, features, names[position])
            table = pa.table(
                [_arrow_column(values[name], feature) for name, feature in features.items()],
                schema=schema,
            )
            chunk_index, file_index = data_files.write(table)
            stats = {name: _episode_stats(values[name], f) for name, f in features.items()}
            all_stats.append(stats)
            episodes.append(
                {
                    "episode_index": position,
                    "tasks": [task],
                    "length": episode.length,
                    "data/chunk_index": chunk_index,
                    "data/file_index": file_index,
                    "dataset_from_index": frames,
                    "dataset_to_index": frames + episode.length,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                    **{
                        f"stats/{name}/{key}": value.tolist()
                        for name, feature_stats in stats.items()
                        for key, value in feature_stats.items()
                    },
                }
            )
            failures.append(_failure_row(position, names[position], episode, task))
            frames += episode.length
    finally:
        data_files.close()
    meta = root / "meta"
    (meta / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / EPISODES_PATH)
    pq.write_table(pa.Table.from_pylist(failures), root / FAILURES_PATH)
    pq.write_table(_indexed_table([task], "task", "task_index"), meta / "tasks.parquet")
    subtasks = _indexed_table(info.phase_names, "subtask", "subtask_index")
    pq.write_table(subtasks, meta / "subtasks.parquet")
    stats = {name: _aggregate([s[name] for s in all_stats]) for name in features}
    (meta / "stats.json").write_text(
        json.dumps({n: {k: v.tolist() for k, v in s.items()} for n, s in stats.items()}, indent=4)
    )
    (meta / "robofail.json").write_text(
        json.dumps(
            {
                "robofail_version": __version__,
                "source": os.fspath(source),
                "failures_path": FAILURES_PATH,
                "info": info.to_json(),
            },
            indent=1,
        )
    )
    (meta / "info.json").write_text(
        json.dumps(
            {
                "codebase_version": CODEBASE_VERSION,
                "robot_type": None,
                "total_episodes": len(episodes),
                "total_frames": frames,
                "total_tasks": 1,
                "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": data_files_size_in_mb,
                "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
                "fps": int(fps) if fps.is_integer() else fps,
                "splits": {"train": f"0:{len(episodes)}"},
                "data_path": DATA_PATH,
                "video_path": None,
                "features": features,
            },
            indent=4,
        )
    )
    return frames


def _frame_values(
    episode: Episode, obs_columns: dict[str, str], *, position: int, start: int, fps: float
) -> dict[str, np.ndarray]:
    """Every column of one episode's T frames as a (T, ...) array; ``start`` is the dataset
    index of its first frame."""
    steps = episode.length
    frame = np.arange(steps, dtype=np.int64)
    values = {column: episode.obs[key] for key, column in obs_columns.items()}
    values.update(
        {
            "action": episode.actions,
            "next.reward": episode.rewards,
            "next.done": episode.dones,
            "subtask_index": episode.phases.astype(np.int64),
            "timestamp": (frame / fps).astype(np.float32),
            "frame_index": frame,
            "episode_index": np.full(steps, position, dtype=np.int64),
            "index": start + frame,
            "task_index": np.zeros(steps, dtype=np.int64),
        }
    )
    return values


def _check_shapes(values: dict[str, np.ndarray], features: dict[str, dict], demo: str) -> None:
    """InvalidInputError unless every column fits its feature's dtype and shape."""
    for name, feature in features.items():
        array = values[name]
        dtype = "uint8" if feature["dtype"] == "image" else feature["dtype"]
        shape = () if feature["shape"] == _SCALAR and array.ndim == 1 else tuple(feature["shape"])
        if array.dtype.name != dtype or array.shape[1:] != shape:
            raise InvalidInputError(
                f"{demo}: {name} is {array.dtype.name} {array.shape[1:]} per frame, the first "
                f"episode's is {dtype} {shape}; LeRobot columns have one shape"
            )


def _arrow_type(feature: dict[str, Any]) -> Any:
    """The parquet column type of a feature, as LeRobot's ``datasets`` features read it:
    image -> struct<bytes, path>, scalar -> value, vector of D -> fixed-size list of D."""
    import pyarrow as pa

    if feature["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    value = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    return value if feature["shape"] == _SCALAR else pa.list_(value, feature["shape"][0])


def _arrow_column(values: np.ndarray, feature: dict[str, Any]) -> Any:
    """One column of an episode's (T, ...) values as a pyarrow array of ``_arrow_type``."""
    import pyarrow as pa

    if feature["dtype"] == "image":
        frames = [_png(frame) for frame in values]
        return pa.StructArray.from_arrays(
            [pa.array(frames, pa.binary()), pa.nulls(len(frames), pa.string())],
            fields=list(_arrow_type(feature)),
        )
    if feature["shape"] == _SCALAR:
        return pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), feature["shape"][0])


def _png(frame: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB frame as PNG bytes (lossless)."""
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]))  # OpenCV: BGR
    if not ok:  # pragma: no cover - PNG encoding of a uint8 frame does not fail
        raise InvalidInputError(f"OpenCV could not encode a {frame.shape} frame as PNG")
    return encoded.tobytes()


def _episode_stats(values: np.ndarray, feature: dict[str, Any]) -> dict[str, np.ndarray]:
    """One episode's stats of one column: min, max, mean, std and quantiles per dimension
    (float64, the feature's shape; images per channel in [0, 1], (3, 1, 1)), count (1,)."""
    if feature["dtype"] == "image":
        stats = _image_stats(values)
    else:
        samples = values.reshape(len(values), -1).astype(np.float64)
        stats = {
            "min": samples.min(axis=0),
            "max": samples.max(axis=0),
            "mean": samples.mean(axis=0),
            "std": samples.std(axis=0),
            **{key: np.quantile(samples, q, axis=0) for key, q in QUANTILES.items()},
        }
    stats["count"] = np.array([len(values)], dtype=np.int64)
    return stats


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Exact per-channel stats of (T, H, W, C) uint8 frames scaled to [0, 1], each (C, 1, 1),
    from each channel's 256-level histogram (quantiles by np.quantile's linear rule)."""
    channels = frames.shape[-1]
    levels = np.arange(256) / 255.0
    hist = np.stack([np.bincount(frames[..., c].ravel(), minlength=256) for c in range(channels)])
    n = int(hist[0].sum())
    mean = hist @ levels / n
    present = hist > 0
    cumulative = hist.cumsum(axis=1)

    def at_rank(rank: int) -> np.ndarray:
        """(C,) the value of 0-based rank ``rank`` in each channel's sorted pixels."""
        return levels[np.argmax(cumulative > rank, axis=1)]

    def quantile(q: float) -> np.ndarray:
        position = q * (n - 1)
        low, high = at_rank(int(np.floor(position))), at_rank(int(np.ceil(position)))
        return low + (position - np.floor(position)) * (high - low)

    stats = {
        "min": levels[np.argmax(present, axis=1)],
        "max": levels[255 - np.argmax(present[:, ::-1], axis=1)],
        "mean": mean,
        "std": np.sqrt((hist * (levels - mean[:, None]) ** 2).sum(axis=1) / n),
        **{key: quantile(q) for key, q in QUANTILES.items()},
    }
    return {key: value.reshape(channels, 1, 1) for key, value in stats.items()}


def _aggregate(stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The dataset's stats from its episodes', as LeRobot's ``aggregate_stats``: exact min,
    max, count, mean and std (pooled variance), quantiles weighted by count."""
    counts = np.array([s["count"][0] for s in stats], dtype=np.float64)
    shape = (len(stats), *np.shape(stats[0]["mean"]))
    weights = (counts / counts.sum()).reshape(len(stats), *[1] * (len(shape) - 1))
    means = np.stack([s["mean"] for s in stats])
    mean = (weights * means).sum(axis=0)
    variance = (weights * (np.stack([s["std"] for s in stats]) ** 2 + (means - mean) ** 2)).sum(0)
    return {
        "min": np.stack([s["min"] for s in stats]).min(axis=0),
        "max": np.stack([s["max"] for s in stats]).max(axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": np.array([int(counts.sum())], dtype=np.int64),
        **{key: (weights * np.stack([s[key] for s in stats])).sum(axis=0) for key in QUANTILES},
    }


def _failure_row(position: int, demo: str, episode: Episode, task: str) -> dict[str, Any]:
    """One row of ``meta/failures.parquet``: the episode's label, one column per field
    (``perturbation`` as JSON, its kind also on its own), and where it came from."""
    label = episode.label.to_json()
    return {
        "episode_index": position,
        "robofail_index": int(demo.split("_")[1]),
        "task": task,
        "length": episode.length,
        **{
            key: json.dumps(value) if key == "perturbation" else value
            for key, value in label.items()
        },
        "perturbation_kind": label["perturbation"].get("kind", ""),
    }


def _indexed_table(values: list[str], index: str, column: str) -> Any:
    """A table of ``column`` = 0 .. n-1 (int64) and the strings ``values`` as column ``index``,
    with pandas metadata so that ``pd.read_parquet`` (how LeRobot reads its tasks) returns
    ``column`` indexed by ``values``."""
    import pyarrow as pa

    table = pa.table(
        {column: pa.array(range(len(values)), pa.int64()), index: pa.array(values, pa.string())}
    )
    pandas = {
        "index_columns": [index],
        "column_indexes": [],
        "columns": [
            {"name": column, "field_name": column, "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": index, "field_name": index, "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "robofail", "version": __version__},
    }  # fmt: skip
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas).encode()})


class _DataFiles:
    """Frame tables -> ``data/chunk-XXX/file-YYY.parquet``, one row group per episode; a new
    file once the current one holds ``max_bytes``, a new chunk folder every CHUNKS_SIZE files."""

    def __init__(self, root: Path, schema: Any, max_bytes: int) -> None:
        self.root, self.schema, self.max_bytes = root, schema, max_bytes
        self.chunk_index = self.file_index = 0
        self._sink: Any = None
        self._writer: Any = None

    def write(self, table: Any) -> tuple[int, int]:
        """Append one episode's frames; return the (chunk_index, file_index) of its file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is not None and self._sink.tell() >= self.max_bytes:
            self.close()
            self.file_index += 1
            if self.file_index == CHUNKS_SIZE:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
        if self._writer is None:
            path = self.root / DATA_PATH.format(
                chunk_index=self.chunk_index, file_index=self.file_index
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = pa.OSFile(os.fspath(path), "wb")
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy")
        self._writer.write_table(table, row_group_size=len(table))
        return self.chunk_index, self.file_index

    def close(self) -> None:
        """Finish the open file, if any."""
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None
