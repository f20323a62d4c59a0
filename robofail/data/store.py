"""HDF5 episode store in robomimic's layout: one file, a folder of shards, and a lazy reader.

Layout of one file (``T`` steps per episode, ``i`` the episode's global index)::

    /data              attrs: total (env steps), env_args (DatasetInfo JSON, UTF-8 bytes),
                              env_args_sha256, robofail_schema (1), robofail_version
    /data/demo_<i>     attrs: num_samples (T), label (EpisodeLabel JSON, UTF-8 bytes),
                              label_sha256, one attr per label field
        obs/<key>      (T, ...); images (T, H, W, 3) uint8 gzip level 4, chunked by frames
        actions (T, A) float32, rewards (T,) float32, dones (T,) bool, states (T, N) float64,
        phases (T,) int8, final_state (N,) float64, extras/<name> (any shape)
    /mask/<filter>     (M,) bytes: names of the demos in the filter ("success", "failure",
                       each failure type, "perturbation_<kind>" per perturbation kind)

A sharded dataset is a folder of such files (``shard_00000.h5``, ...) and ``manifest.json``
listing the complete ones, each with the global indices it stores and those it covers but
deliberately does not store (``skipped``, e.g. successes a failure generator drops). Every file is
written to a temporary name and renamed when complete. Datasets (``track_times`` off) are written
without timestamps, so identical content gives identical bytes.

Corruption is detected, never read back as other data: files use HDF5's 1.10 format, whose
metadata (superblock, object headers, indexes) carries checksums; every non-empty array has a
Fletcher-32 checksum per chunk; the JSON attributes robofail reads (``label``, ``env_args``) are
fixed-length UTF-8 bytes (``json.loads`` reads them as they are) with a sha256 next to them
(``label_sha256``, ``env_args_sha256``); the manifest carries the sha256 of its own content.
Tools that edit a file through HDF5 (e.g. adding a mask) keep it valid: HDF5 updates its
checksums. (Lookups use ``in`` then ``[]``, never ``get``: h5py's ``get`` turns an unreadable,
corrupt object into a missing one.)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from robofail import __version__
from robofail.data.episode import DatasetInfo, Episode, EpisodeLabel
from robofail.errors import (
    CorruptFileError,
    IndexOutOfRangeError,
    InvalidInputError,
    OutputPathError,
    UnknownNameError,
)

SCHEMA_VERSION = 1
"""Version of the file and manifest layout; files of another version are refused."""

MANIFEST_NAME = "manifest.json"

_GZIP_LEVEL = 4
_IMAGE_CHUNK_BYTES = 1 << 18  # about 256 KiB of frames per compressed chunk
_PER_STEP_FIELDS = ("actions", "rewards", "dones", "states", "phases")
_MAX_OPEN_FILES = 16
_OUTCOME_FILTERS = ("success", "failure")
_SINGLE_CHUNK_BYTES = 1 << 20  # arrays up to 1 MiB are one checksummed chunk
_LIBVER = "v110"  # HDF5 1.10 file format: checksummed metadata
_MANIFEST_KEYS = {"robofail_schema", "robofail_version", "info", "shards", "sha256"}

PathLike = str | os.PathLike[str]


def write_episodes(path: PathLike, episodes: Iterable[Episode], info: DatasetInfo) -> Path:
    """Write ``episodes`` to one HDF5 file at ``path``, atomically; return the path.

    Episodes are stored as ``demo_0``, ``demo_1``, ... in iteration order. The file appears
    only once complete: on any error the temporary file is removed and a file already at
    ``path`` is left untouched. Missing parent folders are created.

    Raises:
        OutputPathError: ``path`` cannot be written.
        InvalidInputError: an item is not an Episode or does not fit ``info``.
    """
    path = Path(path)
    with _atomic_output(path) as tmp:
        _write_file(tmp, enumerate(episodes), info)
    return path


class ShardedWriter:
    """Writes a large dataset as a folder of HDF5 shards plus ``manifest.json``.

    Episodes are added with their global index (any order, e.g. as workers finish) and
    buffered; indices processed but not kept are recorded with :meth:`skip`. Every
    ``shard_size`` indices (added or skipped) a shard is written atomically (temporary name,
    then rename), then the manifest is rewritten atomically. A killed run thus loses only
    buffered episodes; :meth:`completed_indices` tells a resumed run what to skip. When indices
    are added or skipped in order from 0, shard ``k`` covers exactly the indices
    ``[k * shard_size, (k + 1) * shard_size)``.
    One writer per folder at a time.

    As a context manager it calls :meth:`close` on exit, also when the block raises: the
    buffered episodes are complete, so they are written too rather than lost.
    """

    def __init__(self, out_dir: PathLike, info: DatasetInfo, *, shard_size: int = 100) -> None:
        """Open ``out_dir`` (created if missing) for writing episodes described by ``info``.

        Raises:
            InvalidInputError: ``shard_size`` < 1, or the folder holds a dataset whose
                DatasetInfo differs from ``info`` (another task, other field names...).
            OutputPathError: the folder cannot be created or written.
            CorruptFileError: its manifest is unreadable.
        """
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise InvalidInputError(f"shard_size: expected an int >= 1, got {shard_size!r}")
        if not isinstance(info, DatasetInfo):
            raise InvalidInputError(f"info: expected a DatasetInfo, got {type(info).__name__}")
        self.out_dir = Path(out_dir)
        self.info = info
        self.shard_size = shard_size
        self._buffer: dict[int, Episode] = {}
        self._skipped: set[int] = set()
        self._closed = False
        self._shards = self._load_or_create_manifest()
        self._completed = {
            index for shard in self._shards for index in (*shard["indices"], *shard["skipped"])
        }

    def _load_or_create_manifest(self) -> list[dict[str, Any]]:
        """Load the folder's manifest, or create an empty one; return its shard entries."""
        manifest = self.out_dir / MANIFEST_NAME
        if not manifest.is_file():
            _remove_temporary_files(self.out_dir)
            _write_manifest(self.out_dir, self.info, [])
            return []
        info, shards = _read_manifest(self.out_dir)
        mine = self.info.to_json()
        differ = [key for key, value in info.to_json().items() if mine[key] != value]
        if differ:
            raise InvalidInputError(
                f"{self.out_dir} holds a dataset of task {info.task!r} whose info differs in "
                f"{differ} from this one (task {self.info.task!r}); "
                "write to another folder or use the same settings"
            )
        _remove_temporary_files(self.out_dir)
        return shards

    def completed_indices(self) -> set[int]:
        """Global indices already in complete shards: stored, or recorded with :meth:`skip`."""
        return set(self._completed)

    def add(self, index: int, episode: Episode) -> None:
        """Buffer ``episode`` under global ``index``; write a shard when the buffer is full.

        Raises:
            InvalidInputError: the writer is closed, ``index`` is not an int >= 0 or is already
                added or written, or ``episode`` does not fit the dataset's info.
        """
        index = self._new_index(index)
        self.info.check_episode(episode, name=f"episode {index}")
        self._buffer[index] = episode
        self._flush_if_full()

    def skip(self, index: int) -> None:
        """Record that global ``index`` was processed but is deliberately not stored, so a
        resumed run neither redoes nor stores it; counts towards ``shard_size``.

        Raises:
            InvalidInputError: as :meth:`add`.
        """
        self._skipped.add(self._new_index(index))
        self._flush_if_full()

    def _new_index(self, index: int) -> int:
        """``index`` as int, checked to be >= 0 and neither buffered nor completed."""
        if self._closed:
            raise InvalidInputError(f"ShardedWriter for {self.out_dir} is closed")
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise InvalidInputError(f"index: expected an int >= 0, got {index!r}")
        index = int(index)
        if index in self._buffer or index in self._skipped or index in self._completed:
            raise InvalidInputError(
                f"episode {index} was already added to {self.out_dir}; "
                "skip the indices in completed_indices() when resuming"
            )
        return index

    def _flush_if_full(self) -> None:
        if len(self._buffer) + len(self._skipped) >= self.shard_size:
            self._flush()

    def close(self) -> None:
        """Write the buffered episodes as a last, possibly smaller shard. Idempotent."""
        if not self._closed:
            self._flush()
            self._closed = True

    def _flush(self) -> None:
        """Write the buffer as the next shard, then list it in the manifest."""
        if not self._buffer and not self._skipped:
            return
        items = sorted(self._buffer.items())
        name = f"shard_{len(self._shards):05d}.h5"
        path = self.out_dir / name
        with _atomic_output(path) as tmp:
            _write_file(tmp, items, self.info)
        entry = {
            "file": name,
            "episodes": len(items),
            "indices": [index for index, _ in items],
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
            "skipped": sorted(self._skipped),
        }
        _write_manifest(self.out_dir, self.info, [*self._shards, entry])
        self._shards.append(entry)
        self._completed.update(entry["indices"], entry["skipped"])
        self._buffer.clear()
        self._skipped.clear()

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Dataset:
    """Read access to a stored dataset (one file or a shard folder), in global index order.

    Lazy: opening reads only the file layout or manifest; episodes are read on access, and at
    most a few files are kept open. Positions (``0 <= i < len(dataset)``) follow the global
    indices in ascending order, so they equal them when no index is missing. Use as a context
    manager, or call :meth:`close`, to close the files.
    """

    def __init__(self, path: Path, info: DatasetInfo, entries: list[tuple[Path, str]]) -> None:
        """Use :func:`open_dataset`. ``entries``: (file, demo name) per episode, in order."""
        self.path = path
        self.info = info
        self._entries = entries
        self._handles: OrderedDict[Path, h5py.File] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, position: int) -> Episode:
        """The episode at ``position`` (negative counts from the end).

        Raises:
            IndexOutOfRangeError: no episode at ``position``.
            InvalidInputError: ``position`` is not an int.
        """
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
            raise InvalidInputError(
                f"episode positions are ints (0 <= i < {len(self)}), got {position!r}; "
                "episode_names() lists the demo names"
            )
        if not -len(self) <= position < len(self):
            raise IndexOutOfRangeError(
                f"episode {position} is out of range: {self.path} holds {len(self)} episodes"
            )
        file, demo = self._entries[position]
        with _corrupt_on_error(file, demo):
            return _read_demo(self._file(file)["data"][demo])

    def __iter__(self) -> Iterator[Episode]:
        for position in range(len(self)):
            yield self[position]

    def episode_names(self) -> list[str]:
        """Demo names (``demo_<global index>``) in order."""
        return [demo for _, demo in self._entries]

    def labels(self) -> list[EpisodeLabel]:
        """Every episode's label, in order; reads HDF5 attributes only."""
        labels = []
        for file, demo in self._entries:
            with _corrupt_on_error(file, f"{demo} label"):
                raw = _read_json_attribute(self._file(file)["data"][demo], "label")
                labels.append(EpisodeLabel.from_json(raw))
        return labels

    def mask_names(self) -> list[str]:
        """Names of the filters (``/mask/<name>``) present in the dataset's files, sorted."""
        names = set(_OUTCOME_FILTERS)
        for file in self._files():
            with _corrupt_on_error(file, "/mask"):
                names.update(self._file(file)["mask"].keys())
        return sorted(names)

    def mask(self, filter_name: str) -> list[int]:
        """Sorted positions of the episodes in filter ``filter_name`` (e.g. ``"failure"``).

        Raises:
            UnknownNameError: no file of the dataset has that filter.
        """
        position = {entry: i for i, entry in enumerate(self._entries)}
        found = filter_name in _OUTCOME_FILTERS
        positions = []
        for file in self._files():
            with _corrupt_on_error(file, f"/mask/{filter_name}"):
                masks = self._file(file)["mask"]
                if filter_name in masks:
                    found = True
                    names = masks[filter_name][()]
                    positions.extend(position[(file, name.decode())] for name in names)
        if not found:
            raise UnknownNameError(
                f"no filter {filter_name!r} in {self.path}; known: {', '.join(self.mask_names())}"
            )
        return sorted(positions)

    def close(self) -> None:
        """Close the open files. The dataset can still be read afterwards (files reopen)."""
        while self._handles:
            self._handles.popitem()[1].close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _files(self) -> list[Path]:
        """The dataset's files, each once, in order."""
        return list(dict.fromkeys(file for file, _ in self._entries))

    def _file(self, file: Path) -> h5py.File:
        """An open handle on ``file``, from a small least-recently-used cache."""
        handle = self._handles.pop(file, None)
        if handle is None:
            handle = _open_h5(file)
            if len(self._handles) >= _MAX_OPEN_FILES:
                self._handles.popitem(last=False)[1].close()
        self._handles[file] = handle
        return handle


def open_dataset(path: PathLike) -> Dataset:
    """Open a dataset: a ``.h5`` file or a folder written by :class:`ShardedWriter`.

    Shards not listed in the folder's manifest are ignored.

    Raises:
        InvalidInputError: ``path`` does not exist, or is a folder without a manifest.
        CorruptFileError: the file, the manifest or a shard it lists is missing, truncated,
            corrupt or not in this layout.
    """
    path = Path(path)
    if not path.exists():
        head, colon, filter_name = str(path).rpartition(":")
        hint = (
            f"{head} exists, but this option takes a whole dataset: drop the :{filter_name}"
            if colon and Path(head).exists()
            else "check the path"
        )
        raise InvalidInputError(f"no such file: {path}; {hint}")
    if not (path.is_dir() or path.is_file()):
        raise InvalidInputError(f"{path} is neither a file nor a folder; pass a dataset")
    if path.is_dir():
        return _open_shard_folder(path)
    with _open_h5(path) as handle, _corrupt_on_error(path, "/data"):
        info = DatasetInfo.from_json(_read_json_attribute(handle["data"], "env_args"))
        demos = sorted(handle["data"].keys(), key=_demo_index)
    return Dataset(path, info, [(path, demo) for demo in demos])


def read_episodes(path: PathLike) -> list[Episode]:
    """Every episode of the dataset at ``path`` (file or shard folder), in index order."""
    with open_dataset(path) as dataset:
        return list(dataset)


def _open_shard_folder(folder: Path) -> Dataset:
    """Open a shard folder from its manifest, checking that every listed shard is there."""
    if not (folder / MANIFEST_NAME).is_file():
        raise InvalidInputError(
            f"{folder} is a folder without {MANIFEST_NAME}, not a robofail dataset; pass a .h5 "
            "episode file or a folder written by `robofail generate`"
        )
    info, shards = _read_manifest(folder)
    indexed = []
    for shard in shards:
        file = folder / shard["file"]
        if not file.is_file() or file.stat().st_size != shard["bytes"]:
            state = "is missing" if not file.is_file() else "has another size than listed"
            raise CorruptFileError(
                f"shard {file} listed in {folder / MANIFEST_NAME} {state}; delete the folder "
                "and re-generate the dataset"
            )
        indexed.extend((index, file) for index in shard["indices"])
    indexed.sort()
    if len({index for index, _ in indexed}) != len(indexed):
        raise CorruptFileError(
            f"{folder / MANIFEST_NAME} lists an episode index twice; delete the folder and "
            "re-generate the dataset"
        )
    return Dataset(folder, info, [(file, f"demo_{index}") for index, file in indexed])


def is_temporary_file(path: Path) -> bool:
    """Whether ``path`` is a shard or manifest being written (or left by a killed writer)."""
    return ".tmp-" in path.name and (path.name.startswith("shard_") or ".json" in path.name)


def _remove_temporary_files(folder: Path) -> None:
    """Delete the temporary files a killed writer left in ``folder`` (one writer per folder)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if is_temporary_file(path):
                path.unlink(missing_ok=True)


def _write_file(path: Path, items: Iterable[tuple[int, Episode]], info: DatasetInfo) -> None:
    """Write (global index, episode) pairs and their filters to a new HDF5 file at ``path``."""
    if not isinstance(info, DatasetInfo):
        raise InvalidInputError(f"info: expected a DatasetInfo, got {type(info).__name__}")
    members: dict[str, list[str]] = {name: [] for name in _OUTCOME_FILTERS}
    total = 0
    with h5py.File(path, "w", libver=_LIBVER) as f:
        data = f.create_group("data")
        for index, episode in items:
            demo = f"demo_{index}"
            info.check_episode(episode, name=f"episode {index}")
            _write_demo(data.create_group(demo), episode)
            total += episode.length
            for name in episode.label.filter_names():
                members.setdefault(name, []).append(demo)
        data.attrs["total"] = total
        _json_attribute(data, "env_args", info.to_json())
        data.attrs["robofail_schema"] = SCHEMA_VERSION
        data.attrs["robofail_version"] = __version__
        masks = f.create_group("mask")
        for name, demos in members.items():
            _create_dataset(masks, name, np.array(demos, dtype="S"))


def _write_demo(group: h5py.Group, episode: Episode) -> None:
    """Write one episode's arrays and label attributes into ``group`` (``/data/demo_<i>``)."""
    label = episode.label.to_json()
    group.attrs["num_samples"] = episode.length
    _json_attribute(group, "label", label)
    for key, value in label.items():
        group.attrs[key] = json.dumps(value) if key == "perturbation" else value
    obs = group.create_group("obs")
    for key, array in episode.obs.items():
        if array.dtype == np.uint8 and array.ndim == 4:  # images: (T, H, W, C)
            frames = max(1, min(len(array), _IMAGE_CHUNK_BYTES // array[0].nbytes))
            chunks = (frames, *array.shape[1:])
            _create_dataset(
                obs, key, array, chunks=chunks, compression="gzip", compression_opts=_GZIP_LEVEL
            )
        else:
            _create_dataset(obs, key, array)
    for name in (*_PER_STEP_FIELDS, "final_state"):
        _create_dataset(group, name, getattr(episode, name))
    if episode.extras:
        extras = group.create_group("extras")
        for key, array in episode.extras.items():
            _create_dataset(extras, key, array)


def _create_dataset(group: h5py.Group, name: str, array: np.ndarray, **options: Any) -> None:
    """Write ``array`` as dataset ``name``, with a Fletcher-32 checksum per chunk (arrays up to
    1 MiB are one chunk); HDF5 cannot chunk empty or 0-d arrays, which are stored plain."""
    array = np.asarray(array)
    if array.size and array.ndim:
        if "chunks" not in options:
            options["chunks"] = array.shape if array.nbytes <= _SINGLE_CHUNK_BYTES else True
        options["fletcher32"] = True
    group.create_dataset(name, data=array, track_times=False, **options)


def _json_attribute(node: h5py.Group, name: str, value: Any) -> None:
    """Store ``value`` as JSON in attribute ``name`` and its sha256 in ``name_sha256``, both as
    fixed-length UTF-8 bytes: kept in the attribute's own checksummed storage, not in HDF5's
    unchecksummed global heap, where corrupted bytes can send HDF5 into an endless loop."""
    text = json.dumps(value).encode()
    node.attrs[name] = np.bytes_(text)
    node.attrs[f"{name}_sha256"] = np.bytes_(hashlib.sha256(text).hexdigest())


def _read_json_attribute(node: h5py.Group, name: str) -> Any:
    """The JSON value of attribute ``name``, checked against its sha256 when the file has one."""
    value = node.attrs[name]
    text = bytes(value) if isinstance(value, bytes) else str(value).encode()
    if f"{name}_sha256" in node.attrs:  # files written before the checksums have none
        digest = bytes(node.attrs[f"{name}_sha256"])
        if hashlib.sha256(text).hexdigest().encode() != digest:
            raise ValueError(f"attribute {name!r} does not match its sha256")
    return json.loads(text)


def _read_demo(group: h5py.Group) -> Episode:
    """Read one ``/data/demo_<i>`` group back into an Episode (errors: see _corrupt_on_error)."""
    label = EpisodeLabel.from_json(_read_json_attribute(group, "label"))
    extras: Any = {}
    if "extras" in group:
        extras = group["extras"]
    episode = Episode(
        obs={key: value[()] for key, value in group["obs"].items()},
        **{name: group[name][()] for name in (*_PER_STEP_FIELDS, "final_state")},
        label=label,
        extras={key: np.asarray(value[()]) for key, value in extras.items()},
    )
    if int(group.attrs["num_samples"]) != episode.length:
        raise ValueError(f"num_samples {group.attrs['num_samples']} != {episode.length} steps")
    return episode


def _open_h5(path: Path) -> h5py.File:
    """Open an episode file read-only and check its layout and schema version."""
    with _corrupt_on_error(path, "the file"):
        handle = h5py.File(path, "r")
    try:
        with _corrupt_on_error(path, "/data"):
            if not isinstance(handle.get("data"), h5py.Group) or not isinstance(
                handle.get("mask"), h5py.Group
            ):
                raise ValueError("no /data and /mask groups: not a robofail episode file")
            schema = handle["data"].attrs.get("robofail_schema")
            if schema is None or int(schema) != SCHEMA_VERSION:
                raise ValueError(f"schema version {schema}, this robofail reads {SCHEMA_VERSION}")
    except BaseException:
        handle.close()
        raise
    return handle


def _demo_index(name: str) -> int:
    """The global index ``i`` of group name ``demo_<i>``."""
    prefix, _, number = name.partition("_")
    if prefix != "demo" or not number.isdigit():
        raise ValueError(f"unexpected group /data/{name}; expected demo_<i>")
    return int(number)


def _read_manifest(folder: Path) -> tuple[DatasetInfo, list[dict[str, Any]]]:
    """The DatasetInfo and shard entries of ``folder/manifest.json``, checked against the sha256
    of its content (manifests written before it had one are only type-checked)."""
    path = folder / MANIFEST_NAME
    with _corrupt_on_error(path, "the manifest"):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not set(manifest) <= _MANIFEST_KEYS:
            raise ValueError(f"expected an object with keys {sorted(_MANIFEST_KEYS)}")
        if "sha256" in manifest and manifest["sha256"] != _manifest_sha256(manifest):
            raise ValueError("its content does not match its sha256")
        if manifest["robofail_schema"] != SCHEMA_VERSION:
            raise ValueError(
                f"schema version {manifest['robofail_schema']}, this robofail reads "
                f"{SCHEMA_VERSION}"
            )
        info = DatasetInfo.from_json(manifest["info"])
        if not isinstance(manifest["shards"], list):
            raise ValueError("'shards' is not a list")
        return info, [_shard_entry(raw) for raw in manifest["shards"]]


def _manifest_sha256(manifest: dict[str, Any]) -> str:
    """sha256 of a manifest's content, its own ``sha256`` field left out."""
    content = {key: value for key, value in manifest.items() if key != "sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _shard_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """One manifest shard entry, type-checked."""
    ints = [raw["episodes"], raw["bytes"], *raw["indices"], *raw.get("skipped", [])]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in ints):
        raise ValueError(f"bad shard entry {raw!r}: counts and indices must be ints")
    entry = {
        "file": str(raw["file"]),
        "episodes": raw["episodes"],
        "indices": list(raw["indices"]),
        "bytes": raw["bytes"],
        "sha256": str(raw["sha256"]),
        "skipped": list(raw.get("skipped", [])),
    }
    if (
        Path(entry["file"]).name != entry["file"]
        or not entry["file"].startswith("shard_")
        or len(entry["indices"]) != entry["episodes"]
        or min([0, *entry["indices"], *entry["skipped"]]) < 0
    ):
        raise ValueError(f"bad shard entry {raw!r}")
    return entry


def _write_manifest(folder: Path, info: DatasetInfo, shards: list[dict[str, Any]]) -> None:
    """Atomically (re)write ``folder/manifest.json``."""
    manifest = {
        "robofail_schema": SCHEMA_VERSION,
        "robofail_version": __version__,
        "info": info.to_json(),
        "shards": shards,
    }
    manifest["sha256"] = _manifest_sha256(manifest)
    with _atomic_output(folder / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


@contextmanager
def _atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds, fsync it and rename
    it onto ``path``, else remove it. Creates missing parent folders.

    Raises OutputPathError when ``path`` cannot be written.
    """
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {path}: {_why(path, exc)}; choose a writable path"
        ) from exc
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _why(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be written: a file where a folder is needed, or the OS's reason."""
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
    return exc.strerror or str(exc)


@contextmanager
def _corrupt_on_error(path: Path, where: str) -> Iterator[None]:
    """Turn errors reading ``where`` in ``path`` into a CorruptFileError naming both."""
    try:
        yield
    except CorruptFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise CorruptFileError(
            f"{path}: cannot read {where} ({type(exc).__name__}: {exc}); it is not a robofail "
            "dataset, or it is truncated or corrupt (then record it again)"
        ) from exc


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
