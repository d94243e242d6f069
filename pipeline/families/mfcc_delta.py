"""``mfcc_delta``: the first and second time derivatives of the mfcc family's coefficients."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .axes import MFCC_COEF
from .registry import Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs

#: librosa.feature.delta's default window (frames)
WIDTH = 9


def check(config: FeatureConfig) -> None:
    if config.n_frames < WIDTH:
        raise ConfigError(f"Expected segments of at least {WIDTH} frames for the mfcc_delta family, got {config.n_frames}")


@lru_cache(maxsize=16)
def delta_taps(n_frames: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``librosa.feature.delta(width=9, order=order, mode='interp')`` as 9 taps per frame.

    The Savitzky-Golay derivative (polynomial order ``order``) is linear in the data: frame
    ``t`` of the result is ``sum_j weights[t, j] * x[start[t] + j]``, the interior frames
    the filter's taps around ``t``, the first and last ``WIDTH // 2`` frames the derivative of
    the polynomial fitted to the first (last) ``WIDTH`` frames: scipy's ``savgol_filter`` of
    the identity (:func:`pipeline.dsp.savgol_deriv_taps`).

    Parameters
    ----------
    n_frames : int >= WIDTH [scalar]
        Frames of the sequence.
    order : int in {1, 2} [scalar]
        Derivative order.

    Returns
    -------
    start : np.ndarray [shape=(n_frames,), dtype=int64]
        First frame each output frame reads.
    weights : np.ndarray [shape=(n_frames, WIDTH), dtype=float64]
        Read-only, cached.
    """
    from ..dsp import savgol_deriv_taps

    start, weights = savgol_deriv_taps(n_frames, WIDTH, order)
    for array in (start, weights):
        array.setflags(write=False)
    return start, weights


def delta(mfcc: np.ndarray, *, order: int) -> np.ndarray:
    """``librosa.feature.delta(mfcc[i].T, order=order).T`` for each segment (width 9, interp).

    Elementwise over the batch: a float64 sum of the 9 taps, in a fixed order, per value.

    Parameters
    ----------
    mfcc : np.ndarray [shape=(n, frames, n_mfcc)]
        Coefficients over every frame of the segments.
    order : int in {1, 2} [scalar]
        Derivative order.

    Returns
    -------
    np.ndarray [shape=(n, frames, n_mfcc), dtype=float32]
    """
    start, weights = delta_taps(mfcc.shape[1], order)
    x = mfcc.astype(np.float64)
    out = np.zeros(x.shape)
    for j in range(WIDTH):
        out += weights[None, :, j, None] * x[:, start + j]
    return out.astype(np.float32)


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    mfcc = inputs.family("mfcc")["mfcc"]
    return {"mfcc_delta": delta(mfcc, order=1), "mfcc_delta2": delta(mfcc, order=2)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa
    from .registry import family

    mfcc_reference = family("mfcc").reference_fn
    if mfcc_reference is None:
        raise AssertionError("Expected the mfcc family to declare a reference, got none")
    mfcc = mfcc_reference(y, config)["mfcc"].T
    return {"mfcc_delta": librosa.feature.delta(mfcc, order=1).T, "mfcc_delta2": librosa.feature.delta(mfcc, order=2).T}


FAMILY = register(Family(
    name="mfcc_delta", version="1",
    variables=(
        Variable("mfcc_delta", "librosa.feature.delta of the mfcc family's coefficients (width 9, order 1, mode interp)",
                 "1", MFCC_COEF, tolerance="coefficients"),
        Variable("mfcc_delta2", "librosa.feature.delta of the mfcc family's coefficients (width 9, order 2, mode interp)",
                 "1", MFCC_COEF, tolerance="coefficients"),
    ),
    compute=compute, reference_fn=reference, consumes=("family:mfcc",), check=check,
    reference="delta(mfcc(y, sr, n_mfcc, n_fft, hop_length, n_mels, fmin, fmax), width=9, order=1 and 2)",
    origin={"module": __name__},
))
