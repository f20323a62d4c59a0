"""Property tests (hypothesis) of the parts that take outside input: the streaming monitor, the
conformal quantile, spec parsing and the dataset readers. Example counts are kept small so the
file runs in well under 30 s; dig deeper with e.g. ``ROBOFAIL_FUZZ_EXAMPLES=2000``."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks.bad_inputs import A, B, D, Fixtures, H, synthetic_episodes, synthetic_info
from robofail.errors import CorruptFileError, InvalidInputError, RobofailError

EXAMPLES = int(os.environ.get("ROBOFAIL_FUZZ_EXAMPLES", "60"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


# --------------------------------------------------------------------------- Monitor.update

any_float = st.floats(width=32, allow_nan=True, allow_infinity=True)
small_float = st.floats(-1.0, 1.0, width=32)
dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_])


def arrays(shape: Any, elements: st.SearchStrategy = any_float) -> st.SearchStrategy:
    return hnp.arrays(np.float32, shape, elements=elements)


embeddings = st.one_of(
    arrays(D),  # right shape, any float32 including NaN, inf and huge values
    arrays(D, small_float),
    hnp.arrays(dtypes, st.sampled_from([(D,), (D + 1,), (1, D), ()])),
)
chunks = st.one_of(
    arrays((B, H, A)),
    arrays((B, H, A), small_float),
    arrays(st.tuples(st.integers(0, 5), st.just(H), st.just(A)), small_float),
    hnp.arrays(dtypes, st.sampled_from([(B, H, A), (B, H, A + 1), (H, A), (B, H + 1, A)])),
)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # float64 1e300
@FAST
@given(inputs=st.lists(st.tuples(embeddings, chunks), min_size=1, max_size=8))
def test_monitor_update_gives_a_finite_verdict_or_invalid_input(
    sweep_files: Fixtures, inputs: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    from robofail.monitor.runtime import Verdict

    monitor = sweep_files.monitor()
    step = 0
    for embedding, chunk in inputs:
        try:
            verdict = monitor.update(embedding, chunk)
        except InvalidInputError:
            continue
        assert isinstance(verdict, Verdict) and verdict.step == step
        for values in (verdict.scores, verdict.windowed, verdict.ratios):
            assert set(values) == set(monitor.rule.scores)
            assert all(math.isfinite(v) for v in values.values()), verdict
        assert verdict.alarm == (
            bool(verdict.fired)
            if monitor.rule.combine == "any"
            else len(verdict.fired) == len(verdict.scores)
        )
        step += 1


valid_inference = st.tuples(arrays(D, st.floats(-3, 3, width=32)), arrays((B, H, A), small_float))


@FAST
@given(
    stream=st.lists(st.tuples(valid_inference, st.booleans()), min_size=1, max_size=12),
    bad=st.sampled_from(["nan", "shape", "dtype", "huge"]),
)
def test_streaming_verdicts_equal_the_offline_trace(
    sweep_files: Fixtures, stream: list[tuple[tuple[np.ndarray, np.ndarray], bool]], bad: str
) -> None:
    """Valid inferences streamed through ``update`` (refused ones interleaved, which must leave
    no trace) give exactly the offline scores, windowed sums and alarms of the same episode."""
    from robofail.monitor.rules import trace
    from robofail.monitor.scores import build_score

    monitor = sweep_files.monitor()
    verdicts = []
    for (embedding, chunk), interleave_bad in stream:
        if interleave_bad:
            wrong = {
                "nan": (np.full(D, np.nan, np.float32), chunk),
                "shape": (embedding, chunk[:, :, :-1]),
                "dtype": (embedding.astype(np.int32), chunk),
                "huge": (embedding, np.full_like(chunk, 3e38)),
            }[bad]
            with pytest.raises(InvalidInputError):
                monitor.update(*wrong)
        verdicts.append(monitor.update(embedding, chunk))
    embeddings = np.stack([e for (e, _), _ in stream])
    sampled = np.stack([c for (_, c), _ in stream])
    raw = {
        name: build_score(monitor.calibration["scores"][name], sweep_files.artifact).episode(
            embeddings, sampled
        )
        for name in monitor.rule.scores
    }
    offline = trace(monitor.rule, raw)
    for k, verdict in enumerate(verdicts):
        assert verdict.step == k
        for j, name in enumerate(monitor.rule.scores):
            assert verdict.scores[name] == raw[name][k]
            assert verdict.windowed[name] == offline.windowed[k, j]
        assert verdict.alarm == bool(offline.alarms[k])


# --------------------------------------------------------------------------- conformal quantile

calibration_values = hnp.arrays(
    np.float64,
    st.integers(1, 300),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
alphas = st.floats(1e-3, 0.999, exclude_min=True, exclude_max=True)


@FAST
@given(values=calibration_values, alpha=alphas, other=alphas)
def test_conformal_threshold_rank_range_and_monotonicity(
    values: np.ndarray, alpha: float, other: float
) -> None:
    from robofail.monitor.conformal import conformal_rank, conformal_threshold

    n = len(values)
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    assert conformal_rank(n, alpha) == k
    if k > n:  # not enough values for this alpha: an error naming how many are needed
        with pytest.raises(InvalidInputError, match="too few"):
            conformal_threshold(values, alpha)
        return
    assert k >= (n + 1) * (1 - alpha) - 1e-6  # the finite-sample correction
    threshold = conformal_threshold(values, alpha)
    assert threshold == np.sort(values)[k - 1]
    assert values.min() <= threshold <= values.max()
    low, high = sorted((alpha, other))
    if conformal_rank(n, low) <= n:  # a smaller alpha gives a threshold at least as high
        assert conformal_threshold(values, low) >= conformal_threshold(values, high)
    with_delta = conformal_rank(n, alpha, 0.1)
    assert with_delta >= k
    if with_delta <= n:
        assert conformal_threshold(values, alpha, 0.1) >= threshold


# --------------------------------------------------------------------------- spec parsing

FIELDS = ("task", "source", "keep", "perturbations", "kind", "weight", "params", "perturbation")
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
param_values = st.one_of(
    json_values,
    st.floats(-100, 100),
    st.lists(st.floats(-100, 100) | st.integers(-100, 100), min_size=2, max_size=2),
)


@st.composite
def spec_entries(draw: st.DrawFn) -> Any:
    from robofail.failgen.perturbation import REGISTRY, perturbation_type

    perturbation_type("slip")  # loads the built-in kinds
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    kind = draw(st.sampled_from(sorted(REGISTRY)) | st.text(max_size=8))
    names = sorted(REGISTRY[kind].params) if kind in REGISTRY else []
    entry: dict[str, Any] = {"kind": kind}
    if draw(st.booleans()):
        entry["weight"] = draw(st.floats() | st.integers(-2, 5) | json_values)
    if draw(st.booleans()):
        keys = st.sampled_from(names) | st.text(max_size=6) if names else st.text(max_size=6)
        entry["params"] = draw(st.dictionaries(keys, param_values, max_size=3))
    if draw(st.integers(0, 9)) == 0:
        entry[draw(st.text(max_size=6))] = draw(json_values)
    return entry


@st.composite
def spec_dicts(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    spec: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        spec["task"] = draw(st.sampled_from(["pick_place", "push"]) | json_values)
    if draw(st.booleans()):
        spec["source"] = draw(st.sampled_from(["expert", "policy"]) | json_values)
    if draw(st.booleans()):
        spec["keep"] = draw(st.sampled_from(["failures", "all"]) | json_values)
    if draw(st.integers(0, 4)) > 0:
        spec["perturbations"] = draw(st.lists(spec_entries(), max_size=3) | json_values)
    if draw(st.integers(0, 9)) == 0:
        spec[draw(st.text(max_size=6))] = draw(json_values)
    return spec


@FAST
@given(data=spec_dicts(), seed=st.integers(0, 2**32 - 1), index=st.integers(0, 10**6))
def test_spec_parses_or_names_the_bad_field(data: Any, seed: int, index: int) -> None:
    from robofail.failgen.spec import FailureSpec, parse_spec

    try:
        spec = parse_spec(data, name="<fuzz>")
    except RobofailError as error:
        assert any(field in str(error) for field in FIELDS), str(error)
        return
    assert isinstance(spec, FailureSpec)
    perturbation = spec.sample(seed, index)  # every valid spec can be drawn from
    if perturbation is not None:
        entry = next(e for e in spec.entries if e.kind == perturbation.kind)
        for name, (low, high) in entry.ranges.items():
            assert low <= perturbation.values[name] <= high


@FAST
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
@example(text="?")  # {None: None}: keys that are not text (a crash found by this test)
@example(text="task: pick_place\n1: x\nperturbations: []\n")
@example(text="task: pick_place\nperturbations:\n- kind: slip\n  params: {1: [0, 1]}\n")
def test_spec_file_of_any_text_loads_or_gives_a_robofail_error(text: str) -> None:
    from robofail.failgen.spec import load_spec

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        with contextlib.suppress(RobofailError):  # any other exception fails the test
            load_spec(path, "pick_place")


# --------------------------------------------------------------------------- store readers


def read_everything(path: Path) -> dict[str, Any]:
    """Everything the reader exposes: info, names, labels, masks and every episode's arrays."""
    from robofail.data import open_dataset

    with open_dataset(path) as dataset:
        episodes = list(dataset)
        return {
            "info": dataset.info.to_json(),
            "names": dataset.episode_names(),
            "labels": [label.to_json() for label in dataset.labels()],
            "masks": {name: dataset.mask(name) for name in dataset.mask_names()},
            "arrays": [
                {
                    **{f"obs/{k}": v for k, v in e.obs.items()},
                    **{f"extras/{k}": v for k, v in e.extras.items()},
                    **{
                        name: getattr(e, name)
                        for name in ("actions", "rewards", "dones", "states", "phases")
                    },
                    "final_state": e.final_state,
                }
                for e in episodes
            ],
        }


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if {k: a[k] for k in ("info", "names", "labels", "masks")} != {
        k: b[k] for k in ("info", "names", "labels", "masks")
    }:
        return False
    return all(
        x.keys() == y.keys()
        and all(
            (x[k].dtype, x[k].shape, x[k].tobytes()) == (y[k].dtype, y[k].shape, y[k].tobytes())
            for k in x
        )
        for x, y in zip(a["arrays"], b["arrays"], strict=True)
    )


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small file and a small shard folder, with what reading them gives."""
    from robofail.data import ShardedWriter, write_episodes

    folder = tmp_path_factory.mktemp("stored")
    episodes = synthetic_episodes(2, 0)
    file = write_episodes(folder / "eps.h5", episodes, synthetic_info())
    with ShardedWriter(folder / "shards", synthetic_info(), shard_size=1) as writer:
        for index, episode in enumerate(episodes):
            writer.add(index, episode)
    return {
        "file": file,
        "shards": folder / "shards",
        "file_content": read_everything(file),
        "shards_content": read_everything(folder / "shards"),
    }


def corrupt(data: bytes, changes: list[tuple[float, int]]) -> bytes:
    """``data`` with the byte at each relative position replaced (a different value)."""
    out = bytearray(data)
    for where, value in changes:
        i = min(int(where * len(out)), len(out) - 1)
        out[i] = value if value != out[i] else (value + 1) % 256
    return bytes(out)


byte_changes = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=4)


def check_read(path: Path, original: dict[str, Any]) -> None:
    """Reading ``path`` gives ``original`` exactly, or a CorruptFileError."""
    try:
        content = read_everything(path)
    except CorruptFileError:
        return
    assert same(content, original), "corrupted bytes were read back as different data"


@settings(FAST, max_examples=EXAMPLES * 4 // 3)
@given(changes=byte_changes)
def test_corrupted_h5_file_is_refused_or_reads_the_same(
    stored: dict[str, Any], changes: list[tuple[float, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "eps.h5"
        path.write_bytes(corrupt(stored["file"].read_bytes(), changes))
        check_read(path, stored["file_content"])


@settings(FAST, max_examples=EXAMPLES * 2 // 3)
@given(
    target=st.sampled_from(["manifest.json", "shard_00000.h5", "shard_00001.h5"]),
    changes=byte_changes,
)
def test_corrupted_shard_folder_is_refused_or_reads_the_same(
    stored: dict[str, Any], target: str, changes: list[tuple[float, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "shards"
        shutil.copytree(stored["shards"], copy)
        (copy / target).write_bytes(corrupt((copy / target).read_bytes(), changes))
        check_read(copy, stored["shards_content"])


@settings(FAST, max_examples=EXAMPLES * 2 // 3)
@given(
    change=st.sampled_from(
        [
            ("robofail_schema", 2),
            ("shards", {}),
            ("shards", [{"file": "shard_00000.h5"}]),
            ("info", {"task": 1}),
            ("info", None),
        ]
    )
    | st.tuples(st.sampled_from(["robofail_schema", "info", "shards", "x"]), json_values),
)
def test_manifest_with_wrong_fields_is_refused_or_reads_the_same(
    stored: dict[str, Any], change: tuple[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "shards"
        shutil.copytree(stored["shards"], copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        key, value = change
        assume(manifest.get(key) != value)
        manifest[key] = value
        (copy / "manifest.json").write_text(json.dumps(manifest))
        check_read(copy, stored["shards_content"])
