"""Distributed audio feature pipeline: audio corpora into labeled xarray/Zarr feature stores.

The heavy parts (Dask, xarray, librosa) are imported when first used (PEP 562), so that
``audio-pipeline --help``, ``info`` and ``query`` start without the kernels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .graph import extract
    from .query import query
    from .results import ExtractReport
    from .similar import similar
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

#: public names imported on first use, and the module each lives in
_LAZY = {
    "ExtractReport": ".results", "extract": ".graph",
    "query": ".query", "similar": ".similar",
    "completeness": ".store", "open_raw": ".store", "open_store": ".store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
