"""Run independent jobs in order on a local process pool (or in-process for one worker)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import TypeVar

import numpy as np

R = TypeVar("R")


def episode_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 32-bit seed for episode ``index`` of a collection seeded with ``seed``; ``stream``
    separates independent draws (0: initial conditions, 1: action noise)."""
    return int(np.random.SeedSequence([seed, index, stream]).generate_state(1)[0])


def ordered_map(
    fn: Callable[..., R], jobs: Sequence[tuple], *, workers: int = 1, chunksize: int = 2
) -> Iterator[R]:
    """Yield ``fn(*job)`` for each job, in job order, computed on ``workers`` processes.

    ``fn`` must be a module-level function (it is sent to fresh ``forkserver`` processes, which
    import robofail once and keep per-process caches such as envs and policies).
    """
    if workers <= 1:
        for job in jobs:
            yield fn(*job)
        return
    context = get_context("forkserver" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(fn, *zip(*jobs, strict=True), chunksize=chunksize)
