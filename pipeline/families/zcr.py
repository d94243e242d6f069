"""``zcr``: the zero-crossing rate of the waveform."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..features import zero_crossing_rate

    return {"zero_crossing_rate": zero_crossing_rate(y=inputs.waveform, frame_length=config.n_fft, hop_length=config.hop_length)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    return {"zero_crossing_rate": librosa.feature.zero_crossing_rate(y, frame_length=config.n_fft, hop_length=config.hop_length)[0]}


FAMILY = register(Family(
    name="zcr", version="1",
    variables=(Variable("zero_crossing_rate", "librosa.feature.zero_crossing_rate, frame_length=n_fft", "1"),),
    compute=compute, reference_fn=reference, consumes=("waveform",), default=True, figure="lines",
    reference="zero_crossing_rate(y, frame_length=n_fft, hop_length)",
    origin={"module": __name__},
))
