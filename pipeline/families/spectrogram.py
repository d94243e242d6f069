"""``spectrogram``: the STFT's magnitude in dB."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .axes import FREQ
from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..spectrum import SILENT_DB, power_to_db

    return {"spectrogram": inputs.extend(power_to_db(S=inputs.power), SILENT_DB)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    stft = librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)
    return {"spectrogram": librosa.amplitude_to_db(np.abs(stft), ref=1.0, top_db=None).T}


FAMILY = register(Family(
    name="spectrogram", version="1",
    variables=(Variable("spectrogram", "amplitude_to_db(|stft|, ref=1.0, top_db=None)", "dB", FREQ, tolerance="db"),),
    compute=compute, reference_fn=reference, consumes=("power",),
    reference="amplitude_to_db(abs(stft(y, n_fft, hop_length)), ref=1.0, top_db=None)",
    origin={"module": __name__},
))
