"""Drum one-shots: kick, snare (or clap), hi-hat and cymbal, each from noise and sines."""

from __future__ import annotations

import numpy as np

from .mixing import _butter_mag, _unit
from .signals import _F64


def _band(x: _F64, sr: int, low: float, high: float) -> _F64:
    """Zero-phase band-pass of a short signal (cut-offs clamped below Nyquist), unit RMS."""
    top = min(high, 0.45 * sr)
    bottom = min(low, 0.5 * top)
    spectrum = np.fft.rfft(x.astype(np.float32))
    freqs = np.fft.rfftfreq(x.size, 1.0 / sr).astype(np.float32)
    spectrum *= _butter_mag(freqs, bottom, 2, high=True) * _butter_mag(freqs, top, 2, high=False)
    out: _F64 = np.fft.irfft(spectrum, x.size).astype(np.float64)
    return _unit(out)


def _band_noise(rng: np.random.Generator, n: int, sr: int, low: float, high: float) -> _F64:
    return _band(rng.standard_normal(n), sr, low, high)


def _kick(sr: int, rng: np.random.Generator, *, f_start: float, f_end: float, decay: float) -> _F64:
    n = int(decay * 5 * sr)
    t = np.arange(n, dtype=np.float64) / sr
    sweep = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.025, 0.05))
    body = np.sin(2.0 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t / decay)
    click = _band_noise(rng, n, sr, 1000.0, 5000.0) * np.exp(-t / 0.002)
    out: _F64 = body + rng.uniform(0.1, 0.3) * click
    return out


def _snare(
    sr: int,
    rng: np.random.Generator,
    *,
    tone_hz: float,
    decay: float,
    noisiness: float,
    band: tuple[float, float] = (1500.0, 7000.0),
) -> _F64:
    n = int(decay * 5 * sr)
    t = np.arange(n, dtype=np.float64) / sr
    body = np.sin(2.0 * np.pi * tone_hz * t) * np.exp(-t / 0.05)
    rattle = _band_noise(rng, n, sr, *band) * np.exp(-t / decay) * 0.5
    out: _F64 = (1.0 - noisiness) * body + noisiness * rattle
    return out


def _hat(
    sr: int,
    rng: np.random.Generator,
    *,
    decay: float,
    band: tuple[float, float] = (6000.0, 10000.0),
) -> _F64:
    n = int(decay * 6 * sr)
    t = np.arange(n, dtype=np.float64) / sr
    out: _F64 = _band_noise(rng, n, sr, *band) * 0.5 * np.exp(-t / decay)
    return out


def _cymbal(sr: int, rng: np.random.Generator, *, decay: float, ping: float) -> _F64:
    """Ride/crash: inharmonic square-wave partials plus band-limited noise wash."""
    n = int(decay * 4 * sr)
    t = np.arange(n, dtype=np.float64) / sr
    partials = rng.uniform(300.0, 900.0, size=6) * np.array([1.0, 1.48, 1.71, 2.53, 3.37, 4.1])
    metal = np.zeros(n, dtype=np.float64)
    for f in partials:
        metal += np.sign(np.sin(2.0 * np.pi * f * t + rng.uniform(0, 2 * np.pi)))
    metal = _band(metal, sr, 2500.0, 9000.0)
    wash = _band_noise(rng, n, sr, 3000.0, 9000.0)
    env = np.exp(-t / decay)
    out: _F64 = (ping * metal + (1.0 - ping) * wash) * (0.3 * env)
    out += ping * 0.3 * np.sin(2.0 * np.pi * partials[0] * 4.0 * t) * np.exp(-t / 0.25)
    return out
