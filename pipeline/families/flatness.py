"""``flatness``: the spectral flatness (Wiener entropy) of the power spectrum."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs

#: librosa's floor of the power spectrum (``amin``)
AMIN = 1e-10


def flatness_from_power(power: np.ndarray) -> np.ndarray:
    """``librosa.feature.spectral_flatness(S=sqrt(power), power=2)`` of each frame, bit for bit.

    librosa averages over the bins of its Fortran-ordered ``(bins, frames)`` spectrogram: along
    contiguous memory, numpy's float32 pairwise sum of each frame's bins. The bins of a frame
    are contiguous here too: the same sums, whatever the batch.

    Parameters
    ----------
    power : np.ndarray [shape=(n, frames, bins), dtype=float32]
        Power spectrogram ``|STFT|^2``, C-contiguous.

    Returns
    -------
    flatness : np.ndarray [shape=(n, frames), dtype=float32]
        Geometric over arithmetic mean of ``max(power, 1e-10)``: in ``(0, 1]`` (up to rounding).
    """
    floored = np.ascontiguousarray(np.maximum(np.float32(AMIN), power))
    flatness: np.ndarray = np.exp(np.mean(np.log(floored), axis=-1)) / np.mean(floored, axis=-1)
    return flatness


def silent_flatness(n_freq: int) -> float:
    """The flatness of a zero spectrum of ``n_freq`` bins (``1`` up to rounding)."""
    return float(flatness_from_power(np.zeros((1, 1, n_freq), dtype=np.float32))[0, 0])


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    return {"spectral_flatness": inputs.extend(flatness_from_power(inputs.power), silent_flatness(config.n_freq))}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    flatness = librosa.feature.spectral_flatness(y=y, n_fft=config.n_fft, hop_length=config.hop_length)
    return {"spectral_flatness": flatness[0]}


FAMILY = register(Family(
    name="flatness", version="1",
    variables=(Variable("spectral_flatness",
                        "librosa.feature.spectral_flatness of |stft|^2 (amin=1e-10): geometric over arithmetic mean",
                        "1"),),
    compute=compute, reference_fn=reference, consumes=("power",), figure="lines",
    reference="spectral_flatness(y, n_fft, hop_length, power=2.0, amin=1e-10)",
    origin={"module": __name__},
))
