"""Boundary search: the logistic risk model recovers known boundaries, a real small search writes
its four files with boundary-phase samples inside the predicted band, the same arguments give
the same samples, and bad input gives one line and status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robofail.cli import main
from robofail.errors import InvalidInputError
from robofail.failgen.discover import (
    BAND,
    Box,
    RiskModel,
    discover,
    fit_logistic,
    plot_boundary,
    roc_auc,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def unit_box(*names: str, integer: tuple[bool, ...] | None = None) -> Box:
    d = len(names)
    return Box(
        kind="test",
        names=names,
        low=np.zeros(d),
        high=np.ones(d) if integer is None else np.full(d, 10.0),
        integer=np.zeros(d, bool) if integer is None else np.array(integer),
    )


# --------------------------------------------------------------------------- model, no sim
def test_roc_auc_rank_formula():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    # one positive ranked above 2 of 3 negatives
    assert roc_auc(np.array([0.1, 0.2, 0.6, 0.5]), np.array([0, 0, 0, 1])) == pytest.approx(2 / 3)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_logistic_fit_recovers_a_known_1d_boundary():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(600, 1))
    y = rng.uniform(size=600) < 1 / (1 + np.exp(-10 * (x[:, 0] - 0.6)))
    model = RiskModel.fit(unit_box("x"), x, y, l2=0.1)
    grid = np.linspace(0, 1, 1001)[:, None]
    p = model.predict(grid)
    assert np.all(np.diff(p) > 0)  # failure risk grows with x
    p50 = grid[np.argmin(np.abs(p - 0.5)), 0]
    assert p50 == pytest.approx(0.6, abs=0.05)
    x_test = rng.uniform(0, 1, size=(400, 1))
    y_test = rng.uniform(size=400) < 1 / (1 + np.exp(-10 * (x_test[:, 0] - 0.6)))
    assert roc_auc(model.predict(x_test), y_test) > 0.85


def test_logistic_fit_recovers_a_2d_boundary_and_round_trips_json():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(800, 2))
    y = rng.uniform(size=800) < 1 / (1 + np.exp(-12 * (x[:, 0] + x[:, 1] - 1.0)))
    model = RiskModel.fit(unit_box("a", "b"), x, y)
    assert model.quadratic  # 800 samples allow the squared terms
    on_line = np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])
    assert np.allclose(model.predict(on_line), 0.5, atol=0.12)
    assert model.predict(np.array([[0.9, 0.9]]))[0] > 0.9
    assert model.predict(np.array([[0.1, 0.1]]))[0] < 0.1
    again = RiskModel.from_json(json.loads(json.dumps(model.to_json())))
    np.testing.assert_allclose(again.predict(x), model.predict(x))


def test_fit_stays_finite_on_separable_or_one_class_data():
    features = np.column_stack([np.ones(6), [-1, -0.5, -0.1, 0.1, 0.5, 1]])
    w = fit_logistic(features, np.array([0, 0, 0, 1, 1, 1]), l2=1.0)
    assert np.all(np.isfinite(w)) and w[1] > 0
    w = fit_logistic(features, np.ones(6), l2=1.0)
    assert np.all(np.isfinite(w))


def test_integer_parameters_cover_their_whole_numbers_evenly():
    box = unit_box("k", integer=(True,))
    values = box.from_unit(((np.arange(1100) + 0.5) / 1100)[:, None])[:, 0]
    counts = np.bincount(values.astype(int), minlength=11)
    assert counts.min() == counts.max() == 100


def test_plot_draws_two_most_influential_params(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(60, 3))
    y = x[:, 2] > 0.5
    model = RiskModel.fit(unit_box("a", "b", "c"), x, y)
    assert np.argmax(model.influence()) == 2
    path = tmp_path / "b.png"
    plot_boundary(model, x, y, ["initial"] * 60, path)
    assert path.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- a real search
@pytest.fixture(scope="module")
def friction_search(tmp_path_factory):
    """A 24-episode search of PegInsert's object friction, in-process (a few seconds)."""
    out = tmp_path_factory.mktemp("discover") / "peg_friction"
    result = discover(
        "peg_insert", "failures", 24, out, kind="friction", seed=3, backend="inprocess"
    )
    return out, result


def test_real_search_writes_its_files(friction_search):
    out, result = friction_search
    for name in ("samples.json", "model.json", "report.json", "boundary.png"):
        assert (out / name).is_file(), name
    assert (out / "boundary.png").read_bytes()[:8] == PNG_MAGIC
    report = json.loads((out / "report.json").read_text())
    for key in (
        "n",
        "failure_rate",
        "heldout_auc",
        "boundary_phase",
        "rounds",
        "fallback_rounds",
        "files",
    ):
        assert key in report, key
    assert report["n"] == 24 and report["kind"] == "friction" and report["params"] == ["scale"]
    assert 0.0 < report["failure_rate"] < 1.0  # the box spans the boundary
    samples = json.loads((out / "samples.json").read_text())["samples"]
    assert len(samples) == 24 and [s["index"] for s in samples] == list(range(24))
    fails = sum(s["failed"] for s in samples)
    assert report["failure_rate"] == pytest.approx(fails / 24)
    boundary = [s for s in samples if s["phase"] == "boundary"]
    assert len(boundary) == 12 == report["boundary_phase"]["n"]
    for s in samples:
        assert set(s) >= {"params", "failed", "round", "failure_step", "onset_step"}
        assert 0.005 <= s["params"]["scale"] <= 0.03
        if s["failed"]:
            assert s["onset_step"] == 0 <= s["failure_step"]  # friction acts from the reset
    # the saved model is the returned one
    model = RiskModel.from_json(json.loads((out / "model.json").read_text()))
    grid = np.linspace(0.005, 0.03, 50)[:, None]
    np.testing.assert_allclose(model.predict(grid), result.model.predict(grid))
    # slipperier is riskier
    assert model.predict(np.array([[0.005]]))[0] > model.predict(np.array([[0.03]]))[0]


def test_boundary_samples_were_chosen_inside_the_band(friction_search):
    out, _ = friction_search
    doc = json.loads((out / "samples.json").read_text())
    model = json.loads((out / "model.json").read_text())
    box = RiskModel.from_json(model).box
    rounds = {r["round"]: r for r in doc["rounds"]}
    assert rounds and not any(r["fallback"] for r in rounds.values())
    for s in doc["samples"]:
        if s["phase"] == "initial":
            assert s["round"] == 0 and s["predicted_p_fail"] is None
            continue
        fitted = rounds[s["round"]]
        # the model of that round, rebuilt from its coefficients, predicted 30-70 % there
        then = RiskModel(box, np.array(fitted["coefficients"]), fitted["quadratic"], 1.0)
        p = then.predict(np.array([[s["params"]["scale"]]]))[0]
        assert BAND[0] <= p <= BAND[1]
        assert p == pytest.approx(s["predicted_p_fail"])
        assert fitted["fitted_on"] <= s["index"]  # chosen from earlier samples only


def test_same_arguments_give_the_same_samples(friction_search, tmp_path):
    out, _ = friction_search
    discover("peg_insert", "failures", 24, tmp_path, kind="friction", seed=3, backend="inprocess")
    assert (tmp_path / "samples.json").read_bytes() == (out / "samples.json").read_bytes()


# --------------------------------------------------------------------------- bad input
def cli_error(capsys, *args: str) -> str:
    assert main(["discover", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robofail discover: error:") and "\n" not in err, err
    return err


def test_cli_bad_inputs(capsys, tmp_path):
    base = ["--task", "pick_place", "--spec", "failures", "--backend", "inprocess"]
    out = str(tmp_path / "d")
    assert "unknown perturbation 'nope'" in cli_error(
        capsys, *base, "--kind", "nope", "-n", "24", "--out", out
    )
    err = cli_error(capsys, *base, "--kind", "rotation", "-n", "24", "--out", out)
    assert "not in spec" in err and "slip" in err
    err = cli_error(capsys, *base, "-n", "24", "--out", out)
    assert "--kind" in err and "slip" in err
    assert "n >= 20" in cli_error(capsys, *base, "--kind", "slip", "-n", "10", "--out", out)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = cli_error(capsys, *base, "--kind", "slip", "-n", "24", "--out", str(blocker / "d"))
    assert "is a file" in err
    peg = ["--task", "peg_insert", "--spec", "failures", "-n", "24", "--out", out]
    assert "nothing to search" in cli_error(capsys, *peg, "--kind", "no_rotation")
    assert not (tmp_path / "d").exists()  # nothing written by a refused search
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "discover",
                *base,
                "--kind",
                "slip",
                "-n",
                "24",
                "--out",
                out,
                "--initial-fraction",
                "1.5",
            ]
        )
    assert exc.value.code == 2


def test_existing_search_needs_overwrite(capsys, friction_search):
    out, _ = friction_search
    args = ["--task", "peg_insert", "--spec", "failures", "--kind", "friction", "-n", "24"]
    assert "--overwrite" in cli_error(capsys, *args, "--out", str(out))


def test_kind_may_be_omitted_for_a_one_entry_spec(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: peg_insert\nperturbations:\n  - kind: no_rotation\n")
    with pytest.raises(InvalidInputError, match="no_rotation has no parameters"):
        discover("peg_insert", spec, 24, tmp_path / "out", backend="inprocess")
    spec.write_text(
        "task: peg_insert\nperturbations:\n  - kind: friction\n    params: {scale: 0.02}\n"
    )
    with pytest.raises(InvalidInputError, match="every parameter fixed"):
        discover("peg_insert", spec, 24, tmp_path / "out", backend="inprocess")


def test_no_candidate_in_the_band_falls_back_and_says_so(tmp_path):
    """A box where every episode fails: the model never predicts 30-70 %, so each round runs
    the candidates nearest 50 % and the report says so; the spec's only kind needs no --kind."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: peg_insert\nperturbations:\n  - kind: friction\n    params: {scale: [0.001, 0.01]}\n"
    )
    result = discover("peg_insert", spec, 20, tmp_path / "out", backend="inprocess")
    report = result.report
    assert report["failure_rate"] == 1.0 and report["heldout_auc"] is None
    assert report["fallback_rounds"] == [r["round"] for r in report["rounds"]] != []
    assert "nearest 50%" in report["fallback_note"] and "nearest 50%" in result.summary()
    assert (tmp_path / "out" / "boundary.png").read_bytes()[:8] == PNG_MAGIC
