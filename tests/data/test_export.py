"""``robofail export-dataset``: LeRobot v3.0 and robomimic exports of real datasets (scripted
demos with camera images, generated failures in shards), checked against the formats' layouts and
against the source data; LeRobot's own loader where it is installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robofail.cli import main
from robofail.data import DatasetInfo, open_dataset, write_episodes
from robofail.data import lerobot as lerobot_module
from robofail.data.export import export_dataset
from robofail.data.lerobot import QUANTILES, export_lerobot
from robofail.errors import InvalidInputError
from robofail.failgen.generator import generate
from robofail.tasks import make_env
from robofail.tasks.demos import collect_demos, dataset_info

TASK = "pick the red cube and place it in the tray"
EPISODE_COLUMNS = {
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
    "meta/episodes/chunk_index",
    "meta/episodes/file_index",
}
LEROBOT_COLUMNS = {  # LeRobot's DEFAULT_FEATURES
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 scripted pick_place demos with camera images, in one .h5 file."""
    path = tmp_path_factory.mktemp("demos") / "demos.h5"
    env = make_env("pick_place", obs_image=True)
    info = dataset_info(env, seed=0, source="scripted_expert")
    env.close()
    write_episodes(path, collect_demos("pick_place", 3, obs_image=True), info)
    return path


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated pick_place failures (no images) in shards; successes dropped, so the stored
    global indices do not start at 0."""
    folder = tmp_path_factory.mktemp("failures")
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "task": "pick_place",
                "keep": "failures",
                "perturbations": [{"kind": "grasp_miss"}, {"kind": "slip"}],
            }
        )
    )
    generate(
        "pick_place", spec, 5, folder / "out", backend="inprocess", shard_size=2, progress=False
    )
    with open_dataset(folder / "out") as dataset:
        assert dataset.episode_names()[0] != "demo_0"  # renumbering is exercised
    return folder / "out"


@pytest.fixture(scope="module", params=["demos", "failures"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(source dataset, its LeRobot export)."""
    source = request.getfixturevalue(request.param)
    out = tmp_path_factory.mktemp("lerobot") / request.param
    export_lerobot(source, out)
    return source, out


def read_frames(out: Path) -> pa.Table:
    """Every data file, in LeRobot's order (sorted ``data/*/*.parquet``)."""
    return pa.concat_tables(pq.read_table(p) for p in sorted((out / "data").glob("*/*.parquet")))


def decode_png(data: bytes) -> np.ndarray:
    """(H, W, 3) RGB uint8 from PNG bytes."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_info_json_describes_the_parquet_files(exported) -> None:
    source, out = exported
    info = json.loads((out / "meta" / "info.json").read_text())
    with open_dataset(source) as dataset:
        lengths = [episode.length for episode in dataset]
        source_info = dataset.info
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == source_info.control_hz == 10
    assert (info["total_episodes"], info["total_frames"]) == (len(lengths), sum(lengths))
    assert info["total_tasks"] == 1 and info["chunks_size"] == 1000
    assert info["splits"] == {"train": f"0:{len(lengths)}"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] is None
    features = info["features"]
    assert features["observation.state"] == {
        "dtype": "float32",
        "shape": [len(source_info.obs_names["state"])],
        "names": source_info.obs_names["state"],
    }
    assert features["action"]["names"] == source_info.action_names
    assert features["next.reward"]["dtype"] == "float32"
    assert features["next.done"]["dtype"] == "bool"
    for name, dtype in LEROBOT_COLUMNS.items():
        assert features[name] == {"dtype": dtype, "shape": [1], "names": None}
    images = [name for name, f in features.items() if f["dtype"] == "image"]
    assert images == (["observation.images.front"] if "image" in source_info.obs_names else [])
    for name in images:
        assert features[name]["shape"] == [96, 96, 3]
    schema = pq.read_schema(out / "data" / "chunk-000" / "file-000.parquet")
    assert schema.names == list(features)
    for name, feature in features.items():
        column = schema.field(name).type
        if feature["dtype"] == "image":
            assert column == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        elif feature["shape"] == [1]:
            assert column == pa.from_numpy_dtype(np.dtype(feature["dtype"]))
        else:
            assert column == pa.list_(
                pa.from_numpy_dtype(np.dtype(feature["dtype"])), feature["shape"][0]
            )


def test_frames_and_episode_boundaries_match_the_source(exported) -> None:
    source, out = exported
    frames = read_frames(out)
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert set(episodes.column_names) >= EPISODE_COLUMNS
    rows = episodes.to_pylist()
    np.testing.assert_array_equal(frames["index"].to_numpy(), np.arange(len(frames)))
    data_file = pq.ParquetFile(out / "data" / "chunk-000" / "file-000.parquet")
    assert data_file.metadata.num_row_groups == len(rows)  # one row group per episode
    with open_dataset(source) as dataset:
        fps = dataset.info.control_hz
        start = 0
        for position, (row, episode) in enumerate(zip(rows, dataset, strict=True)):
            steps = episode.length
            assert row["episode_index"] == position and row["length"] == steps
            assert (row["dataset_from_index"], row["dataset_to_index"]) == (start, start + steps)
            assert row["tasks"] == [TASK]
            part = frames.slice(start, steps)
            column = {name: part[name].to_numpy(zero_copy_only=False) for name in part.column_names}
            np.testing.assert_array_equal(column["episode_index"], position)
            np.testing.assert_array_equal(column["frame_index"], np.arange(steps))
            np.testing.assert_array_equal(column["task_index"], 0)
            np.testing.assert_array_equal(
                column["timestamp"], (np.arange(steps) / fps).astype(np.float32)
            )
            np.testing.assert_array_equal(
                np.stack(column["observation.state"]), episode.obs["state"]
            )
            np.testing.assert_array_equal(np.stack(column["action"]), episode.actions)
            np.testing.assert_array_equal(column["next.reward"], episode.rewards)
            np.testing.assert_array_equal(column["next.done"], episode.dones)
            np.testing.assert_array_equal(column["subtask_index"], episode.phases)
            if "image" in episode.obs:
                pngs = [cell["bytes"] for cell in part["observation.images.front"].to_pylist()]
                np.testing.assert_array_equal(
                    np.stack([decode_png(p) for p in pngs]), episode.obs["image"]
                )
            start += steps


def test_stats_match_numpy_on_the_data(exported) -> None:
    source, out = exported
    stats = json.loads((out / "meta" / "stats.json").read_text())
    episode_rows = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    with open_dataset(source) as dataset:
        episodes = list(dataset)
    per_episode = {
        "observation.state": [e.obs["state"] for e in episodes],
        "action": [e.actions for e in episodes],
        "next.reward": [e.rewards[:, None] for e in episodes],
    }
    if "image" in episodes[0].obs:  # per channel over every pixel, scaled to [0, 1]
        per_episode["observation.images.front"] = [
            e.obs["image"].reshape(-1, 3) / 255.0 for e in episodes
        ]
    for name, values in per_episode.items():
        shape = (3, 1, 1) if "images" in name else (values[0].shape[1],)
        everything = np.concatenate(values).astype(np.float64)
        expected = {
            "min": everything.min(0),
            "max": everything.max(0),
            "mean": everything.mean(0),
            "std": everything.std(0),
        }
        for key, value in expected.items():
            np.testing.assert_allclose(np.array(stats[name][key]), value.reshape(shape), atol=1e-9)
        assert stats[name]["count"] == [sum(e.length for e in episodes)]
        for i, episode_values in enumerate(values):  # the episodes' own stats, quantiles exact
            for key, q in QUANTILES.items():
                got = np.array(episode_rows[f"stats/{name}/{key}"][i].as_py())
                want = np.quantile(episode_values.astype(np.float64), q, axis=0).reshape(shape)
                np.testing.assert_allclose(got, want, atol=1e-12)
            assert episode_rows[f"stats/{name}/count"][i].as_py() == [episodes[i].length]
        weights = np.array([e.length for e in episodes]) / sum(e.length for e in episodes)
        for key in QUANTILES:  # LeRobot's aggregation: count-weighted mean of the episodes'
            episodes_q = np.array(episode_rows[f"stats/{name}/{key}"].to_pylist())
            np.testing.assert_allclose(
                np.array(stats[name][key]), np.tensordot(weights, episodes_q, axes=1), atol=1e-12
            )


def test_failures_sidecar_rows_match_the_labels(exported) -> None:
    source, out = exported
    rows = pq.read_table(out / "meta" / "failures.parquet").to_pylist()
    with open_dataset(source) as dataset:
        labels, names = dataset.labels(), dataset.episode_names()
    assert len(rows) == len(labels)
    for position, (row, label, name) in enumerate(zip(rows, labels, names, strict=True)):
        assert row["episode_index"] == position
        assert f"demo_{row['robofail_index']}" == name
        assert row["task"] == TASK
        assert json.loads(row["perturbation"]) == label.perturbation
        assert row["perturbation_kind"] == label.perturbation.get("kind", "")
        for field in ("success", "failure_type", "seed", "onset_step", "failure_step"):
            assert row[field] == getattr(label, field), field
        assert (row["phase_at_onset"], row["source"]) == (label.phase_at_onset, label.source)
    robofail = json.loads((out / "meta" / "robofail.json").read_text())
    with open_dataset(source) as dataset:
        assert DatasetInfo.from_json(robofail["info"]) == dataset.info


def test_tasks_and_subtasks_are_indexed_like_lerobots(exported) -> None:
    source, out = exported
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0], "task": [TASK]}
    assert tasks.schema.pandas_metadata["index_columns"] == ["task"]
    subtasks = pq.read_table(out / "meta" / "subtasks.parquet").to_pydict()
    with open_dataset(source) as dataset:
        phases = dataset.info.phase_names
    assert subtasks == {"subtask_index": list(range(len(phases))), "subtask": phases}


def test_data_files_roll_over_and_episodes_point_to_theirs(failures: Path, tmp_path: Path) -> None:
    export_lerobot(failures, tmp_path / "out", data_files_size_in_mb=1e-6)
    out = tmp_path / "out"
    files = sorted(p.relative_to(out).as_posix() for p in (out / "data").glob("*/*.parquet"))
    rows = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert files == [f"data/chunk-000/file-{i:03d}.parquet" for i in range(len(rows))]
    for row in rows:
        path = (
            out
            / f"data/chunk-{row['data/chunk_index']:03d}/file-{row['data/file_index']:03d}.parquet"
        )
        index = pq.read_table(path)["index"].to_numpy()
        np.testing.assert_array_equal(
            index, np.arange(row["dataset_from_index"], row["dataset_to_index"])
        )


def test_robomimic_merges_the_shards_into_one_file(failures: Path, tmp_path: Path) -> None:
    out = tmp_path / "failures.hdf5"
    summary = export_dataset(failures, out, format="robomimic")
    with open_dataset(failures) as dataset:
        episodes, names, info = list(dataset), dataset.episode_names(), dataset.info
    assert (summary.episodes, summary.frames) == (len(episodes), sum(e.length for e in episodes))
    with h5py.File(out, "r") as f:
        data = f["data"]
        assert sorted(data, key=lambda n: int(n[5:])) == [f"demo_{i}" for i in range(len(names))]
        assert json.loads(data.attrs["env_args"]) == {
            "env_name": "robofail/PickPlace-v0",
            "type": 2,
            "env_kwargs": {},
        }
        assert DatasetInfo.from_json(json.loads(data.attrs["robofail_info"])) == info
        assert data.attrs["total"] == summary.frames
        for i, (episode, name) in enumerate(zip(episodes, names, strict=True)):
            demo = data[f"demo_{i}"]
            assert f"demo_{demo.attrs['robofail_index']}" == name
            assert demo.attrs["num_samples"] == episode.length
            np.testing.assert_array_equal(demo["obs/state"][()], episode.obs["state"])
            for field in ("actions", "rewards", "dones", "states"):
                np.testing.assert_array_equal(demo[field][()], getattr(episode, field))
        masks = {name: sorted(v.decode() for v in f["mask"][name][()]) for name in f["mask"]}
    expected: dict[str, list[str]] = {}
    for i, episode in enumerate(episodes):
        for name in episode.label.filter_names():
            expected.setdefault(name, []).append(f"demo_{i}")
    assert {k: v for k, v in masks.items() if v} == {k: sorted(v) for k, v in expected.items()}


@pytest.mark.parametrize(("fmt", "name"), [("lerobot", "export"), ("robomimic", "export.h5")])
def test_cli_exports_and_overwrites(demos: Path, tmp_path: Path, capsys, fmt, name) -> None:
    out = tmp_path / name
    assert main(["export-dataset", str(demos), "--format", fmt, "--out", str(out)]) == 0
    assert "exported 3 episodes" in capsys.readouterr().out
    first = (out / "meta" / "info.json").read_text() if out.is_dir() else out.stat().st_size
    argv = ["export-dataset", str(demos), "--format", fmt, "--out", str(out), "--overwrite"]
    assert main(argv) == 0
    again = (out / "meta" / "info.json").read_text() if out.is_dir() else out.stat().st_size
    assert again == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_help_shows_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export-dataset", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--format lerobot --out" in text and "LeRobotDataset(" in text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such dataset"),
        ("format", "unknown export format 'zarr'"),
        ("exists", "already exists; pass --overwrite"),
        ("exists_h5", "already exists; pass --overwrite"),
        ("unwritable", "is a file, not a folder"),
        ("foreign_folder", "holds files but no LeRobot dataset"),
        ("not_h5", "must name an .h5 or .hdf5 file"),
        ("into_source", "would write over or into the dataset"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    demos: Path, failures: Path, tmp_path: Path, capsys, case: str, message: str
) -> None:
    source, fmt, out, extra = str(demos), "lerobot", tmp_path / "out", []
    if case == "missing":
        source = str(tmp_path / "nothing.h5")
    elif case == "format":
        fmt = "zarr"
    elif case == "exists":
        out.mkdir()
    elif case == "exists_h5":
        fmt, out = "robomimic", tmp_path / "out.h5"
        out.write_bytes(b"old")
    elif case == "unwritable":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif case == "foreign_folder":
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        extra = ["--overwrite"]
    elif case == "not_h5":
        fmt = "robomimic"
    elif case == "into_source":
        source, out, extra = str(failures), failures, ["--overwrite"]
    argv = ["export-dataset", source, "--format", fmt, "--out", str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("robofail export-dataset")
    if case == "foreign_folder":
        assert (out / "notes.txt").read_text() == "keep me"
    if case == "exists_h5":
        assert out.read_bytes() == b"old"


def test_a_failed_export_leaves_the_old_output(
    demos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "export"
    export_lerobot(demos, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def fail(*args, **kwargs):
        raise InvalidInputError("injected failure")

    monkeypatch.setattr(lerobot_module, "_failure_row", fail)
    with pytest.raises(InvalidInputError, match="injected"):
        export_lerobot(demos, out, overwrite=True)
    with pytest.raises(InvalidInputError, match="injected"):
        export_lerobot(demos, tmp_path / "new")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


@pytest.mark.skipif(importlib.util.find_spec("lerobot") is None, reason="lerobot not installed")
def test_lerobot_loads_the_export(exported) -> None:
    """LeRobot's own loader reads the export: frames, images pixel for pixel, task strings,
    phases as subtasks, action chunks through delta_timestamps."""
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    source, out = exported
    loaded = LeRobotDataset(repo_id=f"local/{out.name}", root=out)
    with open_dataset(source) as dataset:
        episodes, info = list(dataset), dataset.info
    assert len(loaded) == sum(e.length for e in episodes)
    assert loaded.num_episodes == len(episodes) and loaded.fps == 10
    last = episodes[-1]
    item = loaded[len(loaded) - 1]
    assert item["task"] == TASK
    assert item["subtask"] == info.phase_names[last.phases[-1]]
    np.testing.assert_array_equal(item["observation.state"].numpy(), last.obs["state"][-1])
    np.testing.assert_array_equal(item["action"].numpy(), last.actions[-1])
    if "image" in last.obs:
        pixels = (item["observation.images.front"] * 255).round().to(torch.uint8)
        np.testing.assert_array_equal(pixels.permute(1, 2, 0).numpy(), last.obs["image"][-1])
    chunks = LeRobotDataset(
        repo_id=f"local/{out.name}", root=out, delta_timestamps={"action": [0.0, 0.1, 0.2]}
    )
    window = chunks[episodes[0].length - 2]
    np.testing.assert_array_equal(window["action"][:2].numpy(), episodes[0].actions[-2:])
    assert window["action_is_pad"].tolist() == [False, False, True]
    np.testing.assert_allclose(
        loaded.meta.stats["action"]["mean"],
        np.concatenate([e.actions for e in episodes]).astype(np.float64).mean(0),
    )
