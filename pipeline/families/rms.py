"""``rms``: the root-mean-square energy of the waveform."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..features import rms

    return {"rms": rms(y=inputs.waveform, frame_length=config.n_fft, hop_length=config.hop_length)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    return {"rms": librosa.feature.rms(y=y, frame_length=config.n_fft, hop_length=config.hop_length)[0]}


FAMILY = register(Family(
    name="rms", version="1",
    variables=(Variable("rms", "librosa.feature.rms of the waveform, frame_length=n_fft", "1"),),
    compute=compute, reference_fn=reference, consumes=("waveform",), default=True, figure="lines",
    reference="rms(y, frame_length=n_fft, hop_length)",
    origin={"module": __name__},
))
