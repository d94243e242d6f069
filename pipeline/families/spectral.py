"""``spectral``: spectral centroid, bandwidth and rolloff."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..features import spectral_shape

    return {name: inputs.extend(values, 0.0) for name, values in spectral_shape(inputs.magnitude, inputs.live, config).items()}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    kw: dict[str, Any] = {"y": y, "sr": config.sr, "n_fft": config.n_fft, "hop_length": config.hop_length}
    return {"spectral_centroid": librosa.feature.spectral_centroid(**kw)[0],
            "spectral_bandwidth": librosa.feature.spectral_bandwidth(**kw)[0],
            "spectral_rolloff": librosa.feature.spectral_rolloff(**kw)[0]}


FAMILY = register(Family(
    name="spectral", version="1",
    variables=(
        Variable("spectral_centroid", "librosa.feature.spectral_centroid of |stft|", "Hz"),
        Variable("spectral_bandwidth", "librosa.feature.spectral_bandwidth of |stft|, p=2", "Hz"),
        Variable("spectral_rolloff", "librosa.feature.spectral_rolloff of |stft|, roll_percent=0.85", "Hz"),
    ),
    # float32 spectra: a tone's bandwidth is up to 21x its tolerance (the transform's noise floor,
    # weighted by the squared distance to the centroid)
    compute=compute, reference_fn=reference, consumes=("magnitude",), default=True, figure="lines", float64_stft=True,
    reference="spectral_centroid, spectral_bandwidth, spectral_rolloff (y, sr, n_fft, hop_length)",
    origin={"module": __name__},
))
