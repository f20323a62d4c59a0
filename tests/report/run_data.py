"""A small but complete pipeline run folder, built cheaply from the PointReach test data.

Real where it counts for the report: monitored rollouts of a numpy chunk policy, failures that
really fail, a calibration artifact made by ``calibrate`` (settings cut down to keep it quick),
``metrics.json`` from ``evaluate``, a boundary plot from discover's own model and plot. The
closed-loop result and the stage timings are made-up numbers in the verbs' formats. The test
failures carry camera-like images (the point and the goal drawn) so they can be rendered.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from robofail.data import ShardedWriter
from robofail.data.episode import DatasetInfo
from robofail.failgen.discover import Box, RiskModel, plot_boundary
from robofail.monitor.calibrate import CalibrationSettings, calibrate
from robofail.monitor.episodes import load_episodes
from robofail.monitor.evaluate import evaluate
from robofail.policy.rollout import rollout_info
from tests.monitor.reach_data import ReachChunkPolicy, make_env, record

FAMILIES = (("goal_shift", "unreachable_goal"), ("goal_jump", "timeout"))
SETTINGS = CalibrationSettings(
    alpha=0.2, training_steps=50, methods=("robofail", "fiper_and", "rnd", "ace"),
    windows=(1, 2), styles=("constant",), ace_weights=(0.0, 1.0, float("inf")),
    ace_cell_fractions=(0.03,), ace_cumulative=(True,), alpha_levels=(1.0,),
)  # fmt: skip


def _info(seed: int, *, images: bool = False) -> DatasetInfo:
    info = rollout_info(make_env(), ReachChunkPolicy(), task="point_reach", seed=seed)
    if not images:
        return info
    return dataclasses.replace(info, obs_names={**info.obs_names, "image": []})


def _labelled_failures(scratch: Path, n: int, seed: int) -> list:
    """Failing rollouts labelled as two perturbation families with their own failure types."""
    episodes = record(scratch, n, seed=seed, failing=True)
    labelled = []
    for i, episode in enumerate(episodes):
        kind, failure_type = FAMILIES[i % len(FAMILIES)]
        label = dataclasses.replace(
            episode.label,
            failure_type=failure_type,
            perturbation={"kind": kind, "distance": 2.5},
            onset_step=0,
            failure_step=episode.length - 3,
        )
        labelled.append(dataclasses.replace(episode, label=label))
    return labelled


def _with_images(episode, size: int = 48):
    """The episode with obs/image frames: the point (white) and the goal (red) on grey."""
    frames = np.full((episode.length, size, size, 3), 60, dtype=np.uint8)
    for t, state in enumerate(episode.obs["state"]):
        for (x, y), color in (((state[2], state[3]), (220, 40, 40)), ((state[0], state[1]), 255)):
            col = int(np.clip((x + 3) / 6 * size, 1, size - 2))
            row = int(np.clip((3 - y) / 6 * size, 1, size - 2))
            frames[t, row - 1 : row + 2, col - 1 : col + 2] = color
    return dataclasses.replace(episode, obs={**episode.obs, "image": frames})


def _shards(folder: Path, episodes: list, info: DatasetInfo) -> None:
    with ShardedWriter(folder, info, shard_size=8) as writer:
        for index, episode in enumerate(episodes):
            writer.add(index, episode)


def _discover(folder: Path) -> None:
    """discover's outputs for a made-up two-parameter search, through its own model and plot."""
    folder.mkdir()
    box = Box("goal_shift", ("distance", "angle"), np.array([0.0, -1.0]), np.array([3.0, 1.0]),
              np.array([False, False]))  # fmt: skip
    rng = np.random.default_rng(0)
    values = box.from_unit(rng.uniform(size=(60, 2)))
    failed = rng.uniform(size=60) < 1 / (1 + np.exp(-3 * (values[:, 0] - 1.5)))
    model = RiskModel.fit(box, values, failed)
    phases = ["initial"] * 30 + ["boundary"] * 30
    plot_boundary(model, values, failed, phases, folder / "boundary.png")
    (folder / "model.json").write_text(json.dumps(model.to_json()))
    influence = dict(zip(box.names, model.influence().tolist(), strict=True))
    report = {"kind": "goal_shift", "params": list(box.names), "n": 60,
              "failures": int(failed.sum()), "failure_rate": float(failed.mean()),
              "heldout_auc": 0.9, "influence": influence}  # fmt: skip
    (folder / "report.json").write_text(json.dumps(report))


def _closed_loop() -> dict:
    def arm(rate: float, slip: float) -> dict:
        return {"success_rate": rate, "mean_time_to_success": 4.2, "n": 20,
                "by_family": {"init_pose": {"success_rate": rate, "n": 10},
                              "slip": {"success_rate": slip, "n": 10}}}  # fmt: skip

    return {
        "arms": {"base": arm(0.5, 0.3), "abort_retry": arm(0.6, 0.4), "recovery": arm(0.8, 0.7)}
    }


def build_run(run: Path) -> Path:
    """Fill ``run`` with every file the report reads; returns ``run``."""
    scratch = run.parent / f"{run.name}_scratch"
    scratch.mkdir()
    run.mkdir()
    record(run / "rollouts.h5", 60, seed=0)
    _shards(run / "val_failures", _labelled_failures(scratch / "val.h5", 10, 7000), _info(7000))
    test_failures = [_with_images(e) for e in _labelled_failures(scratch / "t.h5", 8, 9000)]
    _shards(run / "test_failures", test_failures, _info(9000, images=True))
    record(run / "test_rollouts.h5", 12, seed=500)
    rollouts, extra = load_episodes([str(run / "rollouts.h5")])
    failures, _ = load_episodes([f"{run / 'val_failures'}:failure"])
    fingerprint = extra["policy_fingerprint"]
    calibrate(rollouts, run / "calib", position_dims=[0, 1], policy_fingerprint=fingerprint,
              validation_failures=failures, settings=SETTINGS, task="point_reach")  # fmt: skip
    tests, _ = load_episodes([str(run / "test_rollouts.h5"), f"{run / 'test_failures'}:failure"])
    metrics = evaluate(run / "calib", tests, policy_fingerprint=fingerprint).result
    (run / "metrics.json").write_text(json.dumps(metrics))
    _discover(run / "discover")
    (run / "closed_loop.json").write_text(json.dumps(_closed_loop()))
    (run / "policy").mkdir()
    (run / "policy" / "config.json").write_text(json.dumps({"fingerprint": fingerprint}))
    stages = {"rollout": 12.5, "calibrate": 40.0, "evaluate": 3.0, "discover": 20.0}
    timings = {name: {"seconds": seconds, "finished": True} for name, seconds in stages.items()}
    record_json = {"task": "point_reach", "seed": 0, "stages": timings}
    (run / "run.json").write_text(json.dumps(record_json))
    return run
