"""Action-chunk entropy: the estimator's fixed points, agreement with a plain reference, and
monotonicity in the spread of the samples."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robofail.monitor.ace import binned_entropy, chunk_positions


def reference_entropy(positions, cell):
    """Straightforward per-step entropy with Python sets and dicts."""
    b, h, _ = positions.shape
    total = 0.0
    for step in range(h):
        counts = {}
        for sample in range(b):
            key = tuple(np.floor(positions[sample, step] / cell).astype(int))
            counts[key] = counts.get(key, 0) + 1
        p = np.array(list(counts.values())) / b
        total += float(-(p * np.log2(p)).sum())
    return total / h


def test_identical_samples_have_zero_entropy():
    chunks = np.tile(np.random.default_rng(0).normal(size=(1, 16, 3)), (32, 1, 1))
    assert binned_entropy(chunks, np.full(3, 0.05)) == 0.0


def test_all_distinct_cells_give_log2_b():
    chunks = np.arange(32, dtype=float)[:, None, None] * np.ones((32, 16, 3))
    assert np.isclose(binned_entropy(chunks, np.ones(3) * 0.5), 5.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 3), st.floats(0.01, 2.0))
def test_matches_the_reference(b, h, p, cell):
    rng = np.random.default_rng(b * 1000 + h * 10 + p)
    positions = rng.normal(size=(b, h, p))
    assert np.isclose(
        binned_entropy(positions, np.full(p, cell)), reference_entropy(positions, cell)
    )


def test_batched_leading_axes_equal_one_by_one():
    positions = np.random.default_rng(1).normal(size=(5, 32, 16, 3))
    batched = binned_entropy(positions, np.full(3, 0.1))
    single = [binned_entropy(p, np.full(3, 0.1)) for p in positions]
    np.testing.assert_allclose(batched, single)


def test_wider_spread_means_higher_entropy():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(32, 16, 3))
    values = [binned_entropy(base * s, np.full(3, 0.1)) for s in (0.01, 0.1, 1.0)]
    assert values[0] < values[1] < values[2]


def test_cumulative_positions_integrate_delta_actions():
    chunks = np.ones((2, 4, 5))
    path = chunk_positions(chunks, np.array([0, 2]), cumulative=True)
    np.testing.assert_array_equal(path[0, :, 0], [1, 2, 3, 4])
    assert chunk_positions(chunks, np.array([0, 2]), cumulative=False).shape == (2, 4, 2)
