"""Pure NumPy feature kernels, batched over segments: one STFT per segment, no I/O, no Dask.

Every kernel takes a batch of equal-length segments ``y`` with ``shape=(n_segments, n_samples)``
and returns arrays laid out as the store holds them: ``(n_segments, n_frames[, n_bins])``.
Each frame-level result equals the corresponding librosa 0.11 call on one segment
(see ``docs/store.md``); the STFT is computed once and every spectral feature derives from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np
import scipy.fft
from librosa.core.pitch import _parabolic_interpolation

from .config import FeatureConfig

__all__ = [
    "SUMMARY_STATS",
    "compute_features",
    "estimate_tuning",
    "power_to_db",
    "rms",
    "stft",
    "summarize",
    "zero_crossing_rate",
]

SUMMARY_STATS: tuple[str, ...] = ("mean", "std")
_AMIN_POWER = 1e-10


def _check_batch(y: np.ndarray) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.ndim != 2:
        raise ValueError(f"Expected y with shape (n_segments, n_samples), got {getattr(y, 'shape', y)!r}")
    if y.dtype != np.float32:
        y = y.astype(np.float32)
    return y


def stft(*, y: np.ndarray, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Complex STFT of each segment, ``librosa.stft`` with ``center=True, pad_mode='constant'``.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
    Returns
    -------
    np.ndarray [shape=(n, 1 + n_fft // 2, frames)], complex64
    """
    y = _check_batch(y)
    out: np.ndarray = librosa.stft(
        y, n_fft=n_fft, hop_length=hop_length, window="hann", center=True, pad_mode="constant"
    )
    return out


def power_to_db(*, S: np.ndarray, top_db: float | None = None) -> np.ndarray:
    """``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=top_db)`` per segment.

    ``top_db`` clips relative to each segment's own maximum (axis 0 is the batch).
    """
    log_spec: np.ndarray = 10.0 * np.log10(np.maximum(_AMIN_POWER, S))
    if top_db is not None:
        peak = log_spec.max(axis=tuple(range(1, S.ndim)), keepdims=True)
        clipped: np.ndarray = np.maximum(log_spec, peak - top_db)
        return clipped
    return log_spec


def estimate_tuning(*, S: np.ndarray, sr: int, bins_per_octave: int = 12) -> np.ndarray:
    """``librosa.estimate_tuning(S=S[i], sr=sr)`` for each segment ``i`` of a power spectrogram.

    Parameters
    ----------
    S : np.ndarray [shape=(n, freq, frames)] power spectrogram
    Returns
    -------
    np.ndarray [shape=(n,)] tuning in fractions of a bin
    """
    n_fft = 2 * (S.shape[-2] - 1)
    mag_spec = np.abs(S)
    fmin, fmax = 150.0, min(4000.0, float(sr) / 2)
    fft_freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    band = np.flatnonzero((fmin <= fft_freqs) & (fft_freqs < fmax))
    tunings = np.zeros(S.shape[0], dtype=np.float64)
    if band.size == 0:
        return tunings
    # piptrack only keeps peaks inside [fmin, fmax): work on that band plus one bin either side,
    # which is all the central differences, the parabolic interpolation and the local-maximum
    # test of the band's bins look at (the same numbers as on the full spectrum)
    lo, hi = int(band[0]) - 1, int(band[-1]) + 2
    sub = mag_spec[:, lo:hi, :]
    avg = np.gradient(sub, axis=-2)
    shift = _parabolic_interpolation(sub, axis=-2)
    dskew = 0.5 * avg * shift
    ref_value = 0.1 * np.max(mag_spec, axis=-2, keepdims=True)
    local = librosa.util.localmax(sub * (sub > ref_value), axis=-2)
    peaks = np.zeros_like(local)
    peaks[:, 1:-1, :] = local[:, 1:-1, :]
    bins = np.linspace(-0.5, 0.5, 101)
    for i in range(S.shape[0]):
        idx = np.nonzero(peaks[i])
        if idx[0].size == 0:
            continue
        pitch = (idx[0] + lo + shift[i][idx]) * float(sr) / n_fft
        mag = sub[i][idx] + dskew[i][idx]
        pitch_mask = pitch > 0
        threshold = np.median(mag[pitch_mask]) if pitch_mask.any() else 0.0
        freqs = pitch[(mag >= threshold) & pitch_mask]
        freqs = freqs[freqs > 0]
        if freqs.size == 0:
            continue
        residual = np.mod(bins_per_octave * librosa.hz_to_octs(freqs), 1.0)
        residual[residual >= 0.5] -= 1.0
        counts, edges = np.histogram(residual, bins)
        tunings[i] = edges[np.argmax(counts)]
    return tunings


@lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    basis: np.ndarray = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return basis


@lru_cache(maxsize=256)
def _chroma_basis(sr: int, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    basis: np.ndarray = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)
    return basis


def _frame_sums(values: np.ndarray, *, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    """Sum of ``values[..., t*hop : t*hop + frame_length]`` for each frame ``t`` (float64)."""
    csum = np.zeros((*values.shape[:-1], values.shape[-1] + 1), dtype=np.float64)
    np.cumsum(values, axis=-1, dtype=np.float64, out=csum[..., 1:])
    starts = np.arange(n_frames) * hop_length
    result: np.ndarray = csum[..., starts + frame_length] - csum[..., starts]
    return result


def rms(*, y: np.ndarray, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """``librosa.feature.rms(y=y[i], frame_length, hop_length, center=True)`` per segment.

    Returns
    -------
    np.ndarray [shape=(n, frames)], float32
    """
    y = _check_batch(y)
    pad = frame_length // 2
    padded = np.pad(y, ((0, 0), (pad, pad)), mode="constant")
    n_frames = 1 + (padded.shape[-1] - frame_length) // hop_length
    sq = np.square(padded, dtype=np.float64)
    power = _frame_sums(sq, frame_length=frame_length, hop_length=hop_length, n_frames=n_frames)
    result: np.ndarray = np.sqrt(np.maximum(power, 0.0) / frame_length).astype(np.float32)
    return result


def zero_crossing_rate(*, y: np.ndarray, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y[i], frame_length, hop_length, center=True)``.

    Returns
    -------
    np.ndarray [shape=(n, frames)], float32
    """
    y = _check_batch(y)
    pad = frame_length // 2
    padded = np.pad(y, ((0, 0), (pad, pad)), mode="edge")
    signs = np.signbit(np.where(np.abs(padded) <= 1e-10, np.float32(0.0), padded))
    # crossing[k] marks a sign change between samples k and k+1
    crossing = (signs[:, 1:] != signs[:, :-1]).astype(np.int64)
    n_frames = 1 + (padded.shape[-1] - frame_length) // hop_length
    counts = _frame_sums(crossing, frame_length=frame_length - 1, hop_length=hop_length, n_frames=n_frames)
    return (counts / frame_length).astype(np.float32)


@dataclass(frozen=True)
class _Spectra:
    magnitude: np.ndarray  # (n, freq, frames) float32
    power: np.ndarray  # (n, freq, frames) float32


def _spectral(spectra: _Spectra, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Centroid, bandwidth (p=2) and rolloff (0.85) from the magnitude spectrogram.

    The moments come from two contractions (sum f*S and sum f^2*S) instead of broadcasting
    the normalised spectrogram against the frequencies: bandwidth^2 = E[f^2] - centroid^2,
    accumulated in float64, stays within 1e-6 (relative) of librosa's direct formula.
    """
    S = spectra.magnitude
    freq = librosa.fft_frequencies(sr=config.sr, n_fft=config.n_fft)
    # float64 moments (bandwidth^2 is a difference of large numbers); einsum upcasts element by
    # element and is an order of magnitude faster here than matmul of a vector with a stack
    norm = S.sum(axis=-2, dtype=np.float64)
    m1 = np.einsum("f,bft->bt", freq, S)  # (n, frames)
    m2 = np.einsum("f,bft->bt", freq * freq, S)
    silent = norm < np.finfo(np.float32).tiny  # librosa leaves such frames unnormalised: all zero
    safe = np.where(silent, 1.0, norm)
    centroid = np.where(silent, 0.0, m1 / safe)
    bandwidth = np.sqrt(np.maximum(np.where(silent, 0.0, m2 / safe - centroid**2), 0.0))
    total = np.cumsum(S, axis=-2)
    threshold = 0.85 * total[:, -1:, :]
    # the first bin whose cumulative energy reaches the threshold
    first = np.argmax(total >= threshold, axis=-2)
    rolloff = freq[first]
    return {
        "spectral_centroid": centroid.astype(np.float32),
        "spectral_bandwidth": bandwidth.astype(np.float32),
        "spectral_rolloff": rolloff.astype(np.float32),
    }


def compute_features(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Every frame-level variable of ``config`` for a batch of segments.

    Parameters
    ----------
    y : np.ndarray [shape=(n, config.segment_samples)]
        zero-padded segments at ``config.sr``
    Returns
    -------
    dict of float32 arrays: 2-D ``(n, frames)`` for scalar features, 3-D
    ``(n, frames, bins)`` for ``mel``, ``mfcc``, ``chroma``, ``spectrogram``.
    """
    y = _check_batch(y)
    if y.shape[1] != config.segment_samples:
        raise ValueError(
            f"Expected segments of {config.segment_samples} samples, got {y.shape[1]}"
        )
    feats = set(config.features)
    out: dict[str, np.ndarray] = {}
    spectral_needed = feats & {"spectrogram", "mel", "mfcc", "chroma", "spectral"}
    if spectral_needed:
        D = stft(y=y, n_fft=config.n_fft, hop_length=config.hop_length)
        magnitude = np.abs(D)
        del D
        spectra = _Spectra(magnitude=magnitude, power=magnitude**2)
        if "spectrogram" in feats:
            out["spectrogram"] = _to_store(power_to_db(S=spectra.power))
        if feats & {"mel", "mfcc"}:
            basis = _mel_basis(config.sr, config.n_fft, config.n_mels, config.fmin, float(config.fmax or config.sr / 2))
            mel_power = np.matmul(basis, spectra.power)
            mel_db = power_to_db(S=mel_power)
            if "mel" in feats:
                out["mel"] = _to_store(mel_db)
            if "mfcc" in feats:
                clipped = power_to_db(S=mel_power, top_db=80.0)
                mfcc = scipy.fft.dct(clipped, axis=-2, type=2, norm="ortho")[:, : config.n_mfcc, :]
                out["mfcc"] = _to_store(mfcc)
        if "chroma" in feats:
            tunings = estimate_tuning(S=spectra.power, sr=config.sr, bins_per_octave=config.n_chroma)
            chroma = np.empty((y.shape[0], config.n_chroma, spectra.power.shape[-1]), dtype=np.float32)
            for tuning in np.unique(tunings):
                rows = np.flatnonzero(tunings == tuning)
                basis = _chroma_basis(config.sr, config.n_fft, float(tuning), config.n_chroma)
                chroma[rows] = np.matmul(basis, spectra.power[rows])
            peak = np.max(np.abs(chroma), axis=-2, keepdims=True)
            chroma /= np.where(peak < np.finfo(np.float32).tiny, np.float32(1.0), peak)
            out["chroma"] = _to_store(chroma)
        if "spectral" in feats:
            out.update(_spectral(spectra, config))
    if "zcr" in feats:
        out["zero_crossing_rate"] = zero_crossing_rate(
            y=y, frame_length=config.n_fft, hop_length=config.hop_length
        )
    if "rms" in feats:
        out["rms"] = rms(y=y, frame_length=config.n_fft, hop_length=config.hop_length)
    return {name: out[name] for name in config.frame_variables}


def _to_store(values: np.ndarray) -> np.ndarray:
    """``(n, bins, frames)`` -> ``(n, frames, bins)`` float32, C-contiguous."""
    return np.ascontiguousarray(np.swapaxes(values, 1, 2), dtype=np.float32)


def summarize(values: np.ndarray, valid_frames: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and (population) standard deviation over each segment's valid frames.

    Parameters
    ----------
    values : np.ndarray [shape=(n, frames) or (n, frames, bins)]
    valid_frames : np.ndarray [shape=(n,)] int, at least 1 for a real segment
    Returns
    -------
    ``{"mean": [shape=(n,) or (n, bins)], "std": ...}`` float32; NaN-free (0 where no frame is valid)
    """
    n_frames = values.shape[1]
    mask = np.arange(n_frames)[None, :] < np.asarray(valid_frames)[:, None]
    count = np.maximum(mask.sum(axis=1), 1).astype(np.float64)
    shape = (values.shape[0], n_frames) + (1,) * (values.ndim - 2)
    weights = mask.reshape(shape)
    count = count.reshape((values.shape[0],) + (1,) * (values.ndim - 2))
    data = values.astype(np.float64)
    mean = np.sum(data * weights, axis=1) / count
    centered = (data - mean[:, None, ...]) * weights
    var = np.sum(centered**2, axis=1) / count
    return {"mean": mean.astype(np.float32), "std": np.sqrt(var).astype(np.float32)}
