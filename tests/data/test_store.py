"""Tests of the episode records and their HDF5 store, on real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from robofail.data import (
    DatasetInfo,
    Episode,
    EpisodeLabel,
    ShardedWriter,
    open_dataset,
    read_episodes,
    write_episodes,
)
from robofail.errors import CorruptFileError, InvalidInputError, OutputPathError, UnknownNameError

STATE_NAMES = ["x", "y", "z"]
INFO = DatasetInfo(
    task="pick_place",
    env_id="robofail/PickPlace-v0",
    obs_names={"state": STATE_NAMES, "image": []},
    action_names=["dx", "dy", "grip"],
    phase_names=["reach", "grasp", "place"],
    control_hz=20.0,
    extra={"env_kwargs": {"render": True}},
)


def make_episode(
    seed: int = 0,
    *,
    steps: int = 6,
    success: bool = True,
    failure_type: str = "none",
    perturbation: dict | None = None,
) -> Episode:
    """A random but valid episode of ``steps`` steps whose arrays depend on ``seed``."""
    rng = np.random.default_rng(seed)
    return Episode(
        obs={
            "state": rng.normal(size=(steps, 3)).astype(np.float32),
            "image": rng.integers(0, 256, size=(steps, 8, 8, 3), dtype=np.uint8),
        },
        actions=rng.uniform(-1, 1, size=(steps, 3)).astype(np.float32),
        rewards=rng.normal(size=steps).astype(np.float32),
        dones=np.arange(steps) == steps - 1,
        states=rng.normal(size=(steps, 7)),
        phases=np.minimum(np.arange(steps) // 2, 2).astype(np.int8),
        final_state=rng.normal(size=7),
        label=EpisodeLabel(
            success=success,
            seed=seed,
            failure_type=failure_type,
            perturbation=perturbation or {},
            onset_step=1 if perturbation else -1,
            failure_step=-1 if success else steps - 1,
            source=f"demo_{seed}",
            phase_at_onset="reach" if perturbation else "",
        ),
        extras={
            "embeddings": rng.normal(size=(2, 4)).astype(np.float32),
            "sampled_chunks": rng.normal(size=(2, 5, 4, 3)).astype(np.float32),
        },
    )


def mixed_episodes() -> list[Episode]:
    return [
        make_episode(0),
        make_episode(1, success=False, failure_type="grasp_miss", perturbation={"kind": "slip"}),
        make_episode(2, steps=3, success=False, failure_type="drop", perturbation={"kind": "push"}),
        make_episode(3, perturbation={"kind": "push", "force": [1.0, 0.5]}),
    ]


def assert_same_episode(got: Episode, want: Episode) -> None:
    """Bit-identical arrays with identical dtypes, equal labels."""
    pairs = [(got.obs, want.obs), (got.extras, want.extras)]
    for got_dict, want_dict in pairs:
        assert got_dict.keys() == want_dict.keys()
        for key in want_dict:
            assert_identical(got_dict[key], want_dict[key])
    for name in ("actions", "rewards", "dones", "states", "phases", "final_state"):
        assert_identical(getattr(got, name), getattr(want, name))
    assert got.label == want.label


def assert_identical(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_round_trip_single_file(tmp_path: Path) -> None:
    episodes = mixed_episodes()
    path = write_episodes(tmp_path / "sub" / "eps.h5", episodes, INFO)
    assert path == tmp_path / "sub" / "eps.h5"
    with open_dataset(path) as dataset:
        assert dataset.info == INFO
        assert len(dataset) == 4
        for got, want in zip(dataset, episodes, strict=True):
            assert_same_episode(got, want)
        assert_same_episode(dataset[-1], episodes[-1])
        assert dataset.labels() == [e.label for e in episodes]
        assert dataset.episode_names() == ["demo_0", "demo_1", "demo_2", "demo_3"]
        assert dataset.mask("success") == [0, 3]
        assert dataset.mask("failure") == [1, 2]
        assert dataset.mask("grasp_miss") == [1]
        assert dataset.mask("perturbation_push") == [2, 3]
        with pytest.raises(UnknownNameError, match="perturbation_slip"):
            dataset.mask("nope")
    assert len(read_episodes(path)) == 4
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]


def test_layout_is_readable_with_plain_h5py(tmp_path: Path) -> None:
    episodes = mixed_episodes()
    path = write_episodes(tmp_path / "eps.h5", episodes, INFO)
    with h5py.File(path, "r") as f:
        data = f["data"]
        assert data.attrs["total"] == sum(e.length for e in episodes)
        assert json.loads(data.attrs["env_args"]) == INFO.to_json()
        assert data.attrs["robofail_schema"] == 1
        assert isinstance(data.attrs["robofail_version"], str)
        demo = data["demo_1"]
        assert demo.attrs["num_samples"] == 6
        assert json.loads(demo.attrs["label"]) == episodes[1].label.to_json()
        assert not demo.attrs["success"] and demo.attrs["failure_type"] == "grasp_miss"
        assert json.loads(demo.attrs["perturbation"]) == {"kind": "slip"}
        assert demo.attrs["seed"] == 1 and demo.attrs["onset_step"] == 1
        assert demo.attrs["source"] == "demo_1" and demo.attrs["phase_at_onset"] == "reach"
        assert demo["obs/image"].compression == "gzip"
        assert demo["obs/image"].compression_opts == 4
        assert demo["obs/state"].compression is None
        assert demo["actions"].shape == (6, 3) and demo["states"].dtype == np.float64
        assert demo["extras/sampled_chunks"].shape == (2, 5, 4, 3)
        masks = {name: sorted(f["mask"][name][()].tolist()) for name in f["mask"]}
    assert masks == {
        "success": [b"demo_0", b"demo_3"],
        "failure": [b"demo_1", b"demo_2"],
        "grasp_miss": [b"demo_1"],
        "drop": [b"demo_2"],
        "perturbation_slip": [b"demo_1"],
        "perturbation_push": [b"demo_2", b"demo_3"],
    }


def test_failed_write_leaves_the_old_file_untouched(tmp_path: Path) -> None:
    path = write_episodes(tmp_path / "eps.h5", [make_episode(0)], INFO)
    before = path.read_bytes()

    def episodes_then_crash():
        yield make_episode(1)
        raise RuntimeError("simulator crashed")

    with pytest.raises(RuntimeError, match="simulator crashed"):
        write_episodes(path, episodes_then_crash(), INFO)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_write_refuses_episodes_that_do_not_fit_the_info(tmp_path: Path) -> None:
    wrong = DatasetInfo(**{**INFO.to_json(), "action_names": ["dx", "dy"]})
    with pytest.raises(InvalidInputError, match="episode 0: actions have 3 dims"):
        write_episodes(tmp_path / "eps.h5", [make_episode(0)], wrong)
    with pytest.raises(InvalidInputError, match="expected an Episode"):
        write_episodes(tmp_path / "eps.h5", ["not an episode"], INFO)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", ["file/eps.h5", "folder"])
def test_unwritable_path_gives_output_path_error(tmp_path: Path, target: str) -> None:
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "folder").mkdir()
    before = sorted(tmp_path.rglob("*"))
    reason = "file is a file, not a folder" if target == "file/eps.h5" else "is a folder"
    with pytest.raises(OutputPathError, match=re.escape(f"{tmp_path / target}: ")) as error:
        write_episodes(tmp_path / target, [make_episode(0)], INFO)
    assert reason in str(error.value)
    with pytest.raises(OutputPathError):
        ShardedWriter(tmp_path / "file" / "shards", INFO)
    assert sorted(tmp_path.rglob("*")) == before


def test_sharded_writer_writes_shards_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    episodes = [*mixed_episodes(), make_episode(4)]
    with ShardedWriter(out, INFO, shard_size=2) as writer:
        for index, episode in enumerate(episodes):
            writer.add(index, episode)
        assert writer.completed_indices() == {0, 1, 2, 3}
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.json", "shard_00000.h5", "shard_00001.h5", "shard_00002.h5"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["robofail_schema"] == 1
    assert DatasetInfo.from_json(manifest["info"]) == INFO
    assert [s["indices"] for s in manifest["shards"]] == [[0, 1], [2, 3], [4]]
    assert [s["episodes"] for s in manifest["shards"]] == [2, 2, 1]
    for shard in manifest["shards"]:
        content = (out / shard["file"]).read_bytes()
        assert shard["sha256"] == hashlib.sha256(content).hexdigest()
    with open_dataset(out) as dataset:
        assert dataset.info == INFO
        for got, want in zip(dataset, episodes, strict=True):
            assert_same_episode(got, want)
        assert dataset.mask("perturbation_push") == [2, 3]
        assert dataset.mask("success") == [0, 3, 4]


def test_resume_after_a_kill_loses_only_buffered_episodes(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    killed = ShardedWriter(out, INFO, shard_size=2)
    for index in range(3):
        killed.add(index, make_episode(index))
    del killed  # killed: episode 2 was only buffered
    assert [e.label.seed for e in read_episodes(out)] == [0, 1]

    with ShardedWriter(out, INFO, shard_size=2) as writer:
        assert writer.completed_indices() == {0, 1}
        with pytest.raises(InvalidInputError, match="completed_indices"):
            writer.add(1, make_episode(1))
        writer.add(2, make_episode(2))
    with ShardedWriter(out, INFO, shard_size=2) as writer:
        assert writer.completed_indices() == {0, 1, 2}
        for index in (3, 4):
            writer.add(index, make_episode(index))
    assert [e.label.seed for e in read_episodes(out)] == [0, 1, 2, 3, 4]


def test_reading_follows_global_index_when_added_out_of_order(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    with ShardedWriter(out, INFO, shard_size=2) as writer:
        for index in (3, 0, 4, 1, 2):
            writer.add(index, make_episode(index))
    with open_dataset(out) as dataset:
        assert dataset.episode_names() == [f"demo_{i}" for i in range(5)]
        assert [label.seed for label in dataset.labels()] == [0, 1, 2, 3, 4]
        assert_same_episode(dataset[2], make_episode(2))


def test_context_manager_writes_buffered_episodes_on_exception(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    with pytest.raises(RuntimeError), ShardedWriter(out, INFO, shard_size=10) as writer:
        writer.add(0, make_episode(0))
        raise RuntimeError("worker died")
    assert [e.label.seed for e in read_episodes(out)] == [0]


def test_sharded_writer_refuses_another_task(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    ShardedWriter(out, INFO).close()
    other = DatasetInfo(**{**INFO.to_json(), "task": "stack"})
    with pytest.raises(InvalidInputError, match=r"'pick_place'.*'task'"):
        ShardedWriter(out, other)


def test_unlisted_shards_are_ignored_and_missing_ones_reported(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    with ShardedWriter(out, INFO, shard_size=1) as writer:
        writer.add(0, make_episode(0))
        writer.add(1, make_episode(1))
    write_episodes(out / "shard_00007.h5", [make_episode(7)], INFO)
    assert len(read_episodes(out)) == 2
    (out / "shard_00001.h5").unlink()
    with pytest.raises(CorruptFileError, match=r"shard_00001\.h5 listed in .* is missing"):
        open_dataset(out)


def test_missing_path_gives_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        open_dataset(tmp_path / "nothing.h5")
    with pytest.raises(InvalidInputError, match=r"manifest\.json"):
        open_dataset(tmp_path)


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def wrong_layout(path: Path) -> None:
    path.unlink()
    with h5py.File(path, "w") as f:
        f.create_dataset("something", data=np.zeros(3))


def unknown_schema(path: Path) -> None:
    with h5py.File(path, "a") as f:
        f["data"].attrs["robofail_schema"] = 99


@pytest.mark.parametrize("damage", [truncate, random_bytes, wrong_layout, unknown_schema])
def test_damaged_file_gives_corrupt_file_error_naming_it(tmp_path: Path, damage) -> None:
    path = write_episodes(tmp_path / "eps.h5", mixed_episodes(), INFO)
    damage(path)
    with pytest.raises(
        CorruptFileError, match=rf"{re.escape(str(path))}: cannot read .*record it again"
    ):
        read_episodes(path)


def drop_actions(f: h5py.File) -> None:
    del f["data/demo_1/actions"]


def bad_label_json(f: h5py.File) -> None:
    f["data/demo_1"].attrs["label"] = "{not json"


def nan_state(f: h5py.File) -> None:
    f["data/demo_1/states"][2, 0] = np.nan


@pytest.mark.parametrize("damage", [drop_actions, bad_label_json, nan_state])
def test_damaged_demo_gives_corrupt_file_error_naming_it(tmp_path: Path, damage) -> None:
    path = write_episodes(tmp_path / "eps.h5", mixed_episodes(), INFO)
    with h5py.File(path, "a") as f:
        damage(f)
    with open_dataset(path) as dataset:
        assert_same_episode(dataset[0], mixed_episodes()[0])
        with pytest.raises(CorruptFileError, match=rf"{re.escape(str(path))}: cannot read demo_1"):
            dataset[1]


def test_corrupt_manifest_gives_corrupt_file_error(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    ShardedWriter(out, INFO).close()
    (out / "manifest.json").write_text("{")
    with pytest.raises(CorruptFileError, match=r"manifest\.json"):
        open_dataset(out)
    with pytest.raises(CorruptFileError, match=r"manifest\.json"):
        ShardedWriter(out, INFO)


def episode_fields(**changes) -> dict:
    episode = make_episode(0)
    fields = {name: getattr(episode, name) for name in episode.__dataclass_fields__}
    return {**fields, **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rewards": np.zeros(5, np.float32)}, r"rewards: expected \(T,\) float32 with T=6"),
        ({"actions": np.zeros((0, 3), np.float32)}, "T >= 1"),
        ({"obs": {"state": np.zeros((5, 3), np.float32)}}, r"obs\['state'\].*T=6"),
        ({"actions": np.full((6, 3), 0.1)}, "actions.*float64.*without loss"),
        ({"actions": np.full((6, 3), "a")}, r"actions: expected \(T, A\) float32"),
        ({"states": np.full((6, 7), np.nan)}, r"states.*NaN or inf \(first at index \(0, 0\)\)"),
        ({"phases": np.full(6, 300)}, "phases.*int64.*int8"),
        ({"final_state": np.zeros(6)}, r"final_state: expected shape \(7,\)"),
        ({"obs": {"image": np.zeros((6, 8, 8, 4), np.uint8)}}, r"image.*\(T, H, W, 3\)"),
        ({"extras": {"a/b": np.zeros(2)}}, "extras key"),
        ({"label": EpisodeLabel(success=False, seed=0, onset_step=6)}, "out of range"),
    ],
)
def test_episode_validation(changes: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Episode(**episode_fields(**changes))


def test_episode_casts_when_lossless() -> None:
    episode = Episode(
        **episode_fields(
            actions=np.zeros((6, 3)), dones=np.zeros(6, dtype=int), phases=np.arange(6) % 3
        )
    )
    assert episode.actions.dtype == np.float32
    assert episode.dones.dtype == np.bool_ and episode.phases.dtype == np.int8
    assert episode.length == 6


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"success": True, "failure_type": "drop"}, "success=True with failure_type"),
        ({"success": False, "failure_type": "failure"}, "clashes with a filter name"),
        ({"success": False, "perturbation": {"force": 1}}, "kind"),
        ({"success": False, "perturbation": {"kind": "x", "p": np.float32(1)}}, "JSON"),
        ({"success": 1}, "expected a bool"),
        ({"success": True, "onset_step": -2}, "-1 for none"),
    ],
)
def test_label_validation(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        EpisodeLabel(**{"seed": 0, **fields})


def test_label_and_info_json_round_trip() -> None:
    label = mixed_episodes()[3].label
    assert EpisodeLabel.from_json(json.loads(json.dumps(label.to_json()))) == label
    assert DatasetInfo.from_json(json.loads(json.dumps(INFO.to_json()))) == INFO
    with pytest.raises(InvalidInputError, match="unknown keys"):
        EpisodeLabel.from_json({**label.to_json(), "bogus": 1})


def test_records_import_without_h5py() -> None:
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "from robofail.data import Episode, EpisodeLabel\n"
        "assert 'robofail.data.store' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
