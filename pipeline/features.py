"""Pure NumPy feature kernels, batched over segments: one STFT per segment, no I/O, no Dask.

Every kernel takes a batch of equal-length segments ``y`` with ``shape=(n_segments, n_samples)``
and returns arrays laid out as the store holds them: ``(n_segments, n_frames[, n_bins])``.
Each frame-level result equals the corresponding librosa 0.11 call on one segment
(see ``docs/store.md``); the STFT is computed once and every spectral feature derives from it.

Spectra are held ``(n, frames, freq)`` throughout, so that the filterbanks are one matrix
product over all frames of the batch and the per-frame reductions run along contiguous memory.
``docs/performance.md`` has the profile these kernels were shaped by.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import librosa
import numpy as np
import scipy.fft
from librosa.core.pitch import _parabolic_interpolation
from numpy.lib.stride_tricks import sliding_window_view

from .config import FeatureConfig, stft_frames
from .schema import SUMMARY_STATS

__all__ = [
    "SUMMARY_STATS",
    "compute_features",
    "estimate_tuning",
    "live_frames",
    "magnitude_spectrogram",
    "power_to_db",
    "rms",
    "stft",
    "summarize",
    "zero_crossing_rate",
]

_AMIN_POWER = 1e-10
_TINY32 = np.finfo(np.float32).tiny
#: frames transformed together: their float64 copies stay within the CPU's cache
_FFT_BLOCK_BYTES = 1 << 20


def _check_batch(y: np.ndarray) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.ndim != 2:
        raise ValueError(f"Expected y with shape (n_segments, n_samples), got {getattr(y, 'shape', y)!r}")
    if y.dtype != np.float32:
        y = y.astype(np.float32)
    return y


@lru_cache(maxsize=16)
def _window(n_fft: int) -> np.ndarray:
    window: np.ndarray = librosa.filters.get_window("hann", n_fft, fftbins=True)
    window.setflags(write=False)
    return window


def _frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Centred, zero-padded frames of each segment, a view ``(n, frames, n_fft)``."""
    pad = n_fft // 2
    padded = np.pad(y, ((0, 0), (pad, pad)), mode="constant")
    n_frames = 1 + (padded.shape[-1] - n_fft) // hop_length
    frames: np.ndarray = sliding_window_view(padded, n_fft, axis=-1)[:, ::hop_length][:, :n_frames]
    return frames


def live_frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Per segment, how many leading frames (``center=True``) see any nonzero sample.

    The frames after them lie wholly in a zero-padded tail: their spectra are exactly zero and
    every spectral feature of them is a constant, so the kernels skip them.
    """
    y = _check_batch(y)
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
                     live: np.ndarray | None = None) -> Iterator[tuple[int, slice, np.ndarray]]:
    """``(segment, frames, complex64 spectra)`` a cache-sized block of the first ``n_frames``
    frames at a time (all by default), zero where a frame sees only zero-padding.

    Like librosa, the windowed frames are transformed in float64 and rounded to complex64: the
    results are librosa's bit for bit (the chroma tuning estimate is sensitive to the last bits).
    """
    y = _check_batch(y)
    frames = _frames(y, n_fft, hop_length)
    total = frames.shape[1] if n_frames is None else min(n_frames, frames.shape[1])
    window = _window(n_fft)
    fft = librosa.get_fftlib()  # librosa's own FFT (numpy.fft unless set_fftlib): the same bits
    block = max(1, _FFT_BLOCK_BYTES // (8 * n_fft))
    live = live_frames(y, n_fft, hop_length) if live is None else live
    for i, n_live in enumerate(np.minimum(live, total).tolist()):
        if n_live < total:
            yield i, slice(n_live, total), np.zeros((total - n_live, 1 + n_fft // 2), dtype=np.complex64)
        for start in range(0, n_live, block):
            rows = slice(start, min(start + block, n_live))
            yield i, rows, fft.rfft(frames[i, rows] * window, axis=-1).astype(np.complex64)


def stft(*, y: np.ndarray, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Complex STFT of each segment, ``librosa.stft(center=True, pad_mode='constant')`` transposed.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
    Returns
    -------
    np.ndarray [shape=(n, frames, 1 + n_fft // 2)], complex64, bit for bit librosa's
    """
    y = _check_batch(y)
    n_frames = stft_frames(y.shape[-1], n_fft, hop_length)
    out = np.empty((y.shape[0], n_frames, 1 + n_fft // 2), dtype=np.complex64)
    for i, rows, spectra in _spectrum_blocks(y, n_fft, hop_length):
        out[i, rows] = spectra
    return out


def magnitude_spectrogram(*, y: np.ndarray, n_fft: int = 2048, hop_length: int = 512, n_frames: int | None = None,
                          live: np.ndarray | None = None) -> np.ndarray:
    """``np.abs(stft(y))[:, :n_frames]`` without holding the complex spectra: ``(n, frames, freq)`` float32."""
    y = _check_batch(y)
    total = stft_frames(y.shape[-1], n_fft, hop_length)
    n_frames = total if n_frames is None else min(n_frames, total)
    out = np.empty((y.shape[0], n_frames, 1 + n_fft // 2), dtype=np.float32)
    for i, rows, spectra in _spectrum_blocks(y, n_fft, hop_length, n_frames, live):
        np.abs(spectra, out=out[i, rows])
    return out


def power_to_db(*, S: np.ndarray, top_db: float | None = None) -> np.ndarray:
    """``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=top_db)`` per segment.

    ``top_db`` clips relative to each segment's own maximum (axis 0 is the batch).
    """
    log_spec: np.ndarray = np.log10(np.maximum(S, np.float32(_AMIN_POWER)))
    log_spec *= 10.0
    return log_spec if top_db is None else _clip_top_db(log_spec, top_db)


def _clip_top_db(log_spec: np.ndarray, top_db: float) -> np.ndarray:
    """dB values floored at ``top_db`` below each segment's maximum (axis 0 is the batch)."""
    peak = log_spec.max(axis=tuple(range(1, log_spec.ndim)), keepdims=True)
    clipped: np.ndarray = np.maximum(log_spec, peak - top_db)
    return clipped


def estimate_tuning(*, S: np.ndarray, sr: int, bins_per_octave: int = 12) -> np.ndarray:
    """``librosa.estimate_tuning(S=S[i].T, sr=sr)`` for each segment ``i`` of a power spectrogram.

    The same float32 arithmetic as ``librosa.piptrack`` and ``librosa.pitch_tuning``, evaluated
    only where it matters: the band 150-4000 Hz, and the interpolation only at the peaks.

    Parameters
    ----------
    S : np.ndarray [shape=(n, frames, freq)] power spectrogram, float32
    Returns
    -------
    np.ndarray [shape=(n,)] tuning in fractions of a bin
    """
    S = np.asarray(S, dtype=np.float32)
    n_fft = 2 * (S.shape[-1] - 1)
    fmin, fmax = 150.0, min(4000.0, float(sr) / 2)
    fft_freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    band = np.flatnonzero((fmin <= fft_freqs) & (fft_freqs < fmax))
    tunings = np.zeros(S.shape[0], dtype=np.float64)
    if band.size == 0:
        return tunings
    # piptrack keeps local maxima of S * (S > 0.1 * max over freq) inside [fmin, fmax): the
    # band's bins and one either side are all the local-maximum test looks at
    lo, hi = max(int(band[0]) - 1, 0), min(int(band[-1]) + 2, S.shape[-1])
    ref_value = np.float32(0.1) * S.max(axis=-1, keepdims=True)
    sub = S[..., lo:hi]
    kept = sub * (sub > ref_value)
    center = kept[..., 1:-1]
    peaks = (center > kept[..., :-2]) & (center >= kept[..., 2:])
    # the first and last bins of the spectrum are never peaks: librosa's stencil leaves them out
    first_bin = lo + 1
    if first_bin < int(band[0]):
        peaks[..., : int(band[0]) - first_bin] = False
    last_bin = hi - 2
    if last_bin > int(band[-1]):
        peaks[..., int(band[-1]) - last_bin :] = False
    seg, frame, k = np.nonzero(peaks)
    if seg.size == 0:
        return tunings
    bins = k + first_bin
    left, mid, right = S[seg, frame, bins - 1], S[seg, frame, bins], S[seg, frame, bins + 1]
    # librosa's own (numba) stencil for the parabolic shift; np.gradient's central difference
    shift = _parabolic_interpolation(np.stack([left, mid, right], axis=-1), axis=-1)[:, 1]
    avg = (right - left) / 2.0
    dskew = 0.5 * avg * shift
    mag = mid + dskew
    pitch = ((bins + shift) * float(sr) / n_fft).astype(np.float32)
    edges = np.linspace(-0.5, 0.5, 101)
    bounds = np.searchsorted(seg, np.arange(S.shape[0] + 1))
    for i in range(S.shape[0]):
        p, m = pitch[bounds[i] : bounds[i + 1]], mag[bounds[i] : bounds[i + 1]]
        positive = p > 0
        if not positive.any():
            continue
        threshold = np.median(m[positive])
        freqs = p[(m >= threshold) & positive]
        if freqs.size == 0:
            continue
        residual = np.mod(bins_per_octave * np.log2(freqs / (440.0 / 16)), 1.0)
        residual[residual >= 0.5] -= 1.0
        counts, _ = np.histogram(residual, edges)
        tunings[i] = edges[np.argmax(counts)]
    return tunings


@lru_cache(maxsize=16)
def _mel_basis_t(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The mel filterbank, ``(freq, n_mels)``, ready to multiply ``(frames, freq)`` spectra."""
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    out = np.ascontiguousarray(basis.T)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=256)
def _chroma_basis_t(sr: int, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    basis = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)
    out = np.ascontiguousarray(basis.T)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _dct_t(n_mels: int, n_mfcc: int) -> np.ndarray:
    """The first ``n_mfcc`` rows of the orthonormal DCT-II, ``(n_mels, n_mfcc)``, float32."""
    out = np.ascontiguousarray(scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].T, dtype=np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _bin_moments(n_freq: int) -> np.ndarray:
    """Columns 1, k, k^2 over the bins ``k`` (float64: the moments are exact sums of products)."""
    k = np.arange(n_freq, dtype=np.float64)
    out = np.stack([np.ones_like(k), k, k * k], axis=1)
    out.setflags(write=False)
    return out


def _per_segment_product(x: np.ndarray, basis: np.ndarray, live: np.ndarray, *, dtype: type = np.float32) -> np.ndarray:
    """``x[i, :live[i]] @ basis`` for each segment ``i``, zero past its live frames.

    One BLAS product per segment, over that segment's own frames only: which rows of a product
    fall in a BLAS kernel's main block and which in its tail (they can round differently) is
    then a function of the segment alone, never of the batch it came in. A segment's features
    are the same bits whatever batch, chunk or run computes them (on one machine).

    Parameters
    ----------
    x : np.ndarray [shape=(n, frames, k)]
    basis : np.ndarray [shape=(k, m)]
    live : np.ndarray [shape=(n,)] int, frames of each segment to transform
    Returns
    -------
    np.ndarray [shape=(n, frames, m)] of ``dtype``
    """
    out = np.zeros((*x.shape[:-1], basis.shape[-1]), dtype=dtype)
    for i, k in enumerate(np.minimum(live, x.shape[1]).tolist()):
        if k:
            np.matmul(x[i, :k], basis, out=out[i, :k])
    return out


def _frame_sums(values: np.ndarray, *, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    """Sum of ``values[..., t*hop : t*hop + frame_length]`` for each frame ``t``, in float64.

    With frames a whole number of hops long, sums per hop-sized block and adds up the blocks
    of each frame; otherwise a float64 running sum.
    """
    span = (n_frames - 1) * hop_length + frame_length
    if frame_length % hop_length == 0 and span <= values.shape[-1]:
        per = frame_length // hop_length
        n_blocks = n_frames - 1 + per
        blocks = values[..., : n_blocks * hop_length].reshape(*values.shape[:-1], n_blocks, hop_length)
        block_sums = blocks.sum(axis=-1, dtype=np.float64)
        result: np.ndarray = sliding_window_view(block_sums, per, axis=-1).sum(axis=-1)
        return result
    csum = np.zeros((*values.shape[:-1], values.shape[-1] + 1), dtype=np.float64)
    np.cumsum(values, axis=-1, dtype=np.float64, out=csum[..., 1:])
    starts = np.arange(n_frames) * hop_length
    result = csum[..., starts + frame_length] - csum[..., starts]
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
    # |y| <= 1e-10 counts as zero, and zero as positive (librosa's threshold and zero_pos)
    signs = np.signbit(padded) & (padded < np.float32(-1e-10))
    # crossing[k] marks a sign change between samples k and k+1; a frame holds frame_length - 1
    # of them. The trailing zero keeps every frame's one-past-the-end index in range.
    crossing = np.zeros((y.shape[0], padded.shape[-1]), dtype=np.int8)
    np.not_equal(signs[:, 1:], signs[:, :-1], out=crossing[:, :-1].view(np.bool_))
    n_frames = 1 + (padded.shape[-1] - frame_length) // hop_length
    counts = _frame_sums(crossing, frame_length=frame_length, hop_length=hop_length, n_frames=n_frames)
    counts -= crossing[:, np.arange(n_frames) * hop_length + frame_length - 1]
    return (counts / frame_length).astype(np.float32)


def _spectral(magnitude: np.ndarray, live: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Centroid, bandwidth (p=2) and rolloff (0.85) from the magnitude spectrogram ``(n, frames, freq)``.

    The moments are one float64 product of the spectra with the columns 1, k, k^2 (k the bin):
    each product of a float32 value with a bin index is exact in float64, so bandwidth^2 =
    E[f^2] - centroid^2 loses nothing to cancellation that matters (1e-9 relative of librosa's
    direct formula); one product per segment (:func:`_per_segment_product`). The rolloff keeps librosa's float32 running sum: at its 85% threshold the
    last bit decides the bin.
    """
    n, t, n_freq = magnitude.shape
    bin_hz = config.sr / config.n_fft
    flat = magnitude.reshape(n * t, n_freq)
    moments = _per_segment_product(magnitude.astype(np.float64), _bin_moments(n_freq), live, dtype=np.float64).reshape(n * t, 3)
    norm, m1, m2 = moments[:, 0], moments[:, 1], moments[:, 2]
    silent = norm < _TINY32  # librosa leaves such frames unnormalised: all zero
    safe = np.where(silent, 1.0, norm)
    centroid_bins = np.where(silent, 0.0, m1 / safe)
    variance = np.where(silent, 0.0, m2 / safe - centroid_bins**2)
    bandwidth_bins = np.sqrt(np.maximum(variance, 0.0))
    total = np.cumsum(flat, axis=-1)
    threshold = np.float32(0.85) * total[:, -1:]
    # the first bin whose cumulative energy reaches the threshold: the number of bins below it
    first = np.count_nonzero(total < threshold, axis=-1)
    freq = librosa.fft_frequencies(sr=config.sr, n_fft=config.n_fft)
    rolloff = freq[np.minimum(first, n_freq - 1)]
    return {
        "spectral_centroid": (centroid_bins * bin_hz).astype(np.float32).reshape(n, t),
        "spectral_bandwidth": (bandwidth_bins * bin_hz).astype(np.float32).reshape(n, t),
        "spectral_rolloff": rolloff.astype(np.float32).reshape(n, t),
    }


def _chroma(power: np.ndarray, live: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``chroma_stft`` from the power spectra ``(n, frames, freq)``: each segment's own tuning,
    each segment's own product over its live frames (zero past them)."""
    tunings = estimate_tuning(S=power, sr=config.sr, bins_per_octave=config.n_chroma)
    chroma = np.zeros((*power.shape[:-1], config.n_chroma), dtype=np.float32)
    for i, (tuning, k) in enumerate(zip(tunings.tolist(), np.minimum(live, power.shape[1]).tolist(), strict=True)):
        if k:
            np.matmul(power[i, :k], _chroma_basis_t(config.sr, config.n_fft, float(tuning), config.n_chroma), out=chroma[i, :k])
    peak = chroma.max(axis=-1, keepdims=True)  # the filters and the power are >= 0
    chroma /= np.where(peak < _TINY32, np.float32(1.0), peak)
    return chroma


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
    if feats & {"spectrogram", "mel", "mfcc", "chroma", "spectral"}:
        # only the frames up to the batch's last one with audio: the rest (zero-padding) have
        # zero spectra, whose features are constants (-100 dB, 0) filled in by _extend
        n_frames = config.n_frames
        live = live_frames(y, config.n_fft, config.hop_length)
        magnitude = magnitude_spectrogram(y=y, n_fft=config.n_fft, hop_length=config.hop_length,
                                          n_frames=max(1, int(live.max(initial=0))), live=live)
        power = np.square(magnitude)
        n = power.shape[0]
        if "spectrogram" in feats:
            out["spectrogram"] = _extend(power_to_db(S=power), n_frames, _SILENT_DB)
        if feats & {"mel", "mfcc"}:
            basis = _mel_basis_t(config.sr, config.n_fft, config.n_mels, config.fmin, float(config.fmax or config.sr / 2))
            mel_power = _per_segment_product(power, basis, live)
            mel_db = _extend(power_to_db(S=mel_power), n_frames, _SILENT_DB)
            if "mel" in feats:
                out["mel"] = mel_db
            if "mfcc" in feats:
                # top_db clips at each segment's peak, over all its frames (silent ones included)
                clipped = _clip_top_db(mel_db, 80.0)
                dct = _dct_t(config.n_mels, config.n_mfcc)
                # every segment's product has the config's shape: its bits are the segment's own
                out["mfcc"] = _per_segment_product(clipped, dct, np.full(n, n_frames))
        if "chroma" in feats:
            out["chroma"] = _extend(_chroma(power, live, config), n_frames, 0.0)
        if "spectral" in feats:
            out.update({name: _extend(values, n_frames, 0.0) for name, values in _spectral(magnitude, live, config).items()})
    if "zcr" in feats:
        out["zero_crossing_rate"] = zero_crossing_rate(
            y=y, frame_length=config.n_fft, hop_length=config.hop_length
        )
    if "rms" in feats:
        out["rms"] = rms(y=y, frame_length=config.n_fft, hop_length=config.hop_length)
    return {name: np.ascontiguousarray(out[name], dtype=np.float32) for name in config.frame_variables}


#: ``power_to_db`` of a zero spectrum: 10 * log10(amin)
_SILENT_DB = float(10.0 * np.log10(np.float32(_AMIN_POWER)))


def _extend(values: np.ndarray, n_frames: int, fill: float) -> np.ndarray:
    """``values`` ``(n, frames[, bins])`` padded along frames to ``n_frames`` with ``fill``."""
    if values.shape[1] >= n_frames:
        if values.shape[1] != n_frames:
            raise ValueError(f"Expected at most {n_frames} frames, got {values.shape[1]}")
        return values
    out = np.empty((values.shape[0], n_frames, *values.shape[2:]), dtype=np.float32)
    out[:, : values.shape[1]] = values
    out[:, values.shape[1] :] = fill
    return out


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
    n, n_frames = values.shape[:2]
    frames = np.clip(np.asarray(valid_frames), 0, n_frames)
    tail = (1,) * (values.ndim - 2)
    data = values.astype(np.float64)
    mask = None
    if (frames < n_frames).any():
        mask = (np.arange(n_frames)[None, :] < frames[:, None]).reshape((n, n_frames, *tail))
        data *= mask
    count = np.maximum(frames, 1).astype(np.float64).reshape((n, *tail))
    mean = data.sum(axis=1) / count
    data -= mean[:, None, ...]
    if mask is not None:
        data *= mask
    flat = data.reshape(n, n_frames, -1)
    var = np.einsum("ntb,ntb->nb", flat, flat).reshape(mean.shape) / count
    return {"mean": mean.astype(np.float32), "std": np.sqrt(var).astype(np.float32)}
