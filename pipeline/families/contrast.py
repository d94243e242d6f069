"""``contrast``: the spectral contrast of octave bands (peak over valley, in dB)."""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .registry import Axis, Family, Variable, register

if TYPE_CHECKING:
    from ..config import FeatureConfig
    from .inputs import Inputs

#: librosa's defaults: the lowest band edge (Hz), the octave bands above it, the quantile
FMIN = 200.0
N_BANDS = 6
QUANTILE = 0.02
#: ``power_to_db``'s floor and clip (librosa applies them to the band means)
AMIN = 1e-10
TOP_DB = 80.0

CONTRAST_BAND = Axis(
    "contrast_band", lambda c: N_BANDS + 1,
    "octave band: 0 below 200 Hz, k in [200 * 2**(k-1), 200 * 2**k] Hz, 6 from 6400 Hz to sr/2",
)


@lru_cache(maxsize=16)
def band_layout(sr: int, n_fft: int) -> tuple[tuple[int, int, int], ...]:
    """Each band's bins and quantile count, as ``librosa.feature.spectral_contrast`` picks them.

    Parameters
    ----------
    sr : int > 0 [scalar]
        Sampling rate.
    n_fft : int > 0 [scalar]
        FFT length: bin ``k`` is centred at ``k * sr / n_fft``.

    Returns
    -------
    tuple of (start, stop, count) [length=N_BANDS + 1]
        Band ``k`` sorts the bins ``start:stop``; its valley (peak) is the mean of its
        ``count`` smallest (largest) magnitudes.

    Raises
    ------
    ConfigError
        A band lies above Nyquist or holds no bin (librosa raises for both).
    """
    octa = np.zeros(N_BANDS + 2)
    octa[1:] = FMIN * (2.0 ** np.arange(0, N_BANDS + 1))
    if np.any(octa[:-1] >= 0.5 * sr):
        raise ConfigError(f"Expected sr > {2 * octa[-2]:g} for the contrast family (its top band starts at "
                          f"{octa[-2]:g} Hz), got {sr}")
    freq = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)  # librosa.fft_frequencies
    layout = []
    for k, (f_low, f_high) in enumerate(itertools.pairwise(octa)):
        idx = np.flatnonzero((freq >= f_low) & (freq <= f_high))
        if idx.size == 0:
            raise ConfigError(f"Expected every contrast band to hold an STFT bin, got none in "
                              f"[{f_low:g}, {f_high:g}] Hz with n_fft={n_fft} at sr={sr}")
        start = int(idx[0]) - 1 if k > 0 else int(idx[0])  # one bin below the band, above band 0
        stop = n_fft // 2 + 1 if k == N_BANDS else int(idx[-1]) + 1
        selected = stop - start
        if k < N_BANDS:
            stop -= 1  # librosa drops the band's last bin (it counts it for the quantile)
        if stop <= start:
            raise ConfigError(f"Expected the contrast band [{f_low:g}, {f_high:g}] Hz to keep a bin, got none "
                              f"with n_fft={n_fft} at sr={sr}")
        count = max(int(np.rint(QUANTILE * selected)), 1)
        layout.append((start, stop, count))
    return tuple(layout)


def check(config: FeatureConfig) -> None:
    band_layout(config.sr, config.n_fft)


def _running_mean(ascending: np.ndarray) -> np.ndarray:
    """Float32 mean along the last axis of sorted values, in float64 (librosa's array).

    librosa's band is a C-ordered ``(bins, frames)`` copy: ``np.mean`` adds its sorted bins
    with a float32 running sum from the smallest up, ``np.cumsum``'s order here."""
    total = np.cumsum(ascending, axis=-1)[..., -1]
    mean: np.ndarray = (total / np.float32(ascending.shape[-1])).astype(np.float64)
    return mean


def band_extremes_db(magnitude: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each band's peak and valley in dB, not yet clipped (``power_to_db`` with ``top_db=None``).

    Parameters
    ----------
    magnitude : np.ndarray [shape=(n, frames, 1 + n_fft // 2), dtype=float32]
        Magnitude spectrogram.
    config : FeatureConfig
        Its ``sr`` and ``n_fft``.

    Returns
    -------
    peak_db, valley_db : np.ndarray [shape=(n, frames, N_BANDS + 1), dtype=float64]
        ``10 * log10(max(mean, 1e-10))`` of the mean of each band's largest (smallest) bins.
    """
    n, frames, _ = magnitude.shape
    peak = np.empty((n, frames, N_BANDS + 1))
    valley = np.empty_like(peak)
    for k, (start, stop, count) in enumerate(band_layout(config.sr, config.n_fft)):
        # numpy's vectorised sort beats a partition for the count smallest and largest
        ordered = np.sort(magnitude[..., start:stop], axis=-1)
        valley[..., k] = _running_mean(ordered[..., :count])
        peak[..., k] = _running_mean(ordered[..., stop - start - count:])
    return 10.0 * np.log10(np.maximum(AMIN, peak)), 10.0 * np.log10(np.maximum(AMIN, valley))


def _pad_frames(values: np.ndarray, n_frames: int, fill: float) -> np.ndarray:
    """``values`` (n, frames, bands) padded along frames to ``n_frames`` with ``fill``, float64."""
    out = np.full((values.shape[0], n_frames, values.shape[2]), fill)
    out[:, : values.shape[1]] = values
    return out


def compute(inputs: Inputs, config: FeatureConfig) -> dict[str, np.ndarray]:
    from ..spectrum import clip_top_db

    peak_db, valley_db = band_extremes_db(inputs.magnitude, config)
    # a zero spectrum's bands, the same expression (librosa's power_to_db of a zero mean)
    silent = float((10.0 * np.log10(np.maximum(AMIN, np.zeros(1))))[0])
    # librosa clips each of peak and valley at 80 dB below its max over the whole segment
    peak_db = clip_top_db(_pad_frames(peak_db, config.n_frames, silent), TOP_DB)
    valley_db = clip_top_db(_pad_frames(valley_db, config.n_frames, silent), TOP_DB)
    return {"spectral_contrast": (peak_db - valley_db).astype(np.float32)}


def reference(y: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    from .._librosa import librosa

    contrast = librosa.feature.spectral_contrast(y=y, sr=config.sr, n_fft=config.n_fft, hop_length=config.hop_length)
    return {"spectral_contrast": contrast.T}


FAMILY = register(Family(
    name="contrast", version="1",
    variables=(Variable("spectral_contrast",
                        "librosa.feature.spectral_contrast of |stft| (fmin=200, n_bands=6, quantile=0.02): "
                        "power_to_db(peak) - power_to_db(valley), each clipped at top_db=80 over the segment",
                        "dB", CONTRAST_BAND, tolerance="db"),),
    # float32 spectra: valleys of quiet bands are the transform's noise floor, up to 18 dB off
    compute=compute, reference_fn=reference, consumes=("magnitude",), check=check, float64_stft=True,
    reference="spectral_contrast(y, sr, n_fft, hop_length, fmin=200, n_bands=6, quantile=0.02, linear=False)",
    origin={"module": __name__},
))
