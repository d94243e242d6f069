"""Framework-free batches from a store: whole-chunk reads, shuffled chunk order and buffer,
sharded by DataLoader worker and by distributed rank, deterministic for (seed, epoch).

Only visible segments are served (complete chunks, valid audio, files that did not fail), and
splits are by file (the store's ``split`` coordinate), so no file is in two splits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from ..errors import InputError
from ..schema import SPLITS
from ..store import as_text, open_group, open_store, zarr_array

__all__ = [
    "ChunkSource",
    "Standardizer",
    "classes_of",
    "iter_batches",
    "shard_chunks",
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
        if split is not None and split not in SPLITS:
            raise InputError(f"Expected split in {', '.join(SPLITS)}, got {split!r}")
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
        """All requested variables (plus label codes and segment ids) of one run."""
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


def shard_chunks(n_runs: int, *, seed: int, epoch: int, shuffle: bool, shard: int, n_shards: int) -> list[int]:
    """The runs one shard reads, in order: one permutation shared by all shards, dealt round-robin.

    Every run goes to exactly one shard (no duplicates, no gaps) for any ``n_shards``.
    """
    if not 0 <= shard < n_shards:
        raise InputError(f"Expected 0 <= shard < {n_shards}, got {shard}")
    order = np.arange(n_runs)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n_runs)
    return [int(i) for i in order[shard::n_shards]]


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

    Whole chunks are read; chunk order is shuffled with ``(seed, epoch)``; rows are shuffled
    within a buffer of ``buffer_chunks`` chunks. Chunks are dealt to ``world_size * num_workers``
    shards; this call yields shard ``rank * num_workers + worker``.
    """
    if batch_size < 1:
        raise InputError(f"Expected batch_size >= 1, got {batch_size}")
    if world_size < 1 or num_workers < 1 or buffer_chunks < 1:
        raise InputError(f"Expected world_size, num_workers, buffer_chunks >= 1, got {world_size}, {num_workers}, {buffer_chunks}")
    source = store if isinstance(store, ChunkSource) else ChunkSource.build(store, split=split, storage_options=storage_options)
    missing = [v for v in variables if v not in source.ds.data_vars]
    if missing:
        raise InputError(f"Expected variables of the store ({', '.join(map(str, source.ds.data_vars))}), got unknown {', '.join(missing)}")
    shard = rank * num_workers + worker
    order = shard_chunks(len(source.runs), seed=seed, epoch=epoch, shuffle=shuffle, shard=shard, n_shards=world_size * num_workers)
    rng = np.random.default_rng([seed, epoch, shard])
    pending: dict[str, np.ndarray] | None = None
    for start in range(0, len(order), buffer_chunks):
        parts = [source.read(source.runs[i], variables) for i in order[start : start + buffer_chunks]]
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
    if pending is not None and pending["label"].size and not drop_last:
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
    """Statistics computed lazily (Dask) over one split: per bin, over segments and frames."""
    ds = _dataset(store, storage_options)
    if split is not None:
        ds = ds.isel(segment=np.flatnonzero(as_text(ds["split"]) == split))
    if ds.sizes["segment"] == 0:
        raise InputError(f"Expected segments in split {split!r} to compute statistics from, got none")
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray] = {}
    for name in variables:
        var = ds[name]
        dims = [d for d in var.dims if d in ("segment", "frame")]
        mean = var.astype(np.float64).mean(dims)
        std = var.astype(np.float64).std(dims)
        m, s = xr.align(mean, std)
        m_np, s_np = np.asarray(m.values, dtype=np.float32), np.asarray(s.values, dtype=np.float32)
        means[name] = m_np
        stds[name] = np.where(s_np > 1e-12, s_np, np.float32(1.0))
    return Standardizer(mean=means, std=stds)
