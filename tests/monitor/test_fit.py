"""Fitted score models: the ONNX graphs compute the intended math, and score the fitted
distribution lower than shifted data."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from robofail.errors import InvalidInputError
from robofail.monitor.fit import FITTERS, kmeans, ledoit_wolf_covariance
from robofail.monitor.scores import OnnxScore


@pytest.fixture(scope="module")
def embeddings():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 12))
    return (rng.normal(size=(300, 6)) @ mixing + 0.1 * rng.normal(size=(300, 12))).astype(
        np.float32
    )


def score(model, rows, tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return OnnxScore(path).episode(rows, None)


def test_mahalanobis_graph_equals_the_formula(embeddings, tmp_path):
    model = FITTERS["mahalanobis"](embeddings)
    e = embeddings.astype(np.float64)
    mean = e.mean(axis=0)
    precision = np.linalg.inv(ledoit_wolf_covariance(e - mean))
    d = e[:20] - mean
    expected = np.sqrt(np.einsum("ij,jk,ik->i", d, precision, d))
    np.testing.assert_allclose(score(model, embeddings[:20], tmp_path, "m"), expected, rtol=1e-4)


def test_pca_kmeans_graph_is_the_distance_to_the_nearest_centroid(embeddings, tmp_path):
    model = FITTERS["pca_kmeans"](embeddings, seed=0, components=3, clusters=8)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    got = score(model, embeddings[:30], tmp_path, "p")
    # the projected rows through the graph's own constants, then a plain nearest-centroid search
    mean = next(v for k, v in weights.items() if k.startswith("mean"))
    std = next(v for k, v in weights.items() if k.startswith("std"))
    projection = next(v for k, v in weights.items() if k.startswith("w") and v.shape[1] == 3)
    z = ((embeddings[:30] - mean) / std) @ projection
    cross = next(v for k, v in weights.items() if k.startswith("w") and v.shape == (3, 8))
    centres = -0.5 * cross.T
    expected = np.sqrt(((z[:, None] - centres[None]) ** 2).sum(axis=2).min(axis=1))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", sorted(FITTERS))
def test_shifted_embeddings_score_higher(name, embeddings, tmp_path):
    extra = {"steps": 300} if name in ("rnd", "logpzo") else {}
    model = FITTERS[name](embeddings[:200], seed=1, **extra)
    inside = score(model, embeddings[200:], tmp_path, name)
    outside = score(model, embeddings[200:] + 3.0 * embeddings.std(axis=0), tmp_path, name + "o")
    assert np.median(outside) > 2 * np.median(inside)
    onnx.checker.check_model(model, full_check=True)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([c + rng.normal(size=(50, 2)) for c in centres])
    found = kmeans(points, 3, seed=0)
    assert (
        np.sort(np.round(found).astype(int), axis=0).tolist()
        == np.sort(centres.astype(int), axis=0).tolist()
    )


def test_too_few_or_non_finite_embeddings_are_refused():
    with pytest.raises(InvalidInputError, match="at least 8"):
        FITTERS["mahalanobis"](np.zeros((3, 4)))
    with pytest.raises(InvalidInputError, match="NaN"):
        FITTERS["rnd"](np.full((20, 4), np.nan), seed=0)
