"""The chroma kernel's tuning estimate: ``librosa.estimate_tuning`` per segment, batched.

Chroma filters are centred on the segment's own tuning, and the estimate is a histogram
argmax over the pitches of the spectral peaks: a pitch near a histogram edge moves a whole
bin on its last bit. The arithmetic here is therefore librosa 0.11's own, in float32, step for
step (``librosa.piptrack`` then ``librosa.pitch_tuning``), evaluated only where it matters: in
the band 150-4000 Hz, and the parabolic interpolation only at the peaks.
"""

from __future__ import annotations

import numpy as np

from .dsp import fft_frequencies, parabolic_shift
from .errors import InputError
from .kernel_checks import check_array, check_positive_int

__all__ = ["estimate_tuning"]

#: the band ``librosa.estimate_tuning`` looks for peaks in (Hz), its defaults
_FMIN, _FMAX = 150.0, 4000.0
#: histogram edges of the tuning deviations: ``librosa.pitch_tuning``'s ``resolution=0.01``
_EDGES = np.linspace(-0.5, 0.5, 101)
_EDGES.setflags(write=False)


def estimate_tuning(*, S: np.ndarray, sr: int, bins_per_octave: int = 12) -> np.ndarray:
    """Estimate each segment's tuning deviation from A440 from its power spectrogram.

    ``estimate_tuning(S=S, sr=sr)[i] == librosa.estimate_tuning(S=S[i].T, sr=sr,
    bins_per_octave=bins_per_octave)``, exactly: the same float32 arithmetic as
    ``librosa.piptrack`` and ``librosa.pitch_tuning``.

    Parameters
    ----------
    S : np.ndarray [shape=(n, frames, 1 + n_fft // 2)]
        Power spectrogram of each segment (non-negative); real-valued, cast to float32.
    sr : int > 0 [scalar]
        Sampling rate of the audio the spectra were computed from.
    bins_per_octave : int > 0 [scalar]
        Number of frequency bins per octave (the chroma bins).

    Returns
    -------
    tuning : np.ndarray [shape=(n,), dtype=float64]
        Deviation of each segment in fractions of a bin, in ``[-0.5, 0.5)`` by steps of 0.01;
        0 for a segment with no peak in the band (silence, for instance).

    Raises
    ------
    InputError
        ``S`` is not a 3-D array of real numbers with at least one segment and two bins.
    ConfigError
        ``sr`` or ``bins_per_octave`` is not a positive integer.

    See Also
    --------
    librosa.estimate_tuning
    pipeline.filterbanks.chroma_basis : the filters the tuning shifts
    """
    S = check_array(S, name="S", ndims=(3,), layout="(n, frames, 1 + n_fft // 2)")
    if S.shape[-1] < 2:
        raise InputError(f"Expected S with at least 2 frequency bins (1 + n_fft // 2), got shape {S.shape}")
    check_positive_int(sr, name="sr")
    check_positive_int(bins_per_octave, name="bins_per_octave")
    S = np.asarray(S, dtype=np.float32)
    n_fft = 2 * (S.shape[-1] - 1)
    fft_freqs = fft_frequencies(sr=sr, n_fft=n_fft)
    band = np.flatnonzero((fft_freqs >= _FMIN) & (fft_freqs < min(_FMAX, float(sr) / 2)))
    tunings = np.zeros(S.shape[0], dtype=np.float64)
    if band.size == 0:
        return tunings
    seg, frame, bins = _peaks(S, int(band[0]), int(band[-1]))
    if seg.size == 0:
        return tunings
    left, mid, right = S[seg, frame, bins - 1], S[seg, frame, bins], S[seg, frame, bins + 1]
    # librosa's (numba) stencil for the parabolic shift; np.gradient's central difference
    shift = parabolic_shift(left, mid, right)
    avg = (right - left) / 2.0
    dskew = 0.5 * avg * shift
    mag = mid + dskew
    pitch = ((bins + shift) * float(sr) / n_fft).astype(np.float32)
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
        counts, _ = np.histogram(residual, _EDGES)
        tunings[i] = _EDGES[np.argmax(counts)]
    return tunings


def _peaks(S: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``librosa.piptrack``'s peaks among the bins ``first..last`` (inclusive) of float32 ``S``.

    piptrack keeps local maxima of ``S * (S > 0.1 * max over freq)`` inside ``[fmin, fmax)``:
    the band's bins and one either side are all the local-maximum test looks at.

    Parameters
    ----------
    S : np.ndarray [shape=(n, frames, freq), dtype=float32]
        Power spectrogram.
    first, last : int [scalar]
        The band's first and last bin.

    Returns
    -------
    segment, frame, bin : np.ndarray [shape=(peaks,), dtype=int]
        Where the peaks are, ordered by segment (then frame, then bin).
    """
    lo, hi = max(first - 1, 0), min(last + 2, S.shape[-1])
    ref_value = np.float32(0.1) * S.max(axis=-1, keepdims=True)
    sub = S[..., lo:hi]
    kept = sub * (sub > ref_value)
    center = kept[..., 1:-1]
    peaks = (center > kept[..., :-2]) & (center >= kept[..., 2:])
    # the first and last bins of the spectrum are never peaks: librosa's stencil leaves them out
    first_bin = lo + 1
    if first_bin < first:
        peaks[..., : first - first_bin] = False
    last_bin = hi - 2
    if last_bin > last:
        peaks[..., last - last_bin :] = False
    seg, frame, k = np.nonzero(peaks)
    return seg, frame, k + first_bin
