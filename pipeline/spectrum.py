"""The spectra every spectral feature derives from: framing, the STFT, its magnitude, decibels.

Batched over equal-length segments ``y`` with ``shape=(n, samples)``; spectra are held
``(n, frames, bins)`` (librosa's ``(bins, frames)`` transposed), so that a filterbank is one
matrix product over the frames and the per-frame reductions run along contiguous memory.
The STFT is librosa 0.11's (``center=True``, ``pad_mode='constant'``, Hann window) at one of two
precisions (:data:`Precision`): ``"float64"``, librosa's bit for bit (numpy.fft on float64 frames,
rounded to complex64), or ``"float32"`` (scipy.fft's single-precision pocketfft on float32 frames,
about 1.5x as fast), within float32 rounding of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .config import stft_frames
from .dsp import hann_window
from .errors import ConfigError
from .kernel_checks import check_array, check_batch, check_frame_counts, check_positive_int

__all__ = [
    "AMIN_POWER",
    "PRECISIONS",
    "SILENT_DB",
    "Precision",
    "clip_top_db",
    "live_frames",
    "magnitude_spectrogram",
    "power_to_db",
    "stft",
]

#: the floor of :func:`power_to_db` (librosa's ``amin``)
AMIN_POWER = 1e-10
#: ``power_to_db`` of a zero spectrum: ``10 * log10(AMIN_POWER)``, -100 dB
SILENT_DB = float(10.0 * np.log10(np.float32(AMIN_POWER)))
#: frames transformed together: their windowed copies stay within the CPU's cache
_FFT_BLOCK_BYTES = 1 << 20

#: how the STFT transforms its frames: ``"float64"`` is librosa's bit for bit (numpy.fft on
#: float64 frames, rounded to complex64); ``"float32"`` transforms float32 frames (scipy.fft's
#: single precision), within float32 rounding of it
Precision = Literal["float32", "float64"]
PRECISIONS: tuple[Precision, ...] = ("float32", "float64")


@lru_cache(maxsize=16)
def _window(n_fft: int, precision: Precision = "float64") -> np.ndarray:
    window = hann_window(n_fft).astype(precision)
    window.setflags(write=False)
    return window


def _check_precision(precision: object) -> Precision:
    if precision == "float32":
        return "float32"
    if precision == "float64":
        return "float64"
    raise ConfigError(f"Expected precision out of {', '.join(PRECISIONS)}, got {precision!r}")


def _frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Centred, zero-padded frames of each segment, a view ``(n, frames, n_fft)``."""
    pad = n_fft // 2
    padded = np.pad(y, ((0, 0), (pad, pad)), mode="constant")
    n_frames = 1 + (padded.shape[-1] - n_fft) // hop_length
    frames: np.ndarray = sliding_window_view(padded, n_fft, axis=-1)[:, ::hop_length][:, :n_frames]
    return frames


def _check_stft_params(n_fft: object, hop_length: object) -> None:
    check_positive_int(n_fft, name="n_fft")
    check_positive_int(hop_length, name="hop_length")


def live_frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Per segment, how many leading frames (``center=True``) see any nonzero sample.

    The frames after them lie wholly in a zero-padded tail: their spectra are exactly zero and
    every spectral feature of them is a constant, so the kernels skip them.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Zero-padded segments; any real dtype (cast to float32).
    n_fft : int > 0 [scalar]
        Frame length of the STFT the frames belong to.
    hop_length : int > 0 [scalar]
        Samples between the starts of adjacent frames.

    Returns
    -------
    live : np.ndarray [shape=(n,), dtype=int64]
        ``0 <= live[i] <= 1 + samples // hop_length``; 0 for an all-zero segment.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers.
    ConfigError
        ``n_fft`` or ``hop_length`` is not a positive integer.
    """
    y = check_batch(y)
    _check_stft_params(n_fft, hop_length)
    return _live_frames(y, n_fft, hop_length)


def _live_frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """:func:`live_frames` of a checked float32 batch."""
    n_frames = stft_frames(y.shape[-1], n_fft, hop_length)
    live = np.full(y.shape[0], n_frames, dtype=np.int64)
    padded = np.flatnonzero(y[:, -1] == 0)
    if padded.size:
        nonzero = y[padded] != 0
        # one past the last nonzero sample; 0 for an all-zero segment
        end = np.where(nonzero.any(axis=1), y.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
        live[padded] = np.where(end > 0, np.minimum(n_frames, -(-(end + n_fft // 2) // hop_length)), 0)
    return live


def _spectrum_blocks(y: np.ndarray, n_fft: int, hop_length: int, n_frames: int | None = None,
                     live: np.ndarray | None = None, precision: Precision = "float64",
                     ) -> Iterator[tuple[int, slice, np.ndarray]]:
    """``(segment, frames, complex64 spectra)`` a cache-sized block of the first ``n_frames``
    frames at a time (all by default), zero where a frame sees only zero-padding.

    ``"float64"``: like librosa, the windowed frames are transformed in float64 and rounded to
    complex64, librosa's bits (the chroma tuning estimate is sensitive to the last bits).
    ``"float32"``: float32 window and frames, scipy.fft's single-precision transform (numpy.fft
    has none: it transforms float32 in float64). ``y`` is a checked float32 batch.
    """
    frames = _frames(y, n_fft, hop_length)
    total = frames.shape[1] if n_frames is None else min(n_frames, frames.shape[1])
    window = _window(n_fft, precision)
    block = max(1, _FFT_BLOCK_BYTES // (window.itemsize * n_fft))
    live = _live_frames(y, n_fft, hop_length) if live is None else live
    rfft = _rfft(precision)
    for i, n_live in enumerate(np.minimum(live, total).tolist()):
        if n_live < total:
            yield i, slice(n_live, total), np.zeros((total - n_live, 1 + n_fft // 2), dtype=np.complex64)
        for start in range(0, n_live, block):
            rows = slice(start, min(start + block, n_live))
            yield i, rows, rfft(frames[i, rows] * window)


def _rfft(precision: Precision) -> Callable[[np.ndarray], np.ndarray]:
    """The transform of windowed frames ``(frames, n_fft)`` to complex64 spectra at ``precision``."""
    if precision == "float64":
        def rfft64(x: np.ndarray) -> np.ndarray:
            # numpy.fft: librosa's FFT unless librosa.set_fftlib replaced it
            return np.fft.rfft(x, axis=-1).astype(np.complex64)

        return rfft64
    import scipy.fft  # only here: commands that compute no spectrum never import it

    def rfft32(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = scipy.fft.rfft(x, axis=-1, overwrite_x=True)
        return out

    return rfft32


def stft(*, y: np.ndarray, n_fft: int = 2048, hop_length: int = 512, precision: Precision = "float64") -> np.ndarray:
    """Complex STFT of each segment, ``librosa.stft(center=True, pad_mode='constant')`` transposed.

    ``stft(y=y)[i] == librosa.stft(y[i], n_fft=n_fft, hop_length=hop_length, center=True,
    pad_mode='constant').T``, bit for bit (``precision="float64"``): a Hann window of ``n_fft``
    samples, each frame centred on ``t * hop_length`` in the zero-padded signal.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Segments of audio; any real dtype (cast to float32). ``samples`` may be shorter than
        ``n_fft``: the frames are zero-padded, as librosa's.
    n_fft : int > 0 [scalar]
        Length of the windowed frame (and of the FFT).
    hop_length : int > 0 [scalar]
        Samples between the starts of adjacent frames.
    precision : {"float64", "float32"}
        ``"float64"``: librosa's bits; ``"float32"``: float32 frames through scipy.fft's
        single-precision transform, about 1.5x as fast, within float32 rounding of librosa's.

    Returns
    -------
    D : np.ndarray [shape=(n, frames, 1 + n_fft // 2), dtype=complex64]
        ``frames = 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop_length``.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers.
    ConfigError
        ``n_fft`` or ``hop_length`` is not a positive integer, or ``precision`` none of :data:`PRECISIONS`.
    """
    y = check_batch(y)
    _check_stft_params(n_fft, hop_length)
    precision = _check_precision(precision)
    n_frames = stft_frames(y.shape[-1], n_fft, hop_length)
    out = np.empty((y.shape[0], n_frames, 1 + n_fft // 2), dtype=np.complex64)
    for i, rows, spectra in _spectrum_blocks(y, n_fft, hop_length, precision=precision):
        out[i, rows] = spectra
    return out


def magnitude_spectrogram(*, y: np.ndarray, n_fft: int = 2048, hop_length: int = 512, n_frames: int | None = None,
                          live: np.ndarray | None = None, precision: Precision = "float64") -> np.ndarray:
    """``np.abs(stft(y, precision=precision))[:, :n_frames]`` without holding the complex spectra.

    ``magnitude_spectrogram(y=y)[i] == np.abs(librosa.stft(y[i], n_fft=n_fft,
    hop_length=hop_length, center=True, pad_mode='constant')).T``, bit for bit
    (``precision="float64"``).

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Segments of audio; any real dtype (cast to float32).
    n_fft : int > 0 [scalar]
        Length of the windowed frame (and of the FFT).
    hop_length : int > 0 [scalar]
        Samples between the starts of adjacent frames.
    n_frames : int > 0 or None
        Only the first ``n_frames`` frames (at most all of them); all by default.
    live : np.ndarray [shape=(n,), dtype=int] or None
        :func:`live_frames` of ``y`` if already known; frames from ``live[i]`` on are zero
        without a transform. Computed when None.
    precision : {"float64", "float32"}
        The transform's (:func:`stft`).

    Returns
    -------
    S : np.ndarray [shape=(n, frames, 1 + n_fft // 2), dtype=float32]
        ``frames = min(n_frames, 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop_length)``.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers, or ``live`` not one integer per segment.
    ConfigError
        ``n_fft``, ``hop_length`` or ``n_frames`` is not a positive integer, or ``precision``
        none of :data:`PRECISIONS`.
    """
    y = check_batch(y)
    _check_stft_params(n_fft, hop_length)
    precision = _check_precision(precision)
    if n_frames is not None:
        check_positive_int(n_frames, name="n_frames")
    if live is not None:
        live = check_frame_counts(live, name="live", n=y.shape[0])
    total = stft_frames(y.shape[-1], n_fft, hop_length)
    n_frames = total if n_frames is None else min(n_frames, total)
    out = np.empty((y.shape[0], n_frames, 1 + n_fft // 2), dtype=np.float32)
    for i, rows, spectra in _spectrum_blocks(y, n_fft, hop_length, n_frames, live, precision):
        np.abs(spectra, out=out[i, rows])
    return out


def power_to_db(*, S: np.ndarray, top_db: float | None = None) -> np.ndarray:
    """``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=top_db)`` per segment.

    ``top_db`` clips relative to each segment's own maximum (axis 0 is the batch).

    Parameters
    ----------
    S : np.ndarray [shape=(n, frames) or (n, frames, bins)]
        Power (non-negative); real-valued. The result keeps its float dtype.
    top_db : float >= 0 or None
        Floor each segment's values at ``top_db`` below its own maximum; no floor if None.

    Returns
    -------
    S_db : np.ndarray [shape=S.shape]
        ``10 * log10(max(S, 1e-10))``, floored per segment if ``top_db`` is given; float32 for
        float32 ``S``.

    Raises
    ------
    InputError
        ``S`` is not a 2-D or 3-D array of real numbers with at least one segment.
    ConfigError
        ``top_db`` is negative or not a number.
    """
    S = check_array(S, name="S", ndims=(2, 3), layout="(n, frames) or (n, frames, bins)")
    if top_db is not None and (isinstance(top_db, bool) or not isinstance(top_db, int | float | np.integer | np.floating)
                               or not math.isfinite(top_db) or top_db < 0):
        raise ConfigError(f"Expected top_db to be a finite number >= 0 or None, got {top_db!r}")
    log_spec: np.ndarray = np.log10(np.maximum(S, np.float32(AMIN_POWER)))
    log_spec *= 10.0
    return log_spec if top_db is None else clip_top_db(log_spec, top_db)


def clip_top_db(log_spec: np.ndarray, top_db: float) -> np.ndarray:
    """dB values floored at ``top_db`` below each segment's maximum (axis 0 is the batch).

    The ``top_db`` step of ``librosa.power_to_db``, on values already in dB; unchecked (the
    kernels call it on their own arrays).

    Parameters
    ----------
    log_spec : np.ndarray [shape=(n, ...)]
        Values in dB.
    top_db : float >= 0 [scalar]
        How far below its segment's maximum a value may lie.

    Returns
    -------
    np.ndarray [shape=log_spec.shape]
        ``max(log_spec, log_spec[i].max() - top_db)`` for each segment ``i``.
    """
    peak = log_spec.max(axis=tuple(range(1, log_spec.ndim)), keepdims=True)
    clipped: np.ndarray = np.maximum(log_spec, peak - top_db)
    return clipped
