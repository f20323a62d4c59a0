"""Action-chunk entropy (ACE): how much the policy's sampled chunks disagree.

For one inference, B chunks are sampled for the same observation, (B, H, A). ACE looks at the
position dims P of each chunk (optionally integrated over the chunk, for delta actions, so a
chunk is a planned path), bins every prediction step's B points on a grid whose cell is a fraction
of each dim's calibration range, and takes the Shannon entropy (bits) of the occupied cells; the
score is the mean over the H prediction steps. Identical samples give 0; B samples in B different
cells give log2(B).

Vectorised: cells are packed into one int64 key per point, sorted once per prediction step, and
the entropies of all steps (and all inferences, offline) come from one pass over the run lengths.
"""

from __future__ import annotations

import numpy as np

_BITS_PER_DIM = 20
_CELL_LIMIT = (1 << (_BITS_PER_DIM - 1)) - 1


def chunk_positions(chunks: np.ndarray, position_dims: np.ndarray, cumulative: bool) -> np.ndarray:
    """The position dims of chunks (..., B, H, A) -> (..., B, H, P), integrated over the chunk's
    steps (a planned path) when ``cumulative`` (delta-position actions)."""
    positions = chunks[..., position_dims]
    return np.cumsum(positions, axis=-2) if cumulative else positions


def binned_entropy(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Entropy (bits) of the B points of every prediction step, averaged over steps.

    Args:
        positions: (..., B, H, P) points.
        cell: (P,) grid cell size per dim (same units as ``positions``), > 0.

    Returns:
        (...) mean over H of each step's entropy of the B points' cells.
    """
    *lead, b, h, p = positions.shape
    cells = np.floor(positions / cell).astype(np.int64)
    np.clip(cells, -_CELL_LIMIT, _CELL_LIMIT, out=cells)
    if p * _BITS_PER_DIM > 63:
        raise ValueError(f"ACE packs at most {63 // _BITS_PER_DIM} position dims, got {p}")
    keys = np.zeros(cells.shape[:-1], dtype=np.int64)
    for d in range(p):
        keys = (keys << _BITS_PER_DIM) | (cells[..., d] + _CELL_LIMIT)
    # columns: one per (lead..., step); rows: the B samples
    columns = np.moveaxis(keys, -2, -1).reshape(-1, b)
    columns.sort(axis=1)
    new_run = np.ones_like(columns, dtype=bool)
    new_run[:, 1:] = columns[:, 1:] != columns[:, :-1]
    starts = np.flatnonzero(new_run)
    counts = np.diff(np.append(starts, columns.size)).astype(np.float64)
    sums = np.bincount(starts // b, weights=counts * np.log2(counts), minlength=len(columns))
    entropy = np.log2(b) - sums / b
    return entropy.reshape(*lead, h).mean(axis=-1)
