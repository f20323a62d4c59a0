"""Where robofail runs independent episode jobs: in-process, a local process pool, or Ray.

Every backend yields ``fn(*job)`` for each job *in job order*, whatever order the jobs finish
in, so what reaches the dataset writer (and so the bytes written) does not depend on the backend
or the worker count. ``fn`` must be a module-level function; workers keep per-process caches
(envs, policies) between jobs.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context
from typing import Any, TypeVar

import numpy as np

from robofail.errors import InvalidInputError

R = TypeVar("R")

BACKENDS = ("local", "inprocess", "ray")
"""``local``: a process pool of ``workers`` processes (in-process for one worker);
``inprocess``: this process only; ``ray``: one Ray task per job on a local or existing cluster."""


#: Largest run seed: every seeded library robofail uses (numpy, torch, MuJoCo) accepts it.
MAX_SEED = 2**32 - 1


def check_seed(seed: object) -> None:
    """Raise InvalidInputError unless ``seed`` is an int in 0 .. :data:`MAX_SEED`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"seed must be an int in 0..{MAX_SEED}, got {seed!r}")


def episode_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 32-bit seed for episode ``index`` of a collection seeded with ``seed``; ``stream``
    separates independent draws (0: initial conditions, 1: action noise)."""
    return int(np.random.SeedSequence([seed, index, stream]).generate_state(1)[0])


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity set where the OS has one (a container or
    ``taskset`` limits it below the machine's count), else the machine's CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def max_local_workers() -> int:
    """Most worker processes robofail starts on this machine: twice the CPUs it may use. Each
    worker holds its own simulator and policy (hundreds of MB); beyond two per core, more workers
    only compete for cores and memory (thousands exhaust the machine's memory)."""
    return 2 * usable_cpus()


def check_backend(backend: str, workers: int, address: str | None = None) -> None:
    """Raise InvalidInputError for an unknown backend, ``workers`` < 1 or (for processes on this
    machine: the local pool, a local Ray) above :func:`max_local_workers`, Ray not installed, or
    an ``address`` given for a backend other than Ray."""
    if address is not None and backend != "ray":
        raise InvalidInputError("--address is for --backend ray only")
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be an int >= 1, got {workers!r}")
    limit = max_local_workers()
    if backend != "inprocess" and address is None and workers > limit:
        raise InvalidInputError(
            f"workers must be at most {limit} on this machine (twice its CPUs), got {workers}; "
            "for more, run on a Ray cluster: --backend ray --address HOST:PORT"
        )
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InvalidInputError(
                "--backend ray needs Ray: pip install 'robofail[ray]'"
            ) from None


def run_ordered(
    fn: Callable[..., R],
    jobs: Sequence[tuple],
    *,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> Iterator[R]:
    """Yield ``fn(*job)`` for every job, in job order, computed on ``backend``.

    At most ``2 * workers`` jobs are in flight, so results never pile up; closing the iterator
    early (an error, Ctrl-C) cancels the jobs not yet started.

    Args:
        fn: module-level function (sent to worker processes by reference).
        jobs: argument tuples, small (they are pickled to the workers).
        backend: one of :data:`BACKENDS`.
        workers: processes of the local pool, or CPUs of a local Ray instance.
        address: Ray cluster address (``ray.init(address=...)``); None starts a local Ray, or
            reuses the Ray instance this process already initialised.
    """
    check_backend(backend, workers, address)
    if backend == "inprocess" or (backend == "local" and workers == 1):
        return (fn(*job) for job in jobs)
    if backend == "local":
        return _pool_ordered(fn, jobs, workers=workers)
    return _ray_ordered(fn, jobs, workers=workers, address=address)


def _windowed(
    submit: Callable[[tuple], Any],
    result: Callable[[Any], R],
    cancel: Callable[[Any], Any],
    jobs: Sequence[tuple],
    window: int,
) -> Iterator[R]:
    """Submit jobs keeping ``window`` in flight; yield their results in job order; on early
    exit, ``cancel`` the ones still in flight."""
    pending = iter(jobs)
    in_flight: deque = deque(submit(job) for job in islice(pending, window))
    try:
        while in_flight:
            value = result(in_flight[0])
            in_flight.popleft()
            job = next(pending, None)
            if job is not None:
                in_flight.append(submit(job))
            yield value
    finally:
        for handle in in_flight:
            cancel(handle)


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _one_math_thread() -> None:
    """Pool worker start-up: one math thread per worker process.

    Each worker runs on its own core; torch's default of one thread per core in *every* worker
    oversubscribes the machine, and its spinning threads made 2-worker policy rollouts about ten
    times slower on 2 cores (measured). Set before torch is imported, so its pool obeys.
    """
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _pool_ordered(fn: Callable[..., R], jobs: Sequence[tuple], *, workers: int) -> Iterator[R]:
    """The jobs on a pool of fresh ``forkserver`` processes (``spawn`` off POSIX)."""
    context = get_context("forkserver" if os.name == "posix" else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_one_math_thread
    )
    try:
        yield from _windowed(
            lambda job: pool.submit(fn, *job),
            lambda future: future.result(),
            lambda future: future.cancel(),
            jobs,
            2 * workers,
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_ordered(
    fn: Callable[..., R], jobs: Sequence[tuple], *, workers: int, address: str | None
) -> Iterator[R]:
    """One Ray task per job; starts (and at the end stops) a local Ray unless one is running."""
    import ray

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    remote = ray.remote(num_cpus=1)(fn)
    try:
        yield from _windowed(
            lambda job: remote.remote(*job), ray.get, ray.cancel, jobs, 2 * workers
        )
    finally:
        if started:
            ray.shutdown()
