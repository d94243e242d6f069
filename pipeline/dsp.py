"""numpy ports of the librosa (and scipy.signal) helpers the kernels need, bit for bit.

The kernels build constants (filterbanks, windows, frequency grids, derivative taps) and call
a few small helpers that librosa 0.11 provides; importing librosa costs a process numba,
scipy.signal and about 1.5 s. Each function here computes exactly what the librosa function
its docstring names computes, in the same floating-point operations, for the parameters the
kernels use (``tests/test_dsp.py`` compares each with its original, ``np.array_equal``).
librosa itself stays the references' and the plots' (:mod:`pipeline._librosa`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "abs2",
    "chroma_filters",
    "fft_frequencies",
    "hann_window",
    "hz_to_mel",
    "hz_to_octs",
    "mel_filters",
    "mel_frequencies",
    "mel_to_hz",
    "normalize",
    "parabolic_shift",
    "savgol_deriv_taps",
    "tempo_frequencies",
]

#: the Slaney mel scale: linear below 1 kHz (``200/3`` Hz per mel), logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def fft_frequencies(*, sr: float, n_fft: int) -> np.ndarray:
    """``librosa.fft_frequencies(sr=sr, n_fft=n_fft)``: the centre of each rFFT bin, in Hz.

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2,), dtype=float64]
    """
    freqs: np.ndarray = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    return freqs


def hz_to_mel(frequencies: float | np.ndarray) -> np.ndarray:
    """``librosa.hz_to_mel(frequencies)`` (Slaney's scale, ``htk=False``).

    Parameters
    ----------
    frequencies : float or np.ndarray
        Frequencies in Hz.

    Returns
    -------
    np.ndarray [shape=np.shape(frequencies)]
    """
    frequencies = np.asanyarray(frequencies)
    mels: np.ndarray = (frequencies - 0.0) / _F_SP
    if frequencies.ndim:
        log_t = frequencies >= _MIN_LOG_HZ
        mels[log_t] = _MIN_LOG_MEL + np.log(frequencies[log_t] / _MIN_LOG_HZ) / _LOGSTEP
    elif frequencies >= _MIN_LOG_HZ:
        mels = _MIN_LOG_MEL + np.log(frequencies / _MIN_LOG_HZ) / _LOGSTEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """``librosa.mel_to_hz(mels)`` (Slaney's scale, ``htk=False``) of an array.

    Parameters
    ----------
    mels : np.ndarray [shape=(n,)]
        Mel values (at least one dimension).

    Returns
    -------
    np.ndarray [shape=(n,)], in Hz
    """
    mels = np.asanyarray(mels)
    freqs: np.ndarray = 0.0 + _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


def mel_frequencies(n_mels: int, *, fmin: float, fmax: float) -> np.ndarray:
    """``librosa.mel_frequencies(n_mels, fmin=fmin, fmax=fmax)`` (``htk=False``).

    ``n_mels`` frequencies evenly spaced on Slaney's mel scale from ``fmin`` to ``fmax``.

    Returns
    -------
    np.ndarray [shape=(n_mels,), dtype=float64], in Hz
    """
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels))


def mel_filters(*, sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``.

    Slaney's mel scale (``htk=False``), each triangle scaled to unit area (``norm='slaney'``),
    float32. Warns as librosa does when a band holds no FFT bin.

    Returns
    -------
    M : np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32]
    """
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = fft_frequencies(sr=sr, n_fft=n_fft)
    mel_f = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn("Empty filters detected in mel frequency basis. Some channels will produce empty responses. "
                      "Try increasing your sampling rate (and fmax) or reducing n_mels.", stacklevel=2)
    return weights


def hz_to_octs(frequencies: np.ndarray, *, tuning: float, bins_per_octave: int) -> np.ndarray:
    """``librosa.hz_to_octs(frequencies, tuning=tuning, bins_per_octave=bins_per_octave)``.

    Octaves above C0 (A440 moved by ``tuning`` bins), ``log2(f / (A440 / 16))``.
    """
    a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
    octs: np.ndarray = np.log2(np.asanyarray(frequencies) / (float(a440) / 16))
    return octs


def normalize(S: np.ndarray, *, norm: float, axis: int) -> np.ndarray:
    """``librosa.util.normalize(S, norm=norm, axis=axis)`` for a finite ``S`` and a p-norm ``norm > 0``.

    Each slice along ``axis`` divided by its ``norm``-norm; a slice whose norm is below the
    smallest normal number of ``S``'s dtype is left as it is (``fill=None``).
    """
    mag = np.abs(S).astype(float)
    length: np.ndarray = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < np.finfo(S.dtype).tiny] = 1.0
    out = np.empty_like(S)
    out[:] = S / length
    return out


def chroma_filters(*, sr: float, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    """``librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)``.

    librosa's defaults for the rest: ``ctroct=5.0``, ``octwidth=2``, ``norm=2``, ``base_c=True``,
    float32.

    Returns
    -------
    C : np.ndarray [shape=(n_chroma, 1 + n_fft // 2), dtype=float32]
    """
    ctroct, octwidth, norm = 5.0, 2, 2
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * hz_to_octs(frequencies, tuning=tuning, bins_per_octave=n_chroma)
    # the 0 Hz bin: 1.5 octaves below bin 1
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=norm, axis=0)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - ctroct) / octwidth) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)


def hann_window(n: int) -> np.ndarray:
    """``librosa.filters.get_window('hann', n, fftbins=True)``: the periodic Hann window.

    scipy.signal's ``hann(n, sym=False)`` as it computes it: ``0.5 + 0.5 cos(x)`` over
    ``np.linspace(-pi, pi, n + 1)``, the last point dropped; ones for ``n <= 1``.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64]
    """
    if n <= 1:
        return np.ones(n)
    window: np.ndarray = (0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, n + 1)))[:-1]
    return window


def tempo_frequencies(n_bins: int, *, hop_length: int, sr: float) -> np.ndarray:
    """``librosa.tempo_frequencies(n_bins, hop_length=hop_length, sr=sr)``: each lag's BPM.

    Returns
    -------
    np.ndarray [shape=(n_bins,), dtype=float64]
        ``inf`` at lag 0, ``60 sr / (hop_length lag)`` after.
    """
    bpms = np.zeros(int(n_bins), dtype=np.float64)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, n_bins))
    return bpms


def abs2(x: np.ndarray) -> np.ndarray:
    """``librosa.util.abs2(x)`` of a complex array: ``x.real**2 + x.imag**2`` (no FMA, as numba's)."""
    out: np.ndarray = np.square(x.real) + np.square(x.imag)
    return out


def parabolic_shift(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``librosa.core.pitch._parabolic_interpolation(np.stack([left, mid, right], -1), axis=-1)[..., 1]``.

    The vertex of the parabola through three float32 points, relative to the middle one; 0
    where it lies a bin or more away. librosa's numba stencil computes it in float64 (its
    integer constants promote the float32 operands) and stores float32.

    Parameters
    ----------
    left, mid, right : np.ndarray [shape=(n,), dtype=float32]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    a = (right + left).astype(np.float64) - 2 * mid.astype(np.float64)
    b = (right - left).astype(np.float64) / 2
    out = np.zeros(a.shape, dtype=np.float32)
    inside = ~(np.abs(b) >= np.abs(a))
    out[inside] = -b[inside] / a[inside]
    return out


def _savgol_coeffs(width: int, polyorder: int, deriv: int) -> np.ndarray:
    """``scipy.signal.savgol_coeffs(width, polyorder, deriv=deriv)`` (odd ``width``, ``use='conv'``)."""
    half = width // 2
    x = np.arange(-half, width - half, dtype=np.float64)[::-1]
    A = x ** np.arange(polyorder + 1, dtype=np.float64).reshape(-1, 1)
    y = np.zeros(polyorder + 1, dtype=np.float64)
    y[deriv] = float(math.factorial(deriv))
    coeffs: np.ndarray = np.linalg.lstsq(A, y, rcond=np.finfo(np.float64).eps * max(A.shape))[0]
    return coeffs


def _correlation_weights(conv: np.ndarray) -> np.ndarray:
    """The weights ``scipy.ndimage.convolve1d(x, conv)`` multiplies ``x[t - h : t + h + 1]`` by.

    ndimage reverses the filter to correlate, and takes a filter symmetric (antisymmetric) to
    within float64 epsilon for an exactly symmetric (antisymmetric) one: its right half is its
    left half mirrored (and negated).
    """
    w = np.array(conv[::-1], dtype=np.float64)
    half = w.size // 2
    eps = np.finfo(np.float64).eps
    if all(abs(w[half + i] - w[half - i]) <= eps for i in range(1, half + 1)):
        w[half + 1 :] = w[half - 1 :: -1]
    elif all(abs(w[half + i] + w[half - i]) <= eps for i in range(1, half + 1)):
        w[half + 1 :] = -w[half - 1 :: -1]
    return w


def _edge_derivative(width: int, polyorder: int, deriv: int, rows: slice) -> np.ndarray:
    """``savgol_filter``'s ``mode='interp'`` edge: the ``deriv``-th derivative, at the points
    ``rows`` of a window of ``width``, of the polynomial fitted to each one-hot column.

    ``scipy.signal._savitzky_golay._fit_edge`` of ``np.eye(width)``: its scaled Vandermonde
    least squares, ``polyder``, Horner's ``polyval``.

    Returns
    -------
    np.ndarray [shape=(len(rows), width), dtype=float64]
    """
    order = polyorder + 1
    x = np.arange(0, width, dtype=np.float64)
    lhs = x[:, None] ** np.arange(order, dtype=np.float64)[::-1][None, :]
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))
    lhs /= scale
    poly = np.linalg.lstsq(lhs, np.eye(width), rcond=width * np.finfo(np.float64).eps)[0]
    poly = (poly.T / scale).T
    n = poly.shape[0]
    if deriv:
        poly = poly[:-deriv].copy()
        for k in range(deriv):
            poly *= np.arange(n - k - 1, deriv - k - 1, -1, dtype=np.float64).reshape(n - deriv, 1)
    points = np.arange(rows.start, rows.stop, dtype=np.float64).reshape(-1, 1)
    values = np.zeros_like(points)
    for j in range(poly.shape[0]):
        values = values * points + poly[j, ...]
    out: np.ndarray = values / (1.0**deriv)
    return out


def savgol_deriv_taps(n_frames: int, width: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.savgol_filter(np.eye(n_frames), width, polyorder=order, deriv=order, axis=0,
    mode='interp')`` as ``width`` taps per frame (``librosa.feature.delta``'s filter).

    Frame ``t`` of the filtered sequence is ``sum_j weights[t, j] * x[start[t] + j]``: the
    interior frames the filter's taps around ``t``, the first and last ``width // 2`` frames the
    derivative of the polynomial fitted to the first (last) ``width`` frames.

    Parameters
    ----------
    n_frames : int >= width [scalar]
    width : odd int >= 3 [scalar]
    order : int in [1, width) [scalar]
        Polynomial order and derivative order.

    Returns
    -------
    start : np.ndarray [shape=(n_frames,), dtype=int64]
    weights : np.ndarray [shape=(n_frames, width), dtype=float64]
    """
    half = width // 2
    start = np.clip(np.arange(n_frames) - half, 0, n_frames - width)
    weights = np.empty((n_frames, width))
    weights[:] = _correlation_weights(_savgol_coeffs(width, order, order))
    weights[:half] = _edge_derivative(width, order, order, slice(0, half))
    weights[n_frames - half :] = _edge_derivative(width, order, order, slice(width - half, width))
    return start, weights
