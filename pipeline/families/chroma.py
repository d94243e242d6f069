"""``chroma``: the chromagram of the power spectrum, with each segment's tuning."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from .axes import PITCH_CLASS
from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..features import chroma_from_power

    return {"chroma": inputs.extend(chroma_from_power(inputs.power, inputs.live, config), 0.0)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    with warnings.catch_warnings():
        # silence has no pitch to estimate tuning from: librosa warns and uses 0
        warnings.filterwarnings("ignore", "Trying to estimate tuning", UserWarning)
        chroma = librosa.feature.chroma_stft(y=y, sr=config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
                                             n_chroma=config.n_chroma)
    return {"chroma": chroma.T}


FAMILY = register(Family(
    name="chroma", version="1",
    variables=(Variable("chroma", "librosa.feature.chroma_stft (tuning estimated per segment), max-normalised per frame",
                        "1", PITCH_CLASS),),
    # the tuning estimate is an argmax the last bits of the power spectrum can tip
    compute=compute, reference_fn=reference, consumes=("power",), default=True, float64_stft=True,
    reference="chroma_stft(y, sr, n_fft, hop_length)",
    origin={"module": __name__},
))
