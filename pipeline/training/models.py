"""The tutorial's models in PyTorch: an MLP on summary features, a small CNN on mel segments."""

from __future__ import annotations

from typing import Any

from ._torch import require_torch

torch = require_torch()
nn = torch.nn

__all__ = ["build_model", "cnn", "mlp"]


def mlp(n_inputs: int, n_classes: int, *, hidden: tuple[int, ...] = (256, 128, 64), dropout: float = 0.3) -> Any:
    """Dense layers 256-128-64 with ReLU and dropout (the tutorial's Keras ANN)."""
    layers: list[Any] = []
    width = n_inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def cnn(n_classes: int, *, channels: tuple[int, ...] = (16, 32, 64), dropout: float = 0.3) -> Any:
    """Conv-BN-ReLU-MaxPool blocks over (1, frames, mel bands), global average pooling, a linear head."""
    layers: list[Any] = []
    width = 1
    for size in channels:
        layers += [nn.Conv2d(width, size, kernel_size=3, padding=1), nn.BatchNorm2d(size), nn.ReLU(), nn.MaxPool2d(2)]
        width = size
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width, n_classes)]
    return nn.Sequential(*layers)


def build_model(kind: str, *, n_inputs: int, n_classes: int) -> Any:
    if kind == "mlp":
        return mlp(n_inputs, n_classes)
    if kind == "cnn":
        return cnn(n_classes)
    raise ValueError(f"Expected model mlp or cnn, got {kind!r}")
