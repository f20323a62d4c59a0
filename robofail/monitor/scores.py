"""Per-inference failure scores, streaming and offline, behind one interface (numpy/onnxruntime).

Every score answers two calls that agree with each other:

- ``update(embedding, chunks) -> float``: the score of one inference, keeping what the score
  needs from earlier inferences of the episode (``reset()`` starts an episode);
- ``episode(embeddings, chunks) -> (K,)``: the scores of a whole recorded episode at once
  (calibration and evaluation), equal to K ``update`` calls after a ``reset``.

Kinds (the ``type`` field of a score in ``calibration.json``):

- ``onnx``: a fitted model of the embedding exported to ONNX, input ``embedding`` (N, D) float32,
  output ``score`` (N,): RND, Mahalanobis, PCA + k-means, logpZO (see :mod:`robofail.monitor.fit`).
- ``ace``: action-chunk entropy of the sampled chunks' position dims (:mod:`.ace`).
- ``stac``: squared MMD (RBF kernel, median-distance bandwidth) between the parts of the previous
  and the current inference's chunk samples that predict the same control steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robofail.errors import CorruptFileError
from robofail.monitor.ace import ChunkEntropy
from robofail.ort import load_session


class Score(Protocol):
    """One per-inference score with per-episode state."""

    def reset(self) -> None:
        """Forget the current episode."""

    def update(self, embedding: np.ndarray, chunks: np.ndarray) -> float:
        """Score of one inference: embedding (D,) float32, chunks (B, H, A) float32."""

    def episode(self, embeddings: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        """Scores (K,) float64 of an episode's K inferences: embeddings (K, D), chunks
        (K, B, H, A)."""


class OnnxScore:
    """A fitted score model of the embedding, run by onnxruntime on one thread.

    The input row and the output value are bound to fixed buffers once (io binding), so an
    update copies the embedding in and runs the graph, nothing else.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.session = load_session(self.path)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != ["embedding"] or [o.name for o in outputs] != ["score"]:
            raise CorruptFileError(
                f"{self.path}: a score model needs one input 'embedding' and one output 'score'"
            )
        self.dim = inputs[0].shape[1]
        self._row = np.zeros((1, self.dim), dtype=np.float32)
        self._out = np.zeros(1, dtype=np.float32)
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input("embedding", self._row)
        self._binding.bind_output("score", "cpu", 0, np.float32, [1], self._out.ctypes.data)

    def reset(self) -> None:
        pass

    def update(self, embedding: np.ndarray, chunks: np.ndarray) -> float:
        self._row[0] = embedding
        self.session.run_with_iobinding(self._binding)
        return float(self._out[0])

    def episode(self, embeddings: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        """One update per row, so offline scores equal streaming ones bit for bit."""
        return np.array([self.update(e, None) for e in embeddings], dtype=np.float64)


class AceScore:
    """Action-chunk entropy (bits) of each inference's sampled chunks."""

    def __init__(self, position_dims: list[int], cumulative: bool, cell: list[float]) -> None:
        self.entropy = ChunkEntropy(np.asarray(position_dims), cumulative, np.asarray(cell))

    def reset(self) -> None:
        pass

    def update(self, embedding: np.ndarray, chunks: np.ndarray) -> float:
        return self.entropy(chunks)

    def episode(self, embeddings: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        return self.entropy.episode(chunks)


def overlap_mmd2(previous: np.ndarray, current: np.ndarray, offset: int) -> float:
    """Squared MMD between the samples of two consecutive inferences where they overlap.

    Args:
        previous: (B, H, A) chunks of the previous inference.
        current: (B', H, A) chunks of this inference, made ``offset`` control steps later.
        offset: control steps between the two inferences (the executed part), 0 < offset < H.

    Returns:
        Biased MMD^2 estimate with an RBF kernel whose bandwidth is the median pairwise distance
        of the pooled samples (steps ``offset..H-1`` of ``previous`` against ``0..H-1-offset``
        of ``current``, flattened).
    """
    h = previous.shape[1]
    x = previous[:, offset:].reshape(len(previous), -1).astype(np.float64)
    y = current[:, : h - offset].reshape(len(current), -1).astype(np.float64)
    pooled = np.concatenate([x, y])
    norms = np.einsum("ij,ij->i", pooled, pooled)
    squared = np.maximum(norms[:, None] + norms[None, :] - 2.0 * (pooled @ pooled.T), 0.0)
    n = len(pooled)
    off_diagonal = squared[~np.eye(n, dtype=bool)]
    bandwidth2 = float(np.median(off_diagonal))
    if bandwidth2 <= 0.0:
        return 0.0
    kernel = np.exp(-squared / (2.0 * bandwidth2))
    b = len(x)
    return float(kernel[:b, :b].mean() + kernel[b:, b:].mean() - 2.0 * kernel[:b, b:].mean())


class StacScore:
    """STAC: statistical temporal action consistency between consecutive inferences.

    Args:
        offset: control steps between consecutive inferences (the policy's executed chunk
            length); the first inference of an episode scores 0.
    """

    def __init__(self, offset: int) -> None:
        self.offset = int(offset)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def update(self, embedding: np.ndarray, chunks: np.ndarray) -> float:
        previous, self._previous = self._previous, np.array(chunks, copy=True)
        if previous is None:
            return 0.0
        return overlap_mmd2(previous, chunks, self.offset)

    def episode(self, embeddings: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(chunks))
        for k in range(1, len(chunks)):
            scores[k] = overlap_mmd2(chunks[k - 1], chunks[k], self.offset)
        return scores


def build_score(spec: dict[str, Any], folder: Path) -> Score:
    """The score described by one ``scores`` entry of ``calibration.json``."""
    kind = spec.get("type")
    if kind == "onnx":
        return OnnxScore(folder / spec["file"])
    if kind == "ace":
        return AceScore(spec["position_dims"], spec["cumulative"], spec["cell"])
    if kind == "stac":
        return StacScore(spec["offset"])
    raise CorruptFileError(f"{folder}: unknown score type {kind!r} in calibration.json")
