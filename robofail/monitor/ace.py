"""Action-chunk entropy (ACE): how much the policy's sampled chunks disagree.

For one inference, B chunks are sampled for the same observation, (B, H, A). ACE looks at the
position dims P of each chunk (optionally integrated over the chunk, for delta actions, so a
chunk is a planned path), bins every prediction step's B points on a grid whose cell is a fraction
of each dim's calibration range, and takes the Shannon entropy (bits) of the occupied cells; the
score is the mean over the H prediction steps. Identical samples give 0; B samples in B different
cells give log2(B).

The mean over steps of ``log2(B) - sum_c n_c log2(n_c) / B`` (``n_c`` the samples in cell c) is
``log2(B) - sum n log2 n / (B H)`` over all (step, cell) runs, so one sort per step and one table
lookup give the score: cells are packed into one int64 key per point (20 bits per dim, signed
digits, so distinct cells never share a key), each step's B keys are sorted, and the run lengths
of equal keys are the cell counts.
"""

from __future__ import annotations

import numpy as np

from robofail.errors import InvalidInputError

_BITS_PER_DIM = 20
_CELL_LIMIT = (1 << (_BITS_PER_DIM - 1)) - 1
MAX_POSITION_DIMS = 63 // _BITS_PER_DIM


def chunk_positions(chunks: np.ndarray, position_dims: np.ndarray, cumulative: bool) -> np.ndarray:
    """The position dims of chunks (..., B, H, A) -> (..., B, H, P), integrated over the chunk's
    steps (a planned path) when ``cumulative`` (delta-position actions)."""
    positions = chunks[..., position_dims]
    return np.cumsum(positions, axis=-2) if cumulative else positions


def _key_weights(p: int) -> np.ndarray:
    if not 1 <= p <= MAX_POSITION_DIMS:
        raise ValueError(f"ACE packs 1 to {MAX_POSITION_DIMS} position dims, got {p}")
    return np.array([1 << (_BITS_PER_DIM * (p - 1 - d)) for d in range(p)], dtype=np.int64)


def binned_entropy(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Entropy (bits) of the B points of every prediction step, averaged over steps.

    Args:
        positions: (..., B, H, P) points.
        cell: (P,) grid cell size per dim (same units as ``positions``), > 0.

    Returns:
        (...) mean over H of each step's entropy of the B points' cells.
    """
    *lead, b, h, p = positions.shape
    entropy = ChunkEntropy(np.arange(p), False, np.asarray(cell, dtype=np.float64))
    flat = positions.reshape(-1, b, h, p)
    return np.array([entropy(points) for points in flat]).reshape(lead)


class ChunkEntropy:
    """ACE of one inference's chunks, with the per-call work cut to a few numpy calls.

    The path integral is one product with a lower-triangular matrix (float64), laid out so the
    keys come out one row per prediction step; the entropy sum uses each sample's rank inside its
    run of equal keys: a run of n adds up ``(r + 1) log2(r + 1) - r log2(r)`` over r < n, which is
    ``n log2 n``.

    Args:
        position_dims: (P,) action dims that are positions.
        cumulative: integrate the position dims over the chunk (delta-position actions).
        cell: (P,) grid cell per dim, in the (integrated) position's units.
    """

    def __init__(self, position_dims: np.ndarray, cumulative: bool, cell: np.ndarray) -> None:
        self.position_dims = np.asarray(position_dims, dtype=np.intp)
        self.cumulative = bool(cumulative)
        self.inverse_cell = 1.0 / np.asarray(cell, dtype=np.float64)
        self._weights = _key_weights(len(self.position_dims))
        dims = self.position_dims
        contiguous = len(dims) and np.all(np.diff(dims) == 1)
        self._select = slice(int(dims[0]), int(dims[-1]) + 1) if contiguous else dims
        self._shapes: dict[tuple[int, int], tuple] = {}

    def _constants(self, b: int, h: int) -> tuple:
        """Per (B, H): integration matrix, tiled inverse cells, ranks and rank increments."""
        constants = self._shapes.get((b, h))
        if constants is None:
            ranks = np.arange(b * h)
            increments = np.zeros(b + 1)
            r = np.arange(1, b + 1, dtype=np.float64)
            increments[:b] = r * np.log2(r) - (r - 1) * np.log2(np.maximum(r - 1, 1))
            constants = (
                np.tril(np.ones((h, h))),
                np.tile(self.inverse_cell, b),
                ranks,
                increments,
            )
            self._shapes[(b, h)] = constants
        return constants

    def __call__(self, chunks: np.ndarray) -> float:
        """ACE (bits) of chunks (B, H, A)."""
        b, h = chunks.shape[:2]
        p = len(self.position_dims)
        integrate, inverse_cell, ranks, increments = self._constants(b, h)
        steps = chunks[:, :, self._select].transpose(1, 0, 2).reshape(h, b * p)  # (H, B*P)
        points = integrate @ steps if self.cumulative else steps.astype(np.float64)
        points *= inverse_cell
        np.floor(points, out=points)
        if not -_CELL_LIMIT <= points.min() <= points.max() <= _CELL_LIMIT:  # also NaN
            raise InvalidInputError(
                f"chunks: positions reach {_CELL_LIMIT} ACE grid cells from the origin (or are "
                "not finite): far outside the calibration range; they cannot be scored"
            )
        keys = points.astype(np.int64).reshape(h, b, p) @ self._weights  # (H, B)
        keys.sort(axis=1)
        new_run = np.empty((h, b), dtype=bool)
        new_run[:, 0] = True
        np.not_equal(keys[:, 1:], keys[:, :-1], out=new_run[:, 1:])
        run_start = np.maximum.accumulate(np.where(new_run.ravel(), ranks, 0))
        total = increments[ranks - run_start].sum()
        return float(np.log2(b) - total / (b * h))

    def episode(self, chunks: np.ndarray) -> np.ndarray:
        """ACE of every inference of an episode: chunks (K, B, H, A) -> (K,) float64, exactly
        what K calls give."""
        return np.array([self(c) for c in chunks], dtype=np.float64)
