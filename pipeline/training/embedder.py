"""A trained model (from ``train``) as a function from store variables to embedding vectors.

The embedding of a segment is the model's penultimate layer: for the CNN, the globally pooled
channels before the linear head; for the MLP, the last hidden layer. Inputs are standardised
with the statistics the model was trained with, exactly as the training loader fed them.
A model is its ``model.json`` plus its weights as plain float arrays, so that it can be kept in
a store without pickle (:mod:`pipeline.embed`) and read back bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["Embedder", "TrainedModel", "load_model_dir"]

#: the model.json keys that define a model (anything else there is informative)
_DEFINITION = ("model", "classes", "variables", "standardize", "feature_config")


@dataclass(frozen=True)
class TrainedModel:
    """What ``train -o MODEL_DIR`` wrote: the definition (``model.json``) and the weights."""

    spec: dict[str, Any]
    weights: dict[str, np.ndarray] = field(repr=False)

    @property
    def kind(self) -> str:
        return str(self.spec["model"])

    @property
    def variables(self) -> list[str]:
        return [str(v) for v in self.spec["variables"]]

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.spec["classes"]]

    @property
    def feature_config(self) -> dict[str, Any]:
        return dict(self.spec.get("feature_config") or {})

    @property
    def sha256(self) -> str:
        """A digest of the definition and every weight (names, shapes, dtypes, bytes)."""
        digest = hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode())
        for name in sorted(self.weights):
            value = np.ascontiguousarray(self.weights[name])
            digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()


def load_model_dir(path: str) -> TrainedModel:
    """Read ``model.json`` and ``model.pt`` of a directory written by ``train -o``.

    Raises
    ------
    InputError
        Not such a directory, or files that do not hold a model of this package.
    """
    torch = _torch()
    spec_path, weights_path = os.path.join(path, "model.json"), os.path.join(path, "model.pt")
    if not (os.path.isfile(spec_path) and os.path.isfile(weights_path)):
        raise InputError(f"Expected a model directory written by `train -o` (model.json, model.pt), got {path}")
    try:
        with open(spec_path) as handle:
            raw = json.load(handle)
        spec = {key: raw[key] for key in _DEFINITION}
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        weights = {str(k): v.detach().cpu().numpy().copy() for k, v in state.items()}
    except (OSError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise InputError(f"Expected a model written by `train -o` in {path}, got an unreadable one: {exc}") from exc
    if spec["model"] not in ("mlp", "cnn"):
        raise InputError(f"Expected a model mlp or cnn in {spec_path}, got {spec['model']!r}")
    return TrainedModel(spec=spec, weights=weights)


def _torch() -> Any:
    from ._torch import require_torch

    return require_torch()


class Embedder:
    """``embedder(arrays) -> (n, dim)`` float32 penultimate-layer vectors of a trained model.

    Parameters
    ----------
    model : TrainedModel
        The model; ``arrays`` passed to the call hold its ``variables``.
    """

    def __init__(self, model: TrainedModel) -> None:
        from .models import build_model

        torch = _torch()
        self.model = model
        n_inputs = sum(int(np.prod(np.shape(model.spec["standardize"][name]["mean"]))) for name in model.variables)
        net = build_model(model.kind, n_inputs=max(n_inputs, 1), n_classes=len(model.classes))
        try:
            net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in model.weights.items()})
        except RuntimeError as exc:
            raise InputError(f"Expected weights of a {model.kind} model, got others: {str(exc).splitlines()[0]}") from exc
        net.eval()
        self._body = net[:-1]
        self._torch = torch
        self.dim = int(net[-1].in_features)

    def _inputs(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The network's input, standardised as the training loader standardised it."""
        parts = []
        for name in self.model.variables:
            values = np.asarray(arrays[name], dtype=np.float32)
            stats = self.model.spec["standardize"][name]
            mean, std = (np.asarray(stats[k], dtype=np.float32) for k in ("mean", "std"))
            shape = _trailing(values.shape[1:], mean.size)
            parts.append(((values - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32))
        if len(parts) == 1 and parts[0].ndim == 3:
            return parts[0][:, None, :, :]
        return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        x = self._inputs(arrays)
        with self._torch.inference_mode():
            out = self._body(self._torch.from_numpy(np.ascontiguousarray(x)))
        return np.asarray(out.numpy(), dtype=np.float32).reshape(x.shape[0], self.dim)


def _trailing(shape: tuple[int, ...], size: int) -> tuple[int, ...]:
    """The shortest suffix of ``shape`` holding ``size`` values (statistics are per bin)."""
    for start in range(len(shape), -1, -1):
        if int(np.prod(shape[start:], dtype=np.int64)) == size:
            return shape[start:]
    raise InputError(f"Expected statistics of {size} values to fit inputs shaped {shape}, got no such axes")
