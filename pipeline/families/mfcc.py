"""``mfcc``: mel-frequency cepstral coefficients."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .axes import MFCC_COEF
from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..filterbanks import dct_basis, per_segment_product
    from ..spectrum import clip_top_db

    # top_db clips at each segment's peak, over all its frames (silent ones included)
    clipped = clip_top_db(inputs.mel_db, 80.0)
    # every segment's product has the config's shape: its bits are the segment's own
    full = np.full(inputs.n, config.n_frames)
    return {"mfcc": per_segment_product(clipped, dct_basis(config.n_mels, config.n_mfcc), full)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    return {"mfcc": librosa.feature.mfcc(y=y, sr=config.sr, n_mfcc=config.n_mfcc, n_mels=config.n_mels, fmin=config.fmin,
                                         fmax=config.fmax, n_fft=config.n_fft, hop_length=config.hop_length).T}


FAMILY = register(Family(
    name="mfcc", version="1",
    variables=(Variable("mfcc", "librosa.feature.mfcc (DCT-II ortho of power_to_db(mel), top_db=80)", "1", MFCC_COEF,
                        tolerance="coefficients"),),
    compute=compute, reference_fn=reference, consumes=("mel_db",), default=True,
    reference="mfcc(y, sr, n_mfcc, n_fft, hop_length, n_mels, fmin, fmax)",
    origin={"module": __name__},
))
