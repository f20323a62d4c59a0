"""Fitting the embedding-space score models and exporting them to ONNX (training side).

Each ``fit_*`` takes the policy embeddings of the *fit* split's successful rollouts, (N, D), and a
seed, and returns an ``onnx.ModelProto`` with input ``embedding`` (N, D) float32 and output
``score`` (N,) float32. Embeddings are standardised with the fit split's per-dim mean and std
inside every graph.

- :func:`fit_rnd`: random network distillation, ||f(e) - g(e)||_2 with g a frozen random MLP and
  f trained to match it (torch). Networks are sized to the embedding (D -> 128 -> 64).
- :func:`fit_logpzo`: a flow-matching model of the embedding distribution (torch), x_t =
  (1 - t) e + t z, velocity target z - e; the score ||e + v(e, 0)||^2 is the squared norm of the
  noise the embedding maps to in one Euler step, a surrogate of -log p.
- :func:`fit_mahalanobis`: distance under a Ledoit-Wolf-shrunk covariance (numpy).
- :func:`fit_pca_kmeans`: distance to the nearest of 64 k-means centroids in the first 10
  principal components (numpy).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from robofail import __version__
from robofail.errors import InvalidInputError
from robofail.onnx_graph import GraphBuilder

STD_FLOOR = 1e-6


def _check_embeddings(embeddings: np.ndarray, minimum: int) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) < minimum:
        raise InvalidInputError(
            f"fitting a score model needs at least {minimum} embeddings (N, D), got shape "
            f"{embeddings.shape}; record more successful rollouts"
        )
    if not np.all(np.isfinite(embeddings)):
        raise InvalidInputError("embeddings contain NaN or inf")
    return embeddings


def _stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return embeddings.mean(axis=0), np.maximum(embeddings.std(axis=0), STD_FLOOR)


def _metadata(kind: str, dim: int, n: int, seed: int) -> dict[str, str]:
    return {
        "robofail_score": kind,
        "embedding_dim": str(dim),
        "fit_embeddings": str(n),
        "seed": str(seed),
        "robofail_version": __version__,
    }


def _torch_mlp(sizes: list[int], generator):
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(a, b)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(a)
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _numpy_layers(mlp) -> list[tuple[np.ndarray, np.ndarray]]:
    from torch import nn

    return [
        (m.weight.detach().double().numpy().T, m.bias.detach().double().numpy())
        for m in mlp
        if isinstance(m, nn.Linear)
    ]


def _train(loss_fn, parameters, steps: int, lr: float) -> None:
    import torch

    optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these networks are too small to gain from more threads
    try:
        for _ in range(steps):
            optimiser.zero_grad()
            loss_fn().backward()
            optimiser.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)


def fit_rnd(
    embeddings: np.ndarray, *, seed: int, hidden: int = 128, out_dim: int = 64, steps: int = 1500
):
    """RND score model fitted on embeddings (N, D); see the module docstring."""
    import torch

    e = _check_embeddings(embeddings, 8)
    mean, std = _stats(e)
    x = torch.as_tensor((e - mean) / std, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    dim = e.shape[1]
    target = _torch_mlp([dim, hidden, out_dim], generator)
    predictor = _torch_mlp([dim, hidden, hidden, out_dim], generator)
    with torch.no_grad():
        y = target(x)
    batch = min(256, len(x))

    def loss():
        index = torch.randint(len(x), (batch,), generator=generator)
        return ((predictor(x[index]) - y[index]) ** 2).sum(dim=1).mean()

    _train(loss, predictor.parameters(), steps, 1e-3)
    g = GraphBuilder("embedding", dim)
    normalised = g.standardise(g.input, mean, std)
    difference = g.op(
        "Sub", g.mlp(normalised, _numpy_layers(predictor)), g.mlp(normalised, _numpy_layers(target))
    )
    score = g.op("Sqrt", g.row_sum_squares(difference))
    return g.model(score, "score", _metadata("rnd", dim, len(e), seed))


_TIME_FREQUENCIES = np.arange(1, 5)


def _time_features(t):
    """(N,) times -> (N, 9) features [t, sin(2 pi k t), cos(2 pi k t)]; works on torch or numpy."""
    import torch

    angles = 2 * math.pi * t[:, None] * torch.as_tensor(_TIME_FREQUENCIES, dtype=t.dtype)
    return torch.cat([t[:, None], angles.sin(), angles.cos()], dim=1)


def fit_logpzo(embeddings: np.ndarray, *, seed: int, hidden: int = 256, steps: int = 3000):
    """logpZO score model fitted on embeddings (N, D); see the module docstring."""
    import torch

    e = _check_embeddings(embeddings, 8)
    mean, std = _stats(e)
    x = torch.as_tensor((e - mean) / std, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    dim = e.shape[1]
    n_time = 1 + 2 * len(_TIME_FREQUENCIES)
    velocity = _torch_mlp([dim + n_time, hidden, hidden, hidden, dim], generator)
    batch = min(256, len(x))

    def loss():
        index = torch.randint(len(x), (batch,), generator=generator)
        data = x[index]
        noise = torch.randn(data.shape, generator=generator)
        t = torch.rand(batch, generator=generator)
        xt = (1 - t[:, None]) * data + t[:, None] * noise
        predicted = velocity(torch.cat([xt, _time_features(t)], dim=1))
        return ((predicted - (noise - data)) ** 2).mean()

    _train(loss, velocity.parameters(), steps, 1e-3)
    layers = _numpy_layers(velocity)
    first_weight, first_bias = layers[0]
    t0 = _time_features(torch.zeros(1, dtype=torch.float64))[0].numpy()
    # at t = 0 the time features are constants: fold them into the first layer's bias
    layers[0] = (first_weight[:dim], first_bias + t0 @ first_weight[dim:])
    g = GraphBuilder("embedding", dim)
    normalised = g.standardise(g.input, mean, std)
    noise = g.op("Add", normalised, g.mlp(normalised, layers))
    return g.model(g.row_sum_squares(noise), "score", _metadata("logpzo", dim, len(e), seed))


def ledoit_wolf_covariance(centred: np.ndarray) -> np.ndarray:
    """Covariance (D, D) of centred samples (N, D) shrunk towards a scaled identity with the
    Ledoit-Wolf intensity."""
    n, d = centred.shape
    sample = centred.T @ centred / n
    scale = np.trace(sample) / d
    target_gap = np.sum((sample - scale * np.eye(d)) ** 2) / d
    spread = (np.sum(np.sum(centred**2, axis=1) ** 2) - n * np.sum(sample**2)) / (n * n * d)
    intensity = 0.0 if target_gap <= 0 else min(max(spread, 0.0), target_gap) / target_gap
    return intensity * scale * np.eye(d) + (1.0 - intensity) * sample


def fit_mahalanobis(embeddings: np.ndarray, *, seed: int = 0):
    """Mahalanobis distance model fitted on embeddings (N, D)."""
    e = _check_embeddings(embeddings, 8)
    mean = e.mean(axis=0)
    covariance = ledoit_wolf_covariance(e - mean)
    covariance += 1e-9 * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    whitening = np.linalg.cholesky(np.linalg.inv(covariance))  # precision = L L^T
    g = GraphBuilder("embedding", e.shape[1])
    centred = g.op("Sub", g.input, g.const(mean, "mean"))
    score = g.op("Sqrt", g.row_sum_squares(g.affine(centred, whitening)))
    return g.model(score, "score", _metadata("mahalanobis", e.shape[1], len(e), seed))


def kmeans(points: np.ndarray, k: int, seed: int, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding: centroids (k, P) of points (N, P), k <= N."""
    rng = np.random.default_rng(seed)
    centroids = [points[rng.integers(len(points))]]
    nearest = np.sum((points - centroids[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total > 0:
            index = rng.choice(len(points), p=nearest / total)
        else:
            index = rng.integers(len(points))
        centroids.append(points[index])
        nearest = np.minimum(nearest, np.sum((points - points[index]) ** 2, axis=1))
    centres = np.array(centroids)
    for _ in range(iterations):
        distances = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
        labels = distances.argmin(axis=1)
        moved = centres.copy()
        for c in range(k):
            members = points[labels == c]
            if len(members):
                moved[c] = members.mean(axis=0)
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres


def fit_pca_kmeans(embeddings: np.ndarray, *, seed: int, components: int = 10, clusters: int = 64):
    """PCA (``components``) + k-means (``clusters``) distance model fitted on embeddings (N, D)."""
    e = _check_embeddings(embeddings, 8)
    mean, std = _stats(e)
    x = (e - mean) / std
    components = min(components, *x.shape)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    projection = vt[:components].T  # (D, C)
    z = x @ projection
    centres = kmeans(z, min(clusters, len(z)), seed)
    g = GraphBuilder("embedding", e.shape[1])
    projected = g.affine(g.standardise(g.input, mean, std), projection)
    # squared distances to every centre: |z|^2 - 2 z.c + |c|^2
    cross = g.affine(projected, -2.0 * centres.T, np.sum(centres**2, axis=1))
    squared = g.op("Add", cross, g.op("ReduceSumSquare", projected, axes=[1], keepdims=1))
    nearest = g.op("ReduceMin", squared, axes=[1], keepdims=0)
    score = g.op("Sqrt", g.op("Max", nearest, g.const(np.zeros(()), "zero")))
    return g.model(score, "score", _metadata("pca_kmeans", e.shape[1], len(e), seed))


FITTERS = {
    "rnd": fit_rnd,
    "logpzo": fit_logpzo,
    "mahalanobis": fit_mahalanobis,
    "pca_kmeans": fit_pca_kmeans,
}
"""Embedding score name -> fitter ``(embeddings, seed=...) -> onnx.ModelProto``."""
