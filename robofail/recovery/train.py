"""Train a recovery policy on recovery data, save it (safetensors + JSON), export it to ONNX.

A saved recovery policy is a folder: ``config.json`` (kind, schema, :class:`RecoveryConfig`,
fingerprint, training record) and ``model.safetensors``. ``robofail export --recovery DIR`` turns
it into the one self-contained ONNX file the robot runs (:mod:`robofail.recovery.runtime`), after
checking that onnxruntime and torch agree on real states.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from robofail.data import open_dataset
from robofail.errors import CorruptFileError, InvalidInputError, OutputPathError
from robofail.folders import check_replaceable_folder
from robofail.monitor.episodes import check_distinct_datasets
from robofail.recovery.data import EXPERTS
from robofail.recovery.model import (
    RecoveryConfig,
    build_network,
    chunk_targets,
    export_onnx,
    fingerprint,
    input_shape,
    state_windows,
    train_recovery,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
KIND = "robofail_recovery_model"
SCHEMA_VERSION = 1
PARITY_TOLERANCE = 1e-5
"""Largest |torch - onnxruntime| difference (action units) an export accepts."""


def recovery_pairs(
    data: str | Path | Sequence[str | Path],
    horizon: int,
    position_dims: list[int],
    obs_horizon: int = 1,
) -> tuple[np.ndarray, np.ndarray, list[str], Any]:
    """Training pairs from recovery datasets: what the controller saw at every step of every
    recovery by the data's teacher -> its next ``horizon`` actions (the other expert's rescues,
    ``extras["expert"]``, are skipped: see :mod:`robofail.recovery.data`).

    Args:
        data: one recovery dataset or several (e.g. expert recoveries and DAgger rounds) of the
            same task and state layout.
        obs_horizon: states per input K; for K > 1 each step's input is the window of its last
            K states, continued before an episode's start by the observations that preceded it
            (``extras["history"]``; data written before it existed repeat the first state).

    Returns:
        states (N, S) or windows (N, K, S) float32, chunks (N, H, A) float32, the failure type of
        each pair's source (N names), and the first dataset's :class:`~robofail.data.DatasetInfo`.
    """
    paths = [data] if isinstance(data, str | Path) else list(data)
    if not paths:
        raise InvalidInputError("no recovery data given")
    states, chunks, types, first = [], [], [], None
    for path in paths:
        with open_dataset(path) as dataset:
            info = dataset.info
            if info.extra.get("kind") != "recovery":
                raise InvalidInputError(
                    f"{path} is not recovery data (make it with `robofail recovery-data`)"
                )
            if first is None:
                first = info
            elif (info.task, info.obs_names["state"]) != (first.task, first.obs_names["state"]):
                raise InvalidInputError(
                    f"{path} holds {info.task!r} recovery data with another state layout than "
                    f"{paths[0]}; train on data of one task and setup"
                )
            names = info.extra["failure_types"]
            experts = info.extra.get("experts", list(EXPERTS))
            teacher = experts.index(info.extra.get("teacher", EXPERTS[0]))
            for episode in dataset:
                if int(episode.extras.get("expert", teacher)) != teacher:
                    continue  # the other expert's rescues only measure recoverability
                seen = episode.obs["state"]
                if obs_horizon > 1:
                    seen = state_windows(seen, episode.extras.get("history"), obs_horizon)
                states.append(seen)
                chunks.append(chunk_targets(episode.actions, horizon, position_dims))
                types += [names[int(episode.extras["failure_type"])]] * episode.length
    if not states:
        raise InvalidInputError(f"{', '.join(map(str, paths))}: no recovery episodes to train on")
    return (
        np.concatenate(states).astype(np.float32),
        np.concatenate(chunks).astype(np.float32),
        types,
        first,
    )


def train_recovery_policy(
    data: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    task: str | None = None,
    horizon: int = 8,
    exec_horizon: int = 2,
    obs_horizon: int = 8,
    window_summary: bool | None = None,
    condition_on_failure: bool = False,
    hidden: int = 256,
    layers: int = 3,
    steps: int = 6000,
    seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Train a recovery policy on the recovery dataset(s) ``data`` and save it to ``out``.

    Args:
        data: one recovery dataset or several (expert recoveries, DAgger rounds).
        task: expected task (checked against the data).
        horizon, exec_horizon: chunk length H, and actions executed per inference.
        obs_horizon: states the policy looks at (K: the newest and the K - 1 before it; 8, the
            setting that lifted push's sensing-fault recoveries from +9 to +17 points on
            validation, see ``benchmarks/bench_closed_loop.py``).
        window_summary: with K > 1, feed the network the window's mean and newest state
            (:attr:`~robofail.recovery.model.RecoveryConfig.window_summary`); None (default):
            on exactly when K > 1.
        condition_on_failure: add a one-hot failure type input (the supervisor must then be told
            the type; unknown is all zeros).
        hidden, layers: MLP size.
        steps: optimiser steps (batch 256).
        overwrite: replace a saved policy at ``out``.

    Returns:
        The ``config.json`` record.
    """
    from robofail.tasks import get_task

    if not 1 <= exec_horizon <= horizon:
        raise InvalidInputError(f"need 1 <= exec_horizon <= horizon, got {exec_horizon}/{horizon}")
    if obs_horizon < 1:
        raise InvalidInputError(f"obs_horizon must be >= 1, got {obs_horizon}")
    if window_summary and obs_horizon == 1:
        raise InvalidInputError(
            "a window summary needs a window: pass --obs-horizon > 1 with --window-summary"
        )
    if window_summary is None:
        window_summary = obs_horizon > 1
    paths = [data] if isinstance(data, str | Path) else list(data)
    check_distinct_datasets([(Path(path), None) for path in paths])
    out = Path(out)
    check_replaceable_folder(
        out,
        "--out",
        "recovery policy",
        CONFIG_FILE,
        KIND,
        (CONFIG_FILE, WEIGHTS_FILE).__contains__,
        overwrite=overwrite,
    )
    for path in paths:
        with open_dataset(path) as dataset:
            info = dataset.info
        if task is not None and get_task(task).name != info.task:
            raise InvalidInputError(
                f"{path} holds recovery data of task {info.task!r}, not {task!r}"
            )
    env_type = get_task(info.task).env_type()
    longest = env_type.max_episode_steps
    for name, value in (("horizon", horizon), ("obs_horizon", obs_horizon)):
        if value > longest:
            raise InvalidInputError(
                f"{name} {value} is longer than a {info.task} episode ({longest} steps); give at "
                f"most {longest}"
            )
    position_dims = list(env_type.position_action_dims)
    states, chunks, types, info = recovery_pairs(paths, horizon, position_dims, obs_horizon)
    n_actions = len(info.action_names)  # the bundled tasks' actions lie in [-1, 1]
    config = RecoveryConfig(
        task=info.task,
        state_names=info.obs_names["state"],
        action_names=info.action_names,
        action_low=[-1.0] * n_actions,
        action_high=[1.0] * n_actions,
        failure_types=sorted({*info.extra["failure_types"], *types})
        if condition_on_failure
        else [],
        horizon=horizon,
        exec_horizon=exec_horizon,
        hidden=hidden,
        layers=layers,
        obs_horizon=obs_horizon,
        window_summary=window_summary,
    )
    start = time.perf_counter()
    net, loss = train_recovery(
        states,
        chunks,
        config,
        failure_types=types if condition_on_failure else None,
        steps=steps,
        seed=seed,
    )
    record = {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "config": asdict(config),
        "fingerprint": fingerprint(net),
        "training": {
            "data": [str(path) for path in paths],
            "pairs": len(states),
            "steps": steps,
            "seed": seed,
            "final_loss": loss,
            "seconds": time.perf_counter() - start,
        },
    }
    _save(net, record, out)
    return record


def _save(net, record: dict, out: Path) -> None:
    """Write the folder aside, then swap it into place (a kill leaves the old one or the new)."""
    from safetensors.torch import save_file

    from robofail.folders import staged_folder

    with staged_folder(out) as staging:
        weights = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
        save_file(weights, str(staging / WEIGHTS_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(record, indent=1))


def load_recovery_model(folder: str | Path):
    """(torch network in eval mode, :class:`RecoveryConfig`, record) of a saved recovery policy.

    Raises:
        InvalidInputError: not a saved recovery policy folder.
        CorruptFileError: unreadable config or weights, or weights that do not fit the config.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InvalidInputError(
                f"{path} not found: {folder} is not a saved recovery policy (train one with "
                "`robofail train-recovery`)"
            )
    try:
        record = json.loads(config_path.read_text())
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        if record.get("kind") == "flow_chunk_policy":
            raise InvalidInputError(
                f"{folder} is a base policy (train-policy), not a recovery policy: pass the "
                "folder `robofail train-recovery` wrote"
            )
        if record.get("kind") != KIND:
            raise KeyError("kind")
        config = RecoveryConfig(**record["config"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"{config_path}: not a recovery policy config ({exc})") from None
    if record.get("schema_version") != SCHEMA_VERSION:
        raise CorruptFileError(
            f"{config_path}: schema {record.get('schema_version')}, this robofail reads "
            f"{SCHEMA_VERSION}; train it again"
        )
    try:
        weights = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types
        raise CorruptFileError(f"{weights_path}: not a safetensors file ({exc})") from None
    n = len(config.state_names)
    net = build_network(config, np.zeros(n), np.ones(n), seed=0)
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise CorruptFileError(f"{weights_path}: weights do not fit {config_path}") from exc
    if fingerprint(net) != record.get("fingerprint"):
        raise CorruptFileError(f"{folder}: the weights' fingerprint differs from {CONFIG_FILE}")
    return net.eval(), config, record


def export_recovery(folder: str | Path, out: str | Path, *, parity_states: int = 256) -> dict:
    """Export a saved recovery policy to one ONNX file, after a parity check.

    The check runs torch and onnxruntime on ``parity_states`` states drawn around the training
    states' mean and spread (seeded) and refuses the export when they differ by more than
    :data:`PARITY_TOLERANCE`.

    Returns:
        ``{"out", "max_abs_diff", "fingerprint", "bytes"}``.
    """
    import onnx
    import torch

    from robofail.ort import load_session

    net, config, record = load_recovery_model(folder)
    model = export_onnx(net, config)
    onnx.checker.check_model(model, full_check=True)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, tmp)
        rng = np.random.default_rng(0)
        mean, std = net.state_mean.numpy(), net.state_std.numpy()
        shape = (parity_states, *input_shape(config))
        states = (mean + std * rng.standard_normal(shape)).astype(np.float32)
        inputs = {"state": states}
        failure = None
        if config.failure_types:
            failure = np.eye(len(config.failure_types), dtype=np.float32)[
                rng.integers(len(config.failure_types), size=parity_states)
            ]
            inputs["failure"] = failure
        session = load_session(tmp)
        (onnx_chunks,) = session.run(None, inputs)
        with torch.no_grad():
            torch_chunks = net(
                torch.as_tensor(states), None if failure is None else torch.as_tensor(failure)
            ).numpy()
        diff = float(np.abs(onnx_chunks - torch_chunks).max())
        if not diff <= PARITY_TOLERANCE:
            raise CorruptFileError(
                f"export of {folder} refused: onnxruntime and torch differ by {diff:.2e} "
                f"(> {PARITY_TOLERANCE:.0e})"
            )
        tmp.replace(out)
    except OSError as exc:
        raise OutputPathError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "out": str(out),
        "max_abs_diff": diff,
        "fingerprint": record["fingerprint"],
        "bytes": out.stat().st_size,
    }
