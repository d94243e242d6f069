"""Basic test signals (tone, chirp, noise, silence), their argument checks and DSP helpers.

Every generator returns a mono ``float32`` array and is deterministic for a given seed.
The argument checks raise :class:`~pipeline.errors.ConfigError` (a ``ValueError``) with
one-line messages "Expected X, got Y" and are shared by every generator of :mod:`pipeline.synth`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = ["FloatArray", "chirp", "noise", "silence", "tone"]

FloatArray = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"Expected {name} to be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ConfigError(f"Expected {name} to be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    expected = f"Expected {name} to be a finite number in {left}{low}, {high}{right}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{expected}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{expected}, got {value!r}")
    too_low = number < low if low_inclusive else number <= low
    too_high = number > high if high_inclusive else number >= high
    if too_low or too_high:
        raise ConfigError(f"{expected}, got {value!r}")
    return number


def _check_sr(sr: object) -> int:
    return _check_int("sr", sr, minimum=1)


def _check_seed(seed: object) -> int:
    return _check_int("seed", seed, minimum=0)


def _n_samples(seconds: object, sr: int, *, allow_empty: bool = True) -> int:
    secs = _check_float("seconds", seconds, low=0.0)
    n = round(secs * sr)
    if not allow_empty and n < 1:
        raise ConfigError(
            f"Expected seconds to give at least one sample at sr={sr}, got {seconds!r}"
        )
    return n


def _check_freq(name: str, value: object, sr: int) -> float:
    return _check_float(
        name, value, low=0.0, high=sr / 2, low_inclusive=False, high_inclusive=False
    )


def _check_amplitude(amplitude: object) -> float:
    return _check_float("amplitude", amplitude, low=0.0, high=1.0)


# --------------------------------------------------------------------------- basic signals


def tone(
    *, freq: float, seconds: float, sr: int = 22050, amplitude: float = 0.5, phase: float = 0.0
) -> FloatArray:
    """Return a sine tone.

    Parameters
    ----------
    freq : float
        Frequency in Hz, ``0 < freq < sr / 2``.
    seconds : float
        Duration in seconds (``>= 0``); the length is ``round(seconds * sr)``.
    sr : int, default 22050
        Sample rate in Hz.
    amplitude : float, default 0.5
        Peak amplitude in ``[0, 1]``.
    phase : float, default 0.0
        Initial phase in radians.

    Returns
    -------
    numpy.ndarray
        Mono ``float32`` signal ``amplitude * sin(2 pi freq t + phase)``.

    Raises
    ------
    ConfigError
        If ``freq``, ``seconds``, ``sr``, ``amplitude`` or ``phase`` is out of range.
    """
    rate = _check_sr(sr)
    f = _check_freq("freq", freq, rate)
    amp = _check_amplitude(amplitude)
    ph = _check_float("phase", phase, low=-math.inf)
    n = _n_samples(seconds, rate)
    t = np.arange(n, dtype=np.float64) / rate
    out: _F64 = amp * np.sin(2.0 * np.pi * f * t + ph)
    return out.astype(np.float32)


def chirp(
    *, f0: float, f1: float, seconds: float, sr: int = 22050, amplitude: float = 0.5
) -> FloatArray:
    """Return an exponential (logarithmic) sine sweep from ``f0`` to ``f1``.

    Parameters
    ----------
    f0, f1 : float
        Start and end frequencies in Hz, each in ``(0, sr / 2)``. ``f1`` may be
        below ``f0`` (a downward sweep).
    seconds : float
        Duration in seconds (``>= 0``).
    sr : int, default 22050
        Sample rate in Hz.
    amplitude : float, default 0.5
        Peak amplitude in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        Mono ``float32`` sweep whose instantaneous frequency is
        ``f0 * (f1 / f0) ** (t / seconds)``.

    Raises
    ------
    ConfigError
        If an argument is out of range.
    """
    rate = _check_sr(sr)
    start = _check_freq("f0", f0, rate)
    stop = _check_freq("f1", f1, rate)
    amp = _check_amplitude(amplitude)
    n = _n_samples(seconds, rate)
    duration = n / rate
    t = np.arange(n, dtype=np.float64) / rate
    ratio = stop / start
    if n == 0 or math.isclose(ratio, 1.0):
        phase = 2.0 * np.pi * start * t
    else:
        k = math.log(ratio)
        phase = 2.0 * np.pi * start * duration / k * np.expm1(k * t / duration)
    out: _F64 = amp * np.sin(phase)
    return out.astype(np.float32)


def noise(
    *,
    seconds: float,
    sr: int = 22050,
    amplitude: float = 0.1,
    seed: int = 0,
    color: str = "white",
) -> FloatArray:
    """Return Gaussian white or pink (1/f power) noise.

    Parameters
    ----------
    seconds : float
        Duration in seconds (``>= 0``).
    sr : int, default 22050
        Sample rate in Hz.
    amplitude : float, default 0.1
        Peak absolute value of the result, in ``[0, 1]``.
    seed : int, default 0
        Seed for :func:`numpy.random.default_rng`.
    color : {"white", "pink"}, default "white"
        Spectral colour.

    Returns
    -------
    numpy.ndarray
        Mono ``float32`` noise with zero mean and peak ``amplitude``.

    Raises
    ------
    ConfigError
        If an argument is out of range or ``color`` is unknown.
    """
    rate = _check_sr(sr)
    amp = _check_amplitude(amplitude)
    rng = np.random.default_rng(_check_seed(seed))
    if color not in ("white", "pink"):
        raise ConfigError(f"Expected color to be 'white' or 'pink', got {color!r}")
    n = _n_samples(seconds, rate)
    x = rng.standard_normal(n)
    if color == "pink":
        x = _pink(x)
    return _to_peak(x, amp).astype(np.float32)


def silence(*, seconds: float, sr: int = 22050) -> FloatArray:
    """Return digital silence.

    Parameters
    ----------
    seconds : float
        Duration in seconds, finite and ``>= 0``.
    sr : int, default 22050
        Sample rate in Hz.

    Returns
    -------
    numpy.ndarray
        ``float32`` zeros of length ``round(seconds * sr)``.

    Raises
    ------
    ConfigError
        If an argument is out of range.
    """
    rate = _check_sr(sr)
    return np.zeros(_n_samples(seconds, rate), dtype=np.float32)


# --------------------------------------------------------------------------- DSP helpers


def _to_peak(x: _F64, peak: float) -> _F64:
    x = x - x.mean() if x.size else x
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top <= 0.0:
        return np.zeros_like(x)
    scaled: _F64 = x * (peak / top)
    return scaled


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer ``>= n`` (cheap FFT size)."""
    n = max(n, 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            quotient = -(-n // p35)
            best = min(best, (1 << (quotient - 1).bit_length()) * p35)
            p35 *= 3
        p5 *= 5
    return best


def _pink(x: _F64) -> _F64:
    """Shape white noise to a 1/f power spectrum."""
    if x.size < 2:
        return x.copy()
    nfft = _fast_len(x.size)
    spectrum = np.fft.rfft(x, nfft)
    k = np.arange(spectrum.size, dtype=np.float64)
    k[0] = 1.0
    spectrum /= np.sqrt(k)
    spectrum[0] = 0.0
    out: _F64 = np.fft.irfft(spectrum, nfft)[: x.size]
    return out
