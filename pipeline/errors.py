"""Exception hierarchy: one root, each error also subclassing the matching builtin."""

from __future__ import annotations

__all__ = [
    "MESSAGE_LIMIT",
    "ConfigError",
    "ConfigMismatch",
    "DecodeError",
    "FamilyError",
    "InputError",
    "PipelineError",
    "SchedulerError",
    "SchemaError",
    "StorageError",
    "StoreBusy",
    "ToolError",
    "one_line",
]


#: the longest message a file's error or warning in the store holds (and a storage error quotes)
MESSAGE_LIMIT = 500


def one_line(exc: BaseException | str, limit: int | None = None) -> str:
    """A message as one line of words: never empty, never a traceback; at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return text if limit is None else text[:limit]


class PipelineError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(PipelineError, ValueError):
    """An option has an invalid value."""


class InputError(PipelineError, ValueError):
    """The inputs cannot be listed: missing path, empty glob, bad labels file."""


class DecodeError(PipelineError, RuntimeError):
    """An audio file cannot be decoded or fails a check (empty, non-finite samples)."""


class FamilyError(PipelineError, RuntimeError):
    """A feature family's kernel failed on a batch (raised, or returned a wrong or non-finite array)."""


class SchemaError(PipelineError, ValueError):
    """A store does not have the layout this package writes."""


class ConfigMismatch(PipelineError, ValueError):
    """A store was made with a different feature configuration."""


class StorageError(PipelineError, OSError):
    """Reading or writing the store or an input failed at the storage layer."""


class SchedulerError(PipelineError, ConnectionError):
    """The Dask scheduler cannot be reached or started."""


class ToolError(PipelineError, RuntimeError):
    """An external program the package runs (espeak-ng, sox) is missing or failed."""


class StoreBusy(StorageError):
    """Another run holds the store's claim (:mod:`pipeline.lock`); exit code 75, try again later."""
