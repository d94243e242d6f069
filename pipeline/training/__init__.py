"""Feeding training jobs from a store: numpy batches (framework-free) and PyTorch datasets.

PyTorch is optional (``pip install 'audio-feature-pipeline[train]'``): :mod:`.torch_data`,
:mod:`.models` and :mod:`.train` import it when used.
"""

from __future__ import annotations

from .batches import ChunkSource, Standardizer, classes_of, iter_batches, shard_chunks, standardizer

__all__ = ["ChunkSource", "Standardizer", "classes_of", "iter_batches", "shard_chunks", "standardizer"]
