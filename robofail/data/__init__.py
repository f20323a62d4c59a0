"""Episode records and their HDF5 store.

The records (:mod:`robofail.data.episode`) need only numpy; the store
(:mod:`robofail.data.store`) needs h5py, from the ``sim`` extra, and is imported on first use.
"""

from typing import Any

from robofail.data.episode import NO_FAILURE, DatasetInfo, Episode, EpisodeLabel

_STORE_NAMES = ("Dataset", "ShardedWriter", "open_dataset", "read_episodes", "write_episodes")

__all__ = ["NO_FAILURE", "DatasetInfo", "Episode", "EpisodeLabel", *_STORE_NAMES]


def __getattr__(name: str) -> Any:
    """Import the HDF5 store names lazily, so the records work without h5py."""
    if name in _STORE_NAMES:
        from robofail.data import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
