"""The matrices spectra are multiplied by (mel, chroma, DCT, bin moments), and the one way to multiply.

Each basis is built once per parameter set (cached, read-only) and held transposed,
``(bins, m)``, ready to multiply spectra held ``(frames, bins)``. :func:`per_segment_product`
is the only product the kernels use: one BLAS call per segment, so that a segment's numbers
never depend on the batch it came in.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from .dsp import chroma_filters, mel_filters

__all__ = ["bin_moments", "chroma_basis", "dct_basis", "mel_basis", "per_segment_product"]


@lru_cache(maxsize=16)
def mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The mel filterbank, transposed: ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T``.

    Parameters
    ----------
    sr : int > 0 [scalar]
        Sampling rate of the audio.
    n_fft : int > 0 [scalar]
        FFT length of the spectra it multiplies.
    n_mels : int > 0 [scalar]
        Number of mel bands.
    fmin, fmax : float >= 0 [scalar]
        Lowest and highest frequency (Hz) of the bands.

    Returns
    -------
    M_t : np.ndarray [shape=(1 + n_fft // 2, n_mels), dtype=float32]
        C-contiguous, read-only, cached.
    """
    basis = mel_filters(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    out = np.ascontiguousarray(basis.T)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=256)
def chroma_basis(sr: int, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    """The chroma filterbank, transposed: ``librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma).T``.

    Parameters
    ----------
    sr : int > 0 [scalar]
        Sampling rate of the audio.
    n_fft : int > 0 [scalar]
        FFT length of the spectra it multiplies.
    tuning : float [scalar]
        Tuning deviation from A440, in fractions of a chroma bin (:func:`pipeline.tuning.estimate_tuning`).
    n_chroma : int > 0 [scalar]
        Number of chroma bins per octave.

    Returns
    -------
    C_t : np.ndarray [shape=(1 + n_fft // 2, n_chroma), dtype=float32]
        C-contiguous, read-only, cached (one per tuning seen: there are at most 100).
    """
    basis = chroma_filters(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)
    out = np.ascontiguousarray(basis.T)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def dct_basis(n_mels: int, n_mfcc: int) -> np.ndarray:
    """The first ``n_mfcc`` rows of the orthonormal DCT-II, transposed.

    ``x @ dct_basis(n_mels, n_mfcc)`` is ``scipy.fft.dct(x, type=2, norm='ortho', axis=-1)[..., :n_mfcc]``
    (librosa's MFCC step) to within float32 rounding.

    Parameters
    ----------
    n_mels : int > 0 [scalar]
        Length of the transformed axis (mel bands).
    n_mfcc : int > 0 [scalar]
        Number of coefficients kept.

    Returns
    -------
    D_t : np.ndarray [shape=(n_mels, n_mfcc), dtype=float32]
        C-contiguous, read-only, cached.
    """
    out = np.ascontiguousarray(scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].T, dtype=np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def bin_moments(n_freq: int) -> np.ndarray:
    """Columns 1, k, k^2 over the bins ``k`` (float64: the moments are exact sums of products).

    Parameters
    ----------
    n_freq : int > 0 [scalar]
        Number of frequency bins, ``1 + n_fft // 2``.

    Returns
    -------
    K : np.ndarray [shape=(n_freq, 3), dtype=float64]
        Read-only, cached.
    """
    k = np.arange(n_freq, dtype=np.float64)
    out = np.stack([np.ones_like(k), k, k * k], axis=1)
    out.setflags(write=False)
    return out


def per_segment_product(x: np.ndarray, basis: np.ndarray, live: np.ndarray, *, dtype: type = np.float32) -> np.ndarray:
    """``x[i, :live[i]] @ basis`` for each segment ``i``, zero past its live frames.

    One BLAS product per segment, over that segment's own frames only: which rows of a product
    fall in a BLAS kernel's main block and which in its tail (they can round differently) is
    then a function of the segment alone, never of the batch it came in. A segment's features
    are the same bits whatever batch, chunk or run computes them (on one machine). Unchecked:
    the kernels call it on their own arrays.

    Parameters
    ----------
    x : np.ndarray [shape=(n, frames, k)]
        Spectra or other per-frame vectors.
    basis : np.ndarray [shape=(k, m)]
        One of this module's bases.
    live : np.ndarray [shape=(n,), dtype=int]
        Frames of each segment to transform (from the first).
    dtype : type
        dtype of the result (and of the product: ``x`` and ``basis`` should have it).

    Returns
    -------
    np.ndarray [shape=(n, frames, m), dtype=dtype]
    """
    out = np.zeros((*x.shape[:-1], basis.shape[-1]), dtype=dtype)
    for i, k in enumerate(np.minimum(live, x.shape[1]).tolist()):
        if k:
            np.matmul(x[i, :k], basis, out=out[i, :k])
    return out
