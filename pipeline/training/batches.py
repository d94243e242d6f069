"""Framework-free batches from a store: whole-chunk reads, shuffled chunk order and buffer,
sharded by distributed rank and then by DataLoader worker, deterministic for (seed, epoch).

Every rank yields the same number of batches per epoch (:func:`batches_per_rank`), whatever the
number of DataLoader workers and the rows per chunk, so DDP's collectives never wait on a rank
that has run out of data. Only visible segments are served (complete chunks, valid audio, files
that did not fail), and splits are by file (the store's ``split`` coordinate), so no file is in
two splits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from ..errors import InputError
from ..families import is_frame_dim
from ..query import check_split
from ..standardize import moments
from ..store import as_text, open_group, open_store, zarr_array

__all__ = [
    "ChunkSource",
    "Standardizer",
    "batches_per_rank",
    "classes_of",
    "iter_batches",
    "rows_per_rank",
    "shard_rows",
    "standardizer",
]


def _dataset(store: str | xr.Dataset, storage_options: Mapping[str, Any] | None) -> xr.Dataset:
    if isinstance(store, xr.Dataset):
        if "segment" not in store.indexes:
            raise InputError("Expected a dataset from pipeline.open_store (with a `segment` index), got another dataset")
        return store
    return open_store(store, storage_options)


def classes_of(ds: xr.Dataset) -> list[str]:
    """Sorted non-empty labels of the visible segments: class ``i`` is ``classes[i]``."""
    return sorted({str(v) for v in as_text(ds["label"]) if str(v)})


@dataclass
class ChunkSource:
    """Where the visible rows of one split live, chunk by chunk.

    ``runs[i] = (chunk, start, stop)``: positions ``[start, stop)`` of the (visible) dataset
    belong to store chunk ``chunk``; reading them reads exactly one chunk of every variable.
    Built from a URL, reads go straight to Zarr (no xarray or dask on the hot path); built from
    a dataset, they go through it.
    """

    ds: xr.Dataset
    split: str | None
    classes: list[str]
    runs: list[tuple[int, int, int]] = field(default_factory=list)
    url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    _group: Any = field(default=None, repr=False)
    _codes: tuple[tuple[str, ...], np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, store: str | xr.Dataset, *, split: str | None = None, classes: Sequence[str] | None = None,
              storage_options: Mapping[str, Any] | None = None) -> ChunkSource:
        if split is not None:
            check_split(split)
        ds = _dataset(store, storage_options)
        labels = as_text(ds["label"])
        keep = labels != ""
        if split is not None:
            keep &= as_text(ds["split"]) == split
        ds = ds.isel(segment=np.flatnonzero(keep))
        chunk = int(ds.attrs["segment_chunk"])
        owner = np.asarray(ds["segment"].values) // chunk
        runs: list[tuple[int, int, int]] = []
        if owner.size:
            cuts = np.flatnonzero(np.diff(owner)) + 1
            starts = np.concatenate([[0], cuts])
            stops = np.concatenate([cuts, [owner.size]])
            runs = [(int(owner[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
        return cls(ds=ds, split=split, classes=list(classes) if classes is not None else classes_of(ds), runs=runs,
                   url=store if isinstance(store, str) else None, storage_options=dict(storage_options or {}))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_group"] = None  # reopened in the receiving process
        return state

    @property
    def n_segments(self) -> int:
        return int(self.ds.sizes["segment"])

    def _label_codes(self) -> np.ndarray:
        key = tuple(self.classes)
        if self._codes is None or self._codes[0] != key:
            lookup = {name: i for i, name in enumerate(self.classes)}
            codes = np.array([lookup.get(str(v), -1) for v in as_text(self.ds["label"])], dtype=np.int64)
            self._codes = (key, codes)
        return self._codes[1]

    def read(self, run: tuple[int, int, int], variables: Sequence[str]) -> dict[str, np.ndarray]:
        """All requested variables (plus label codes and segment ids) of one run, or of positions
        ``[start, stop)`` within one run."""
        _, start, stop = run
        segments = np.asarray(self.ds["segment"].values[start:stop], dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        if self.url is not None:
            if self._group is None:
                self._group = open_group(self.url, self.storage_options, mode="r")
            rows = segments - segments[0]
            contiguous = bool(rows[-1] == rows.size - 1)
            for name in variables:
                block = np.asarray(zarr_array(self._group, name)[int(segments[0]) : int(segments[-1]) + 1])
                out[name] = block if contiguous else block[rows]
        else:
            part = self.ds.isel(segment=slice(start, stop))
            # one chunk per variable: no thread pool needed, and none to break in a forked
            # DataLoader worker (dask's default pool does not survive a fork)
            with dask.config.set(scheduler="synchronous"):
                out = {name: np.asarray(part[name].values) for name in variables}
        out["label"] = self._label_codes()[start:stop]
        out["segment"] = segments
        return out


def _run_order(n_runs: int, *, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The epoch's run order, the same on every rank and worker."""
    if shuffle:
        return np.random.default_rng([seed, epoch]).permutation(n_runs)
    return np.arange(n_runs)


def _check_sharding(batch_size: int, rank: int, world_size: int, worker: int = 0, num_workers: int = 1) -> None:
    if batch_size < 1:
        raise InputError(f"Expected batch_size >= 1, got {batch_size}")
    if world_size < 1 or num_workers < 1:
        raise InputError(f"Expected world_size, num_workers >= 1, got {world_size}, {num_workers}")
    if not 0 <= rank < world_size:
        raise InputError(f"Expected 0 <= rank < world_size ({world_size}), got {rank}")
    if not 0 <= worker < num_workers:
        raise InputError(f"Expected 0 <= worker < num_workers ({num_workers}), got {worker}")


def rows_per_rank(n_rows: int, world_size: int = 1) -> int:
    """Rows every rank is dealt per epoch: ``n_rows // world_size``.

    The ``n_rows % world_size`` rows left over (fewer than ``world_size``; none for one rank)
    are not served that epoch; they are the last rows of the epoch's shuffled chunk order, so
    different rows each epoch when shuffling.
    """
    if n_rows < 0 or world_size < 1:
        raise InputError(f"Expected n_rows >= 0 and world_size >= 1, got {n_rows}, {world_size}")
    return n_rows // world_size


def batches_per_rank(n_rows: int, *, batch_size: int, world_size: int = 1, drop_last: bool = False) -> int:
    """Batches every rank yields per epoch, whatever the number of DataLoader workers.

    Parameters
    ----------
    n_rows : visible rows of the split (``ChunkSource.n_segments``)
    batch_size : rows per batch
    world_size : number of ranks
    drop_last : drop the rank's last, partial batch

    Returns
    -------
    int
        ``ceil(rows / batch_size)``, or ``floor(rows / batch_size)`` with ``drop_last``, where
        ``rows = n_rows // world_size`` (:func:`rows_per_rank`). At most one batch of a rank is
        partial, and it has the same size (``rows % batch_size``) on every rank.
    """
    _check_sharding(batch_size, 0, world_size)
    rows = rows_per_rank(n_rows, world_size)
    return rows // batch_size if drop_last else -(-rows // batch_size)


def shard_rows(
    run_sizes: Sequence[int],
    *,
    seed: int,
    epoch: int,
    shuffle: bool,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    worker: int = 0,
    num_workers: int = 1,
    drop_last: bool = False,
) -> list[tuple[int, int, int]]:
    """The rows one DataLoader worker of one rank reads in an epoch, as pieces of runs.

    Computed from the run sizes alone (no communication), identically in every process. The
    runs are ordered by one permutation of ``(seed, epoch)`` shared by all ranks, and their rows
    laid end to end. Rank ``r`` is dealt the ``rows_per_rank(n, world_size)`` rows starting at
    ``r * rows_per_rank(n, world_size)``: contiguous, so whole runs except at most two split at
    its ends, and disjoint from the other ranks. Its :func:`batches_per_rank` batches are then
    split between its workers in order, as evenly as whole batches allow (the first
    ``batches % num_workers`` workers get one more); a worker reads the rows of its batches, so
    only the worker holding the rank's last batch can end on a partial batch.

    Parameters
    ----------
    run_sizes : rows of each run (``stop - start`` of ``ChunkSource.runs``)
    seed, epoch, shuffle : the run order (store order when ``shuffle`` is false)
    batch_size : rows per batch
    rank, world_size : this rank and the number of ranks
    worker, num_workers : this DataLoader worker and the number of workers (``0`` and ``1``
        without DataLoader workers)
    drop_last : do not deal the rows of the rank's last, partial batch

    Returns
    -------
    list of (run, start, stop)
        Rows ``[start, stop)`` (relative to the run) of run index ``run``, in reading order.
    """
    _check_sharding(batch_size, rank, world_size, worker, num_workers)
    sizes = np.asarray(run_sizes, dtype=np.int64).reshape(-1)
    if (sizes < 0).any():
        raise InputError(f"Expected run sizes >= 0, got {sizes[sizes < 0].tolist()}")
    per_rank = rows_per_rank(int(sizes.sum()), world_size)
    n_batches = batches_per_rank(int(sizes.sum()), batch_size=batch_size, world_size=world_size, drop_last=drop_last)
    dealt = min(per_rank, n_batches * batch_size)
    first = worker * (n_batches // num_workers) + min(worker, n_batches % num_workers)
    count = n_batches // num_workers + int(worker < n_batches % num_workers)
    lo = rank * per_rank + min(first * batch_size, dealt)
    hi = rank * per_rank + min((first + count) * batch_size, dealt)
    order = _run_order(sizes.size, seed=seed, epoch=epoch, shuffle=shuffle)
    stops = np.cumsum(sizes[order])
    starts = stops - sizes[order]
    pieces: list[tuple[int, int, int]] = []
    for j in np.flatnonzero((starts < hi) & (stops > lo)):
        a, b = max(lo, int(starts[j])), min(hi, int(stops[j]))
        if a < b:
            pieces.append((int(order[j]), a - int(starts[j]), b - int(starts[j])))
    return pieces


def iter_batches(
    store: str | xr.Dataset | ChunkSource,
    variables: Sequence[str],
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    split: str | None = "train",
    *,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    worker: int = 0,
    num_workers: int = 1,
    buffer_chunks: int = 4,
    drop_last: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Numpy batches ``{variable: array, "label": int64 codes, "segment": store indices}``.

    Chunks are read whole (but for the rows of a chunk split between two shards); chunk order is
    shuffled with ``(seed, epoch)``; rows are shuffled within a buffer of ``buffer_chunks``
    chunks. The rows are sharded by rank, then by
    DataLoader worker (:func:`shard_rows`): every rank yields exactly
    :func:`batches_per_rank` batches, summed over its ``num_workers`` workers, ranks never share
    a row, and with ``world_size=1`` every visible row is served once per epoch. With more ranks
    the ``n % world_size`` last rows of the epoch's chunk order are not served. Batches hold
    ``batch_size`` rows except one per rank, which holds ``(n // world_size) % batch_size`` rows
    on every rank and is dropped with ``drop_last``.
    """
    if buffer_chunks < 1:
        raise InputError(f"Expected buffer_chunks >= 1, got {buffer_chunks}")
    _check_sharding(batch_size, rank, world_size, worker, num_workers)
    source = store if isinstance(store, ChunkSource) else ChunkSource.build(store, split=split, storage_options=storage_options)
    missing = [v for v in variables if v not in source.ds.data_vars]
    if missing:
        raise InputError(f"Expected variables of the store ({', '.join(map(str, source.ds.data_vars))}), got unknown {', '.join(missing)}")
    pieces = shard_rows([stop - start for _, start, stop in source.runs], seed=seed, epoch=epoch, shuffle=shuffle,
                        batch_size=batch_size, rank=rank, world_size=world_size, worker=worker,
                        num_workers=num_workers, drop_last=drop_last)
    rng = np.random.default_rng([seed, epoch, rank * num_workers + worker])
    pending: dict[str, np.ndarray] | None = None
    for first in range(0, len(pieces), buffer_chunks):
        parts = []
        for run, lo, hi in pieces[first : first + buffer_chunks]:
            chunk, start, _ = source.runs[run]
            parts.append(source.read((chunk, start + lo, start + hi), variables))
        buffer = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if pending is not None:
            buffer = {k: np.concatenate([pending[k], buffer[k]]) for k in buffer}
        n = buffer["label"].size
        perm = rng.permutation(n) if shuffle else np.arange(n)
        full = n - n % batch_size
        for b in range(0, full, batch_size):
            idx = perm[b : b + batch_size]
            yield {k: v[idx] for k, v in buffer.items()}
        pending = {k: v[perm[full:]] for k, v in buffer.items()}
    # shard_rows deals a partial batch to at most the rank's last worker, and none with drop_last
    if pending is not None and pending["label"].size:
        yield pending


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and std (from the train split), applied as ``(x - mean) / std``."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    def __call__(self, name: str, values: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((values - self.mean[name]) / self.std[name]).astype(np.float32)
        return out

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        return {name: {"mean": np.ravel(self.mean[name]).tolist(), "std": np.ravel(self.std[name]).tolist()} for name in self.mean}


def standardizer(store: str | xr.Dataset, variables: Sequence[str], *, split: str | None = "train",
                 storage_options: Mapping[str, Any] | None = None) -> Standardizer:
    """Statistics computed lazily (Dask) over one split: per bin, over segments and frames.

    Parameters
    ----------
    store : str or xr.Dataset
        A store path/URL or the dataset :func:`pipeline.store.open_store` returns.
    variables : sequence of str
        Store variables to standardise (summary or frame-level).
    split : {"train", "val", "test"} or None
        Segments to compute the statistics over (``None``: every visible segment).
    storage_options : mapping, optional
        fsspec options for a store URL.

    Returns
    -------
    Standardizer
        float32 mean and std per bin (:func:`pipeline.standardize.moments`, NaN skipped); a
        std not above 1e-12 is replaced by 1.

    Raises
    ------
    InputError
        Bad split, or no segments in it.
    """
    if split is not None:
        check_split(split)
    ds = _dataset(store, storage_options)
    if split is not None:
        ds = ds.isel(segment=np.flatnonzero(as_text(ds["split"]) == split))
    if ds.sizes["segment"] == 0:
        raise InputError(f"Expected segments in split {split!r} to compute statistics from, got none")
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray] = {}
    for name in variables:
        var = ds[name]
        axes = [i for i, dim in enumerate(var.dims) if dim == "segment" or is_frame_dim(str(dim))]
        means[name], stds[name] = moments(var.data, axes, skipna=True, floor=1e-12, dtype=np.float32)
    return Standardizer(mean=means, std=stds)
