"""Feeding training jobs from a store: numpy batches (framework-free) and PyTorch datasets.

PyTorch is optional (``pip install 'audio-feature-pipeline[train]'``): :mod:`.torch_data`,
:mod:`.models` and :mod:`.train` import it when used.
"""

from __future__ import annotations

from .batches import (
    ChunkSource,
    Standardizer,
    batches_per_rank,
    classes_of,
    iter_batches,
    rows_per_rank,
    shard_rows,
    standardizer,
)

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
