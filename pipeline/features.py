"""The feature kernels: batched over segments, one STFT per segment, no I/O, no Dask.

Every kernel takes a batch of equal-length segments ``y`` with ``shape=(n, samples)`` and
returns arrays laid out as the store holds them: ``(n, frames[, bins])``. Each frame-level
result equals the corresponding librosa 0.11 call on one segment (see ``docs/store.md``).
:func:`compute_features` computes the STFT once (:mod:`pipeline.spectrum`) and derives every
spectral feature from it through the bases of :mod:`pipeline.filterbanks` and the tuning of
:mod:`pipeline.tuning` (whose public names are importable from here too, as before the split).
``docs/performance.md`` has the profile these kernels were shaped by.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .config import FeatureConfig
from .dsp import fft_frequencies
from .errors import ConfigError
from .filterbanks import bin_moments, chroma_basis, per_segment_product
from .kernel_checks import check_array, check_batch, check_frame_counts, check_positive_int
from .schema import SUMMARY_STATS
from .spectrum import live_frames, magnitude_spectrogram, power_to_db, stft
from .tuning import estimate_tuning

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

#: the smallest normal float32: a frame whose total is below it is left unnormalised (librosa)
_TINY32 = np.finfo(np.float32).tiny


def _check_frames(frame_length: object, hop_length: object) -> None:
    check_positive_int(frame_length, name="frame_length")
    check_positive_int(hop_length, name="hop_length")


def _frame_sums(values: np.ndarray, *, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    """Sum of ``values[..., t * hop : t * hop + frame_length]`` for each frame ``t``, in float64.

    With frames a whole number of hops long, sums per hop-sized block and adds up the blocks
    of each frame; otherwise a float64 running sum.

    Parameters
    ----------
    values : np.ndarray [shape=(n, samples)]
        Per-sample values (squares, crossings), already padded.
    frame_length, hop_length : int > 0 [scalar]
        Frame length and hop, in samples.
    n_frames : int > 0 [scalar]
        Frames to sum; the last one must end within ``values``.

    Returns
    -------
    np.ndarray [shape=(n, n_frames), dtype=float64]
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
    """Root-mean-square value of each frame of each segment.

    ``rms(y=y)[i]`` is ``librosa.feature.rms(y=y[i], frame_length=frame_length,
    hop_length=hop_length, center=True)[0]``: frames centred on ``t * hop_length`` of the
    signal zero-padded by ``frame_length // 2`` on both sides. The sums of squares are taken in
    float64.

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Segments of audio; any real dtype (cast to float32).
    frame_length : int > 0 [scalar]
        Length of each analysis frame, in samples.
    hop_length : int > 0 [scalar]
        Samples between the starts of adjacent frames.

    Returns
    -------
    rms : np.ndarray [shape=(n, frames), dtype=float32]
        ``frames = 1 + (samples + 2 * (frame_length // 2) - frame_length) // hop_length``.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers.
    ConfigError
        ``frame_length`` or ``hop_length`` is not a positive integer.

    See Also
    --------
    librosa.feature.rms
    """
    y = check_batch(y)
    _check_frames(frame_length, hop_length)
    pad = frame_length // 2
    padded = np.pad(y, ((0, 0), (pad, pad)), mode="constant")
    n_frames = 1 + (padded.shape[-1] - frame_length) // hop_length
    sq = np.square(padded, dtype=np.float64)
    power = _frame_sums(sq, frame_length=frame_length, hop_length=hop_length, n_frames=n_frames)
    result: np.ndarray = np.sqrt(np.maximum(power, 0.0) / frame_length).astype(np.float32)
    return result


def zero_crossing_rate(*, y: np.ndarray, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Fraction of each frame's samples at which the sign of the signal changes.

    ``zero_crossing_rate(y=y)[i]`` is ``librosa.feature.zero_crossing_rate(y[i],
    frame_length=frame_length, hop_length=hop_length, center=True)[0]``: the signal is
    edge-padded by ``frame_length // 2`` on both sides, ``|y| <= 1e-10`` counts as zero and
    zero as positive (librosa's ``threshold`` and ``zero_pos``).

    Parameters
    ----------
    y : np.ndarray [shape=(n, samples)]
        Segments of audio; any real dtype (cast to float32).
    frame_length : int > 0 [scalar]
        Length of each analysis frame, in samples.
    hop_length : int > 0 [scalar]
        Samples between the starts of adjacent frames.

    Returns
    -------
    zcr : np.ndarray [shape=(n, frames), dtype=float32]
        In ``[0, 1)``; ``frames = 1 + (samples + 2 * (frame_length // 2) - frame_length) // hop_length``.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers.
    ConfigError
        ``frame_length`` or ``hop_length`` is not a positive integer.

    See Also
    --------
    librosa.feature.zero_crossing_rate
    """
    y = check_batch(y)
    _check_frames(frame_length, hop_length)
    pad = frame_length // 2
    padded = np.pad(y, ((0, 0), (pad, pad)), mode="edge")
    signs = np.signbit(padded) & (padded < np.float32(-1e-10))
    # crossing[k] marks a sign change between samples k and k+1; a frame holds frame_length - 1
    # of them. The trailing zero keeps every frame's one-past-the-end index in range.
    crossing = np.zeros((y.shape[0], padded.shape[-1]), dtype=np.int8)
    np.not_equal(signs[:, 1:], signs[:, :-1], out=crossing[:, :-1].view(np.bool_))
    n_frames = 1 + (padded.shape[-1] - frame_length) // hop_length
    counts = _frame_sums(crossing, frame_length=frame_length, hop_length=hop_length, n_frames=n_frames)
    counts -= crossing[:, np.arange(n_frames) * hop_length + frame_length - 1]
    return (counts / frame_length).astype(np.float32)


def spectral_shape(magnitude: np.ndarray, live: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Spectral centroid, bandwidth (``p=2``) and rolloff (``roll_percent=0.85``) of each frame.

    The moments are one float64 product of the spectra with the columns 1, k, k^2 (k the bin):
    each product of a float32 value with a bin index is exact in float64, so bandwidth^2 =
    E[f^2] - centroid^2 loses nothing to cancellation that matters (1e-9 relative of librosa's
    direct formula); one product per segment (:func:`~pipeline.filterbanks.per_segment_product`).
    The rolloff keeps librosa's float32 running sum: at its 85% threshold the last bit decides
    the bin.

    Parameters
    ----------
    magnitude : np.ndarray [shape=(n, frames, 1 + n_fft // 2), dtype=float32]
        Magnitude spectrogram (:func:`~pipeline.spectrum.magnitude_spectrogram`).
    live : np.ndarray [shape=(n,), dtype=int]
        Frames of each segment with audio (:func:`~pipeline.spectrum.live_frames`).
    config : FeatureConfig
        Its ``sr`` and ``n_fft``.

    Returns
    -------
    dict of str to np.ndarray [shape=(n, frames), dtype=float32]
        ``spectral_centroid``, ``spectral_bandwidth``, ``spectral_rolloff``, in Hz; 0 for a
        silent frame.
    """
    n, t, n_freq = magnitude.shape
    bin_hz = config.sr / config.n_fft
    flat = magnitude.reshape(n * t, n_freq)
    moments = per_segment_product(magnitude.astype(np.float64), bin_moments(n_freq), live, dtype=np.float64).reshape(n * t, 3)
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
    freq = fft_frequencies(sr=config.sr, n_fft=config.n_fft)
    rolloff = freq[np.minimum(first, n_freq - 1)]
    return {
        "spectral_centroid": (centroid_bins * bin_hz).astype(np.float32).reshape(n, t),
        "spectral_bandwidth": (bandwidth_bins * bin_hz).astype(np.float32).reshape(n, t),
        "spectral_rolloff": rolloff.astype(np.float32).reshape(n, t),
    }


def chroma_from_power(power: np.ndarray, live: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``librosa.feature.chroma_stft`` of each segment from its power spectrogram.

    Each segment's own tuning (:func:`~pipeline.tuning.estimate_tuning`), each segment's own
    product over its live frames (zero past them); each frame normalised by its maximum.

    Parameters
    ----------
    power : np.ndarray [shape=(n, frames, 1 + n_fft // 2), dtype=float32]
        Power spectrogram.
    live : np.ndarray [shape=(n,), dtype=int]
        Frames of each segment with audio (:func:`~pipeline.spectrum.live_frames`).
    config : FeatureConfig
        Its ``sr``, ``n_fft`` and ``n_chroma``.

    Returns
    -------
    chroma : np.ndarray [shape=(n, frames, n_chroma), dtype=float32]
        In ``[0, 1]``; all zero for a silent frame.
    """
    tunings = estimate_tuning(S=power, sr=config.sr, bins_per_octave=config.n_chroma)
    chroma = np.zeros((*power.shape[:-1], config.n_chroma), dtype=np.float32)
    for i, (tuning, k) in enumerate(zip(tunings.tolist(), np.minimum(live, power.shape[1]).tolist(), strict=True)):
        if k:
            np.matmul(power[i, :k], chroma_basis(config.sr, config.n_fft, float(tuning), config.n_chroma), out=chroma[i, :k])
    peak = chroma.max(axis=-1, keepdims=True)  # the filters and the power are >= 0
    chroma /= np.where(peak < _TINY32, np.float32(1.0), peak)
    return chroma


def compute_features(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Every variable of ``config.features`` for a batch of segments.

    Each family (:mod:`pipeline.families`) computes from the batch's shared intermediates, each
    computed once: one STFT per segment, and only over the frames up to the batch's last one
    with audio (the frames after it lie in zero-padding, and their features are a family's
    constants for a zero spectrum: -100 dB, 0). A segment's arrays are the same bits whatever
    batch it comes in.

    Parameters
    ----------
    y : np.ndarray [shape=(n, config.segment_samples)]
        Zero-padded segments of audio at ``config.sr``; any real dtype (cast to float32).
    config : FeatureConfig
        What to compute and how: ``features`` (the families) and their parameters, and
        ``segment_seconds`` (the segment length ``y`` must have).

    Returns
    -------
    features : dict of str to np.ndarray
        One C-contiguous float32 array per variable of ``config.features``, in store order:
        ``[shape=(n, frames[, bins])]`` for a frame-level variable (frames of its family's
        framing: ``config.n_frames`` for the STFT's), ``[shape=(n[, bins])]`` for a
        per-segment one. Bins: ``spectrogram`` ``1 + n_fft // 2`` (dB), ``mel`` ``n_mels``
        (dB), ``mfcc`` ``n_mfcc``, ``chroma`` ``n_chroma``; the rest ``docs/store.md``.

    Raises
    ------
    InputError
        ``y`` is not a non-empty 2-D array of real numbers, or its segments are not
        ``config.segment_samples`` long.
    ConfigError
        ``config`` is not a :class:`~pipeline.config.FeatureConfig`.
    FamilyError
        A family's kernel failed or returned a wrong array.

    See Also
    --------
    pipeline.testing.reference_segment : the same variables from their reference libraries
    """
    if not isinstance(config, FeatureConfig):
        raise ConfigError(f"Expected config to be a FeatureConfig, got a {type(config).__name__}")
    from .families.inputs import compute

    return compute(y, config)


def summarize(values: np.ndarray, valid_frames: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and (population) standard deviation over each segment's valid frames.

    The frames from ``valid_frames[i]`` on (the zero-padding of a file's last segment) are left
    out of segment ``i``'s statistics. The sums are taken in float64.

    Parameters
    ----------
    values : np.ndarray [shape=(n, frames) or (n, frames, bins)]
        Frame-level values of one variable (:func:`compute_features`); real-valued.
    valid_frames : np.ndarray [shape=(n,), dtype=int]
        Frames of each segment to summarise, from the first; at least 1 for a real segment
        (clipped to ``[0, frames]``).

    Returns
    -------
    stats : dict of str to np.ndarray [shape=(n,) or (n, bins), dtype=float32]
        ``"mean"`` and ``"std"`` (the keys of ``SUMMARY_STATS``); NaN-free: 0 where no frame is
        valid.

    Raises
    ------
    InputError
        ``values`` is not a 2-D or 3-D array of real numbers with at least one segment, or
        ``valid_frames`` is not one integer per segment.
    """
    values = check_array(values, name="values", ndims=(2, 3), layout="(n, frames) or (n, frames, bins)")
    n, n_frames = values.shape[:2]
    frames = np.clip(check_frame_counts(valid_frames, name="valid_frames", n=n), 0, n_frames)
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
