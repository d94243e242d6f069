"""``tonnetz``: the tonal centroid features of the chroma family's chromagram."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .registry import Axis, Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs

TONNETZ_DIMS: tuple[str, ...] = ("fifths_x", "fifths_y", "minor_x", "minor_y", "major_x", "major_y")

TONNETZ_DIM = Axis(
    "tonnetz_dim", lambda c: len(TONNETZ_DIMS),
    "tonal centroid coordinate: circle of fifths, of minor thirds, of major thirds (x = sin, y = cos)",
    values=lambda c: np.array(TONNETZ_DIMS, dtype=object),
)


@lru_cache(maxsize=8)
def tonnetz_basis(n_chroma: int) -> np.ndarray:
    """librosa's tonal centroid transform, transposed.

    Parameters
    ----------
    n_chroma : int > 0 [scalar]
        Chroma bins per octave.

    Returns
    -------
    phi : np.ndarray [shape=(n_chroma, 6), dtype=float64]
        ``chroma_l1 @ phi`` is ``librosa.feature.tonnetz`` of an L1-normalised chroma frame.
        Read-only, cached.
    """
    dim_map = np.linspace(0, 12, num=n_chroma, endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    V = np.multiply.outer(scale, dim_map)
    V[::2] -= 0.5  # even rows: sin
    R = np.array([1, 1, 1, 1, 0.5, 0.5])  # fifths, minor thirds, major thirds
    phi: np.ndarray = np.ascontiguousarray((R[:, np.newaxis] * np.cos(np.pi * V)).T)
    phi.setflags(write=False)
    return phi


def l1_normalise(chroma: np.ndarray) -> np.ndarray:
    """``librosa.util.normalize(chroma, norm=1)`` along the last axis, float32 as librosa's.

    The float64 L1 norm is summed along each frame's bins (pairwise, as numpy sums librosa's
    Fortran-ordered ``(bins, frames)`` chromagram); a frame whose norm
    is below float32's smallest normal number is left as it is (all zero).

    Parameters
    ----------
    chroma : np.ndarray [shape=(n, frames, n_chroma), dtype=float32]
        Non-negative chromagram.

    Returns
    -------
    np.ndarray [shape=chroma.shape, dtype=float32]
    """
    mag = np.abs(chroma).astype(np.float64)
    length = np.sum(mag, axis=-1, keepdims=True)
    length[length < np.finfo(np.float32).tiny] = 1.0
    normed: np.ndarray = (chroma / length).astype(np.float32)
    return normed


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..filterbanks import per_segment_product

    normed = l1_normalise(inputs.family("chroma")["chroma"]).astype(np.float64)
    # chroma is zero past a segment's live frames, and so is its tonnetz
    ton = per_segment_product(normed, tonnetz_basis(config.n_chroma), inputs.live, dtype=np.float64)
    return {"tonnetz": ton.astype(np.float32)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa
    from .registry import family

    chroma_reference = family("chroma").reference_fn
    if chroma_reference is None:
        raise AssertionError("Expected the chroma family to declare a reference, got none")
    chroma = chroma_reference(y, config)["chroma"].T
    return {"tonnetz": librosa.feature.tonnetz(y=y, sr=config.sr, chroma=chroma).T}


FAMILY = register(Family(
    name="tonnetz", version="1",
    variables=(Variable("tonnetz", "librosa.feature.tonnetz of the chroma family's chromagram (L1-normalised per frame)",
                        "1", TONNETZ_DIM),),
    compute=compute, reference_fn=reference, consumes=("family:chroma",),
    reference="tonnetz(y, sr, chroma=chroma_stft(y, sr, n_fft, hop_length))",
    origin={"module": __name__},
))
