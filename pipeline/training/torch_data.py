"""A PyTorch ``IterableDataset`` over a store: whole chunks, shuffled, sharded by DDP rank and
then by DataLoader worker with the same batch count on every rank, deterministic for (seed,
epoch), standardised with train statistics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._torch import require_torch
from .batches import ChunkSource, Standardizer, batches_per_rank, iter_batches

torch = require_torch()

__all__ = ["SegmentDataset"]


class SegmentDataset(torch.utils.data.IterableDataset):  # type: ignore[misc,name-defined]
    """Yields ready batches ``(inputs, labels)`` as tensors; use ``DataLoader(ds, batch_size=None)``.

    Every rank yields ``len(ds)`` batches per epoch (:func:`~.batches.batches_per_rank`) with any
    number of DataLoader workers, so DDP never waits on a rank that ran out of data: the split's
    ``n`` rows are dealt ``n // world_size`` to each rank (the ``n % world_size`` left over are not
    served that epoch), and a rank's workers share its batches.

    Parameters
    ----------
    store : URL or path of the store (each DataLoader worker opens it itself)
    variables : store variables concatenated (flattened) into the input, e.g. every
        ``*_mean``/``*_std`` for an MLP; or one frame-level variable (``"mel"``) for a CNN, which
        is returned as ``(batch, 1, frames, bins)``
    rank, world_size : the DDP rank; defaults from ``torch.distributed`` when initialised
    drop_last : drop each rank's last, partial batch (it has the same size on every rank)
    return_segments : yield ``(inputs, labels, segments)``, with the store indices of the rows
    """

    def __init__(
        self, store: str, variables: Sequence[str], *, split: str | None = "train", batch_size: int = 64,
        shuffle: bool = True, seed: int = 0, standardize: Standardizer | None = None,
        classes: Sequence[str] | None = None, rank: int | None = None, world_size: int | None = None,
        buffer_chunks: int = 4, drop_last: bool = False, return_segments: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.store, self.variables, self.split = store, list(variables), split
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.standardize, self.buffer_chunks = standardize, buffer_chunks
        self.drop_last, self.return_segments = drop_last, return_segments
        self.storage_options = dict(storage_options or {})
        dist = torch.distributed
        initialised = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if initialised else 0)
        self.world_size = world_size if world_size is not None else (dist.get_world_size() if initialised else 1)
        self._source: ChunkSource | None = None
        self.classes = list(classes) if classes is not None else self.source.classes
        # shared memory: DataLoader workers (forked, spawned, or persistent across epochs) read the
        # epoch set in the main process when they start an epoch, not a copy taken at their start
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def source(self) -> ChunkSource:
        if self._source is None:
            self._source = ChunkSource.build(self.store, split=self.split, storage_options=self.storage_options)
        return self._source

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_source"] = None  # each worker process opens the store itself
        return state

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank, for any number of workers)."""
        return batches_per_rank(self.source.n_segments, batch_size=self.batch_size, world_size=self.world_size,
                                drop_last=self.drop_last)

    @property
    def epoch(self) -> int:
        """The epoch of the next iteration (see :meth:`set_epoch`)."""
        return int(self._epoch.item())

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def set_epoch(self, epoch: int) -> None:
        """Like ``DistributedSampler.set_epoch``: a new shuffle each epoch, the same on every rank.

        Call it before iterating the DataLoader; it also reaches ``persistent_workers``.
        """
        self.epoch = epoch

    def _inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        parts = []
        for name in self.variables:
            values = batch[name].astype(np.float32)
            if self.standardize is not None:
                values = self.standardize(name, values)
            parts.append(values)
        if len(parts) == 1 and parts[0].ndim == 3:
            return parts[0][:, None, :, :]
        return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        source, epoch = self.source, self.epoch
        if self.classes != source.classes:
            source.classes = list(self.classes)
        for batch in iter_batches(
            source, self.variables, self.batch_size, self.shuffle, self.seed, self.split, epoch=epoch,
            rank=self.rank, world_size=self.world_size, worker=worker, num_workers=num_workers,
            buffer_chunks=self.buffer_chunks, drop_last=self.drop_last,
        ):
            inputs, labels = torch.from_numpy(self._inputs(batch)), torch.from_numpy(batch["label"])
            if self.return_segments:
                yield inputs, labels, torch.from_numpy(batch["segment"])
            else:
                yield inputs, labels
