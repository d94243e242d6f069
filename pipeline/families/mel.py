"""``mel``: the log-power mel spectrogram."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .axes import MEL_BAND
from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    return {"mel": inputs.mel_db}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=config.sr, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
                                         n_fft=config.n_fft, hop_length=config.hop_length)
    return {"mel": librosa.power_to_db(mel, ref=1.0, top_db=None).T}


FAMILY = register(Family(
    name="mel", version="1",
    variables=(Variable("mel", "power_to_db(melspectrogram(power=2), ref=1.0, top_db=None)", "dB", MEL_BAND, tolerance="db"),),
    compute=compute, reference_fn=reference, consumes=("mel_db",), default=True,
    reference="power_to_db(melspectrogram(y, sr, n_fft, hop_length, n_mels, fmin, fmax), ref=1.0, top_db=None)",
    origin={"module": __name__},
))
