"""Mixing buses: zero-phase FFT filters, a convolution reverb, echo, placement and levels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .signals import _F64, _fast_len


def _butter_mag(
    freqs: npt.NDArray[np.float32], cutoff: float, order: int, *, high: bool
) -> npt.NDArray[np.float32]:
    """Butterworth-like magnitude response (applied zero-phase)."""
    edge = np.float32(cutoff)
    ratio = freqs / edge if not high else edge / np.maximum(freqs, np.float32(1e-3))
    return np.asarray(1.0 / np.sqrt(1.0 + ratio ** (2 * order)), dtype=np.float32)


@dataclass(frozen=True)
class _Part:
    """One bus of a mix: zero-phase filters and a reverb send, applied in the FFT domain."""

    signal: _F64
    lowpass: float | None = None
    sweep_to: float | None = None
    highpass: float | None = None
    order: int = 2
    send: float = 0.0
    factor: int = 1  # ``signal`` is sampled at ``sr / factor`` (upsampled in the FFT)


@lru_cache(maxsize=6)
def _reverb_spectrum(nfft: int, sr: int, rt60: float) -> npt.NDArray[np.complex64]:
    """Spectrum of a damped exponential-noise room response (cached per size)."""
    rng = np.random.default_rng([nfft, sr, round(rt60 * 1000)])
    tail = max(1, int(rt60 * sr))
    t = np.arange(tail, dtype=np.float64) / sr
    ir = rng.standard_normal(tail) * np.exp(-6.9 * t / rt60) * np.minimum(1.0, t / 0.01)
    ir /= math.sqrt(float(np.sum(ir * ir)))
    predelay = np.zeros(int(0.015 * sr), dtype=np.float64)
    spectrum = np.fft.rfft(np.concatenate([predelay, ir]).astype(np.float32), nfft)
    spectrum *= _butter_mag(
        np.fft.rfftfreq(nfft, 1.0 / sr).astype(np.float32), 5000.0, 1, high=False
    )
    single = np.asarray(spectrum, dtype=np.complex64)
    single.setflags(write=False)
    return single


def _fft_mix(
    parts: Sequence[_Part],
    n: int,
    sr: int,
    rng: np.random.Generator,
    *,
    rt60: float = 1.0,
    sweep_hz: float = 0.05,
    pink: float = 0.0,
) -> _F64:
    """Filter, reverberate and sum ``parts`` into ``n`` samples, one forward FFT each.

    Every part may have a low-pass (``sweep_to`` makes it an evolving sweep
    between two cut-offs driven by a slow LFO of ``sweep_hz``), a high-pass
    and a send into a shared convolution reverb of ``rt60`` seconds
    (quantised to 0.5 s so its spectrum can be cached). A part rendered at
    ``sr / factor`` is band-limited-upsampled for free by zero-padding its
    spectrum. ``pink`` adds a pink noise bed of that RMS level, generated
    directly in the frequency domain. All filters are zero-phase; the FFTs run
    in single precision. One or two inverse FFTs are used in total.
    """
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    room = max(0.5, round(rt60 * 2.0) / 2.0)
    reverb = any(part.send > 0.0 for part in parts)
    step = math.lcm(*(part.factor for part in parts))
    nfft = step * _fast_len(-(-(n + (int(room * sr) if reverb else 0)) // step))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr).astype(np.float32)
    wet = _reverb_spectrum(nfft, sr, room) if reverb else None
    static = np.zeros(freqs.size, dtype=np.complex64)
    moving: npt.NDArray[np.complex64] | None = None
    for part in parts:
        if part.factor == 1:
            spectrum = np.fft.rfft(part.signal.astype(np.float32), nfft)
        else:
            small = np.fft.rfft(part.signal.astype(np.float32), nfft // part.factor)
            spectrum = small[: nfft // part.factor // 2] * np.float32(part.factor)
        bins = spectrum.size
        band = freqs[:bins]
        if part.highpass is not None:
            spectrum *= _butter_mag(band, part.highpass, part.order, high=True)
        if wet is not None and part.send > 0.0:
            spectrum += np.float32(part.send) * spectrum * wet[:bins]
        if part.lowpass is None:
            static[:bins] += spectrum
            continue
        closed = spectrum * _butter_mag(band, part.lowpass, part.order, high=False)
        static[:bins] += closed
        if part.sweep_to is not None:
            spectrum *= _butter_mag(band, part.sweep_to, part.order, high=False)
            spectrum -= closed
            if moving is None:
                moving = np.zeros(freqs.size, dtype=np.complex64)
            moving[:bins] += spectrum
    if pink > 0.0 and freqs.size > 1:
        count = freqs.size - 1
        scale = pink * nfft / math.sqrt(2.0 * float(np.sum(1.0 / np.arange(1, count + 1))))
        weight = (scale / np.sqrt(2.0 * np.arange(1, count + 1, dtype=np.float32))).astype(
            np.float32
        )
        white = rng.standard_normal((2, count), dtype=np.float32)
        static[1:].real += weight * white[0]
        static[1:].imag += weight * white[1]
    out = np.fft.irfft(static, nfft)[:n].astype(np.float64)
    if moving is not None:
        t = np.arange(n, dtype=np.float64) / sr
        lfo = 0.5 - 0.5 * np.cos(2.0 * np.pi * sweep_hz * t + rng.uniform(0.0, 2.0 * np.pi))
        out += lfo * np.fft.irfft(moving, nfft)[:n]
    return out


def _unit(x: _F64) -> _F64:
    """Scale ``x`` in place to (approximately) unit RMS and return it; zeros stay zeros.

    The RMS is estimated from every 8th sample, which is plenty for audio and
    avoids a full-size temporary (and BLAS threads).
    """
    probe = x[::8]
    rms = math.sqrt(float(np.mean(np.square(probe)))) if probe.size else 0.0
    if rms > 0.0:
        x *= 1.0 / rms
    return x


def _echo(x: _F64, delay: int, feedback: float, *, taps: int) -> _F64:
    """Multi-tap feedback echo (delay in samples)."""
    out = x.copy()
    gain = 1.0
    for k in range(1, taps + 1):
        gain *= feedback
        shift = k * delay
        if shift >= x.size:
            break
        out[shift:] += gain * x[: x.size - shift]
    return out


def _place(
    out: _F64, sample: _F64, times: Sequence[float], gains: Sequence[float], sr: int
) -> None:
    """Mix ``sample`` into ``out`` at each onset time (seconds) with its gain."""
    size = out.size
    for when, gain in zip(times, gains, strict=True):
        start = round(when * sr)
        if start < 0 or start >= size:
            continue
        stop = min(size, start + sample.size)
        out[start:stop] += gain * sample[: stop - start]
