"""Guarded import of PyTorch: a clear error when the optional extra is missing."""

from __future__ import annotations

from types import ModuleType

__all__ = ["require_torch"]


def require_torch() -> ModuleType:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "PyTorch is needed for training: pip install 'audio-feature-pipeline[train]'"
        ) from exc
    return torch
