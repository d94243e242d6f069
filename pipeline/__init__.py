"""Distributed audio feature pipeline: audio corpora into labeled xarray/Zarr feature stores."""

from __future__ import annotations

from ._version import __version__
from .config import ALL_FEATURES, DEFAULT_FEATURES, FeatureConfig
from .errors import (
    ConfigError,
    ConfigMismatch,
    DecodeError,
    InputError,
    PipelineError,
    SchedulerError,
    SchemaError,
    StorageError,
)
from .graph import ExtractReport, extract
from .query import query, similar
from .store import completeness, open_raw, open_store

__all__ = [
    "ALL_FEATURES",
    "DEFAULT_FEATURES",
    "ConfigError",
    "ConfigMismatch",
    "DecodeError",
    "ExtractReport",
    "FeatureConfig",
    "InputError",
    "PipelineError",
    "SchedulerError",
    "SchemaError",
    "StorageError",
    "__version__",
    "completeness",
    "extract",
    "open_raw",
    "open_store",
    "query",
    "similar",
]
