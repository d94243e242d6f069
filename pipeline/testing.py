"""Synthetic audio and demo corpora for tests, benchmarks and the demo.

Everything here is generated locally (numpy synthesis, or the ``espeak-ng`` and
``sox`` command-line tools); nothing is ever downloaded.

The main entry points are:

* small signal generators (:func:`tone`, :func:`chirp`, :func:`noise`,
  :func:`silence`) for unit tests;
* :func:`genre_clip`, which synthesises a music-like clip for one of
  :data:`GENRES`.  The genres differ audibly in timbre, rhythm and harmony while
  clips of one genre vary in key, tempo, instrumentation, levels and noise, so
  a genre classifier has something real (but learnable) to do;
* :func:`speech_clip` and :func:`sox_music`, thin wrappers around
  ``espeak-ng`` and ``sox``;
* :func:`make_demo_corpus`, which writes a GTZAN-layout corpus
  (``<genre>/<genre>.<i:05d>.<ext>`` plus ``labels.csv``).

All generators return mono ``float32`` arrays and are deterministic for a
given seed.
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import soundfile as sf

__all__ = [
    "CORPUS_FORMATS",
    "GENRES",
    "SPEECH_LABEL",
    "chirp",
    "espeak_available",
    "genre_clip",
    "make_demo_corpus",
    "noise",
    "silence",
    "sox_available",
    "sox_music",
    "speech_clip",
    "tone",
]

_T = TypeVar("_T")

FloatArray = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]

GENRES: Final[tuple[str, ...]] = (
    "ambient",
    "classical",
    "electronic",
    "jazz",
    "rock",
    "hiphop",
)
"""Music-like genres synthesised by :func:`genre_clip`."""

SPEECH_LABEL: Final[str] = "speech"
"""Label of the optional espeak-ng speech class written by :func:`make_demo_corpus`."""

CORPUS_FORMATS: Final[tuple[str, ...]] = ("wav", "flac", "ogg", "mp3")
"""File extensions :func:`make_demo_corpus` can write."""

_SUBTYPES: Final[dict[str, tuple[str, str]]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}

_PEAK: Final[float] = 0.8
_TABLE_BITS: Final[int] = 12
_TABLE_SIZE: Final[int] = 1 << _TABLE_BITS
_HARMONIC_STEPS: Final[tuple[int, ...]] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


# --------------------------------------------------------------------------- validation


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"Expected {name} to be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"Expected {name} to be an integer >= {minimum}, got {value!r}")
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
        raise ValueError(f"{expected}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{expected}, got {value!r}")
    too_low = number < low if low_inclusive else number <= low
    too_high = number > high if high_inclusive else number >= high
    if too_low or too_high:
        raise ValueError(f"{expected}, got {value!r}")
    return number


def _check_sr(sr: object) -> int:
    return _check_int("sr", sr, minimum=1)


def _check_seed(seed: object) -> int:
    return _check_int("seed", seed, minimum=0)


def _n_samples(seconds: object, sr: int, *, allow_empty: bool = True) -> int:
    secs = _check_float("seconds", seconds, low=0.0)
    n = round(secs * sr)
    if not allow_empty and n < 1:
        raise ValueError(
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
    ValueError
        If an argument is out of range.
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
    ValueError
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
    ValueError
        If an argument is out of range or ``color`` is unknown.
    """
    rate = _check_sr(sr)
    amp = _check_amplitude(amplitude)
    rng = np.random.default_rng(_check_seed(seed))
    if color not in ("white", "pink"):
        raise ValueError(f"Expected color to be 'white' or 'pink', got {color!r}")
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
        Duration in seconds (``>= 0``).
    sr : int, default 22050
        Sample rate in Hz.

    Returns
    -------
    numpy.ndarray
        ``float32`` zeros of length ``round(seconds * sr)``.

    Raises
    ------
    ValueError
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


# --------------------------------------------------------------------------- oscillators


@cache
def _table(kind: str, harmonics: int) -> _F32:
    """One band-limited cycle of a waveform with at most ``harmonics`` partials."""
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    if kind == "sine":
        amps = (k == 1).astype(np.float64)
    elif kind == "saw":
        amps = 1.0 / k
    elif kind == "square":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.0)
    elif kind == "piano":
        amps = k**-1.1 * (1.0 + 0.5 * np.sin(k * 1.3))
    elif kind == "dull":
        amps = k**-3.0
    elif kind == "string":
        amps = (1.0 / k) * (1.0 + 1.5 * np.exp(-(((k - 4.0) / 2.0) ** 2)))
    elif kind == "epiano":
        amps = (
            np.where(k == 1, 1.0, 0.0) + np.where(k == 2, 0.25, 0.0) + np.where(k == 3, 0.06, 0.0)
        )
    elif kind == "tine":
        amps = np.where(k == 1, 0.6, 0.0) + np.where(np.isin(k, (7, 14)), 0.5, 0.0)
    elif kind == "bass":
        amps = np.where(k == 1, 1.0, 0.0) + np.where(k == 2, 0.45, 0.0) + np.where(k == 3, 0.2, 0.0)
    elif kind == "organ":
        amps = np.where(np.isin(k, (1, 2, 3, 4, 6, 8)), 1.0 / np.sqrt(k), 0.0)
    elif kind == "reed":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.35 / k) * (1.0 + np.exp(-(((k - 6.0) / 3.0) ** 2)))
    else:
        raise ValueError(f"Expected a known wavetable kind, got {kind!r}")
    phase = 2.0 * np.pi * np.arange(_TABLE_SIZE, dtype=np.float64) / _TABLE_SIZE
    table = np.sin(np.outer(phase, k)) @ amps
    table /= float(np.max(np.abs(table)))
    single: _F32 = table.astype(np.float32)
    single.setflags(write=False)
    return single


def _osc(
    kind: str,
    freq: float,
    tau: _F64,
    sr: int,
    phase0: float = 0.0,
    bandwidth: float | None = None,
) -> _F32:
    """Band-limited wavetable oscillator evaluated at (possibly warped) times ``tau``.

    Partials stop below Nyquist and below ``bandwidth`` (a cheap brick-wall
    low-pass applied at synthesis time).
    """
    limit = sr / 2.0 if bandwidth is None else min(sr / 2.0, bandwidth)
    most = max(1, int(limit / freq))
    harmonics = max(h for h in _HARMONIC_STEPS if h <= most)
    table = _table(kind, harmonics)
    idx = (tau * (freq * _TABLE_SIZE) + phase0 * _TABLE_SIZE).astype(np.int64)
    idx &= _TABLE_SIZE - 1
    out: _F32 = table[idx]
    return out


@lru_cache(maxsize=4)
def _clock64(sr: int, size: int) -> _F64:
    """Read-only sample times ``arange(size) / sr`` (cached: reused for every note)."""
    times = np.arange(size, dtype=np.float64) / sr
    times.setflags(write=False)
    return times


@lru_cache(maxsize=4)
def _clock32(sr: int, size: int) -> _F32:
    """Single-precision :func:`_clock64` for envelopes."""
    times = _clock64(sr, size).astype(np.float32)
    times.setflags(write=False)
    return times


@dataclass(frozen=True)
class _Voice:
    """A simple synthesiser voice: wavetable(s) + ADSR-like envelope."""

    kind: str
    attack: float = 0.005
    decay: float = math.inf
    sustain: float = 1.0
    release: float = 0.1
    dull_kind: str | None = None
    bright_decay: float = 0.2
    detune_cents: tuple[float, ...] = (0.0,)
    vibrato: tuple[float, float] | None = None
    bandwidth: float | None = None


@dataclass(frozen=True)
class _Note:
    onset: float
    duration: float
    midi: float
    velocity: float = 1.0


def _hz(midi: float) -> float:
    return 440.0 * math.pow(2.0, (midi - 69.0) / 12.0)


def _render(out: _F64, notes: Sequence[_Note], voice: _Voice, sr: int) -> None:
    """Additively render ``notes`` with ``voice`` into ``out`` (in place).

    Work per note is proportional to its audible length: percussive notes
    (``sustain == 0``) stop at -60 dB and the bright timbre of a two-table
    voice is only computed while it is audible.
    """
    size = out.size
    gain = 1.0 / len(voice.detune_cents)
    finite = math.isfinite(voice.decay)
    clock64 = _clock64(sr, size)
    clock32 = _clock32(sr, size)
    warp: _F64 | None = None
    if voice.vibrato is not None and notes:
        # one shared vibrato "warped clock" for the whole bus: tau(t) = cumsum(2^(d sin)) / sr
        rate, depth = voice.vibrato
        wobble = np.exp2(depth / 12.0 * np.sin(clock64 * (2.0 * np.pi * rate)))
        warp = np.cumsum(wobble) / sr
    for number, note in enumerate(notes):
        start = max(0, round(note.onset * sr))
        if start >= size or note.velocity <= 0.0:
            continue
        end_time = note.duration + voice.release
        length = min(size - start, round(end_time * sr))
        if finite and voice.sustain <= 0.0:
            length = min(length, round(7.0 * voice.decay * sr) + 1)
        if length <= 0:
            continue
        t = clock32[:length]
        if finite:
            env = np.exp(t * np.float32(-1.0 / voice.decay))
            if voice.sustain > 0.0:
                env *= np.float32(1.0 - voice.sustain)
                env += np.float32(voice.sustain)
        else:
            env = np.ones(length, dtype=np.float32)
        head = min(length, round(voice.attack * sr))
        if head > 0:
            env[:head] *= t[:head] * np.float32(1.0 / voice.attack)
        tail = max(0, round(note.duration * sr))
        if tail < length:
            fade = (np.float32(end_time) - t[tail:]) * np.float32(1.0 / voice.release)
            env[tail:] *= np.clip(fade, 0.0, 1.0)
        tau = clock64[:length] if warp is None else warp[start : start + length] - warp[start]
        base = _hz(note.midi)
        bright_len = 0
        weight = np.zeros(0, dtype=np.float32)
        if voice.dull_kind is not None:
            bright_len = min(length, round(6.0 * voice.bright_decay * sr))
            weight = np.exp(t[:bright_len] * np.float32(-1.0 / voice.bright_decay))
        signal: _F32 | None = None
        for j, cents in enumerate(voice.detune_cents):
            freq = base * 2.0 ** (cents / 1200.0)
            phase0 = (0.618034 * (number + 3 * j)) % 1.0
            band = voice.bandwidth
            if voice.dull_kind is None:
                wave = _osc(voice.kind, freq, tau, sr, phase0, band)
            else:
                wave = _osc(voice.dull_kind, freq, tau, sr, phase0, band)
                bright = _osc(voice.kind, freq, tau[:bright_len], sr, phase0, band)
                wave[:bright_len] += weight * (bright - wave[:bright_len])
            signal = wave if signal is None else signal + wave
        if signal is not None:
            env *= np.float32(note.velocity * gain)
            env *= signal
            out[start : start + length] += env


# --------------------------------------------------------------------------- drum one-shots


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


# --------------------------------------------------------------------------- harmony helpers

_SCALES: Final[dict[str, tuple[int, ...]]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}


def _degree(tonic: int, scale: tuple[int, ...], degree: int) -> int:
    octave, index = divmod(degree, len(scale))
    return tonic + scale[index] + 12 * octave


def _chord(tonic: int, scale: tuple[int, ...], degree: int, size: int = 3) -> list[int]:
    """Stack diatonic thirds on ``degree`` (size 3: triad, 4: seventh, 5: ninth)."""
    return [_degree(tonic, scale, degree + 2 * k) for k in range(size)]


def _bar_grid(seconds: float, beat: float, beats_per_bar: int) -> int:
    return math.ceil(seconds / (beat * beats_per_bar)) + 1


def _pick(rng: np.random.Generator, options: Sequence[Sequence[_T]]) -> list[_T]:
    return list(options[int(rng.integers(len(options)))])


# --------------------------------------------------------------------------- genres


def _ambient(n: int, sr: int, rng: np.random.Generator) -> _F64:
    seconds = n / sr
    tonic = 48 + int(rng.integers(12))
    scale = _SCALES[str(rng.choice(["major", "lydian", "minor", "dorian"]))]
    chord_len = rng.uniform(4.0, 8.0)
    size = int(rng.choice([3, 4]))
    pad = _Voice(
        "saw",
        attack=rng.uniform(1.2, 3.0),
        release=rng.uniform(2.0, 3.5),
        detune_cents=(-rng.uniform(6, 15), rng.uniform(6, 15)),
        vibrato=(rng.uniform(0.1, 0.3), 0.03),
    )
    notes: list[_Note] = []
    bass: list[_Note] = []
    degree = 0
    for k in range(math.ceil(seconds / chord_len) + 1):
        onset = k * chord_len - rng.uniform(0.0, 1.0)
        notes.extend(
            _Note(onset, chord_len, m, rng.uniform(0.6, 1.0))
            for m in _chord(tonic, scale, degree, size)
        )
        bass.append(_Note(onset, chord_len, _degree(tonic - 12, scale, degree), 1.0))
        degree = int(rng.choice([0, 3, 4, 5, 1, 2]))
    # the pads are dark, so render them at half rate; _fft_mix upsamples them
    factor = 2 if sr % 2 == 0 else 1
    pad_bus = np.zeros(-(-n // factor), dtype=np.float64)
    _render(pad_bus, notes, pad, sr // factor)
    cutoff = rng.uniform(450.0, 1100.0)
    parts = [
        _Part(
            _unit(pad_bus),
            lowpass=cutoff,
            sweep_to=cutoff * rng.uniform(2.0, 3.5),
            send=rng.uniform(0.5, 0.9),
            factor=factor,
        )
    ]
    drone = np.zeros(n, dtype=np.float64)
    _render(drone, bass, _Voice("sine", attack=2.0, release=2.0), sr)
    bells = np.zeros(n, dtype=np.float64)
    if rng.random() < 0.5:
        pent = (0, 2, 4, 7, 9) if scale[2] == 4 else (0, 3, 5, 7, 10)
        count = max(1, int(seconds / rng.uniform(2.0, 5.0)))
        chimes = [
            _Note(
                rng.uniform(0.0, seconds),
                2.0,
                tonic + 24 + pent[int(rng.integers(5))] + 12 * int(rng.integers(2)),
                rng.uniform(0.3, 0.6),
            )
            for _ in range(count)
        ]
        bell = _Voice("sine", attack=0.01, decay=1.5, sustain=0.0, release=1.0)
        _render(bells, chimes, bell, sr)
        bells = _echo(_unit(bells), round(rng.uniform(0.25, 0.6) * sr), 0.55, taps=5)
        bells *= rng.uniform(0.2, 0.45)
    mix = _fft_mix(
        parts,
        n,
        sr,
        rng,
        rt60=rng.uniform(3.0, 4.5),
        sweep_hz=rng.uniform(0.03, 0.1),
        pink=rng.uniform(0.03, 0.1),
    )
    mix += rng.uniform(0.2, 0.6) * _unit(drone) + bells
    t = np.arange(n, dtype=np.float64) / sr
    swell: _F64 = mix * (0.8 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.02, 0.06) * t))
    return swell


def _classical(n: int, sr: int, rng: np.random.Generator) -> _F64:
    seconds = n / sr
    tonic = 48 + int(rng.integers(12))
    major = rng.random() < 0.5
    scale = _SCALES["major" if major else "harmonic_minor"]
    beat = 60.0 / rng.uniform(60.0, 100.0)
    meter = 3 if rng.random() < 0.3 else 4
    subdivision = int(rng.choice([2, 3, 4]))
    progressions = ([0, 3, 4, 0], [0, 5, 3, 4], [0, 5, 1, 4], [0, 3, 1, 4], [0, 4, 5, 3])
    progression = _pick(rng, progressions)
    # rubato: beat lengths breathe slowly around the nominal tempo
    n_beats = int(seconds / beat * 1.3) + 2 * meter + 2
    k = np.arange(n_beats)
    lengths = beat * (
        1.0
        + 0.08 * np.sin(2 * np.pi * k / rng.uniform(6, 14) + rng.uniform(0, 6.3))
        + rng.normal(0.0, 0.02, n_beats)
    )
    beat_times = np.concatenate([[0.0], np.cumsum(lengths)])
    piano = _Voice(
        "piano",
        attack=0.003,
        decay=rng.uniform(0.5, 1.1),
        sustain=0.0,
        release=0.3,
        dull_kind="dull",
        bright_decay=rng.uniform(0.08, 0.2),
        bandwidth=rng.uniform(4000.0, 8000.0),
    )
    left: list[_Note] = []
    right: list[_Note] = []
    strings: list[_Note] = []
    pattern = _pick(rng, ([0, 2, 1, 2], [0, 1, 2, 1], [0, 1, 2, 3], [3, 2, 1, 0], [0, 2, 3, 1]))
    melody_degree = 7 + int(rng.integers(5))
    with_melody = rng.random() < 0.75
    for bar in range(n_beats // meter):
        degree = progression[bar % len(progression)]
        chord = _chord(tonic, scale, degree, 3)
        tones = [*chord, chord[0] + 12]
        t_bar = float(beat_times[bar * meter])
        t_end = float(beat_times[(bar + 1) * meter])
        left.append(_Note(t_bar, t_end - t_bar, chord[0] - 12, rng.uniform(0.7, 0.9)))
        strings.extend(_Note(t_bar, t_end - t_bar, m, 0.6) for m in chord)
        for b in range(meter):
            t0 = float(beat_times[bar * meter + b])
            t1 = float(beat_times[bar * meter + b + 1])
            step = (t1 - t0) / subdivision
            for s in range(subdivision):
                index = pattern[(b * subdivision + s) % len(pattern)]
                velocity = rng.uniform(0.35, 0.55) + (0.15 if s == 0 else 0.0)
                left.append(_Note(t0 + s * step, step * 2.5, tones[index], velocity))
            if with_melody and rng.random() < 0.8:
                target = chord[int(rng.integers(3))] - tonic
                options = [d for d in range(melody_degree - 2, melody_degree + 3) if 7 <= d <= 13]
                near = [d for d in options if (scale[d % 7] - target) % 12 == 0]
                melody_degree = int(rng.choice(near if near and b == 0 else options))
                pitch = _degree(tonic, scale, melody_degree)
                right.append(_Note(t0, (t1 - t0) * rng.uniform(0.9, 1.8), pitch, 0.8))
    bus = np.zeros(n, dtype=np.float64)
    _render(bus, left, piano, sr)
    melody_voice = piano
    if rng.random() < 0.5:
        melody_voice = _Voice(
            "string",
            attack=0.08,
            release=0.25,
            vibrato=(rng.uniform(4.5, 6.0), 0.12),
            bandwidth=5000.0,
        )
    _render(bus, right, melody_voice, sr)
    send = rng.uniform(0.3, 0.6)
    bus = _unit(bus)
    if rng.random() < 0.5:
        section = _Voice(
            "string",
            attack=rng.uniform(0.2, 0.5),
            release=0.6,
            detune_cents=(-6.0, 6.0),
            vibrato=(rng.uniform(4.5, 6.0), 0.08),
            bandwidth=3000.0,
        )
        pad = np.zeros(n, dtype=np.float64)
        _render(pad, strings, section, sr)
        bus += rng.uniform(0.2, 0.5) * _unit(pad)
    return _fft_mix([_Part(bus, send=send)], n, sr, rng, rt60=rng.uniform(1.6, 2.6))


def _electronic(n: int, sr: int, rng: np.random.Generator) -> _F64:
    seconds = n / sr
    beat = 60.0 / rng.uniform(118.0, 134.0)
    tonic = 36 + int(rng.integers(12))
    scale = _SCALES["minor"]
    progression = _pick(rng, ([0, 5, 2, 6], [0, 0, 5, 6], [0, 3, 4, 0], [0, 6, 5, 6]))
    bars = _bar_grid(seconds, beat, 4)
    beats = np.arange(bars * 4) * beat
    drums = np.zeros(n, dtype=np.float64)
    kick = _kick(sr, rng, f_start=rng.uniform(120, 170), f_end=rng.uniform(42, 55), decay=0.2)
    _place(drums, kick, list(beats), [1.0] * beats.size, sr)
    offbeats = beats + beat / 2
    hat = _hat(sr, rng, decay=rng.uniform(0.04, 0.1))
    _place(drums, hat, list(offbeats), list(rng.uniform(0.3, 0.45, offbeats.size)), sr)
    if rng.random() < 0.6:
        sixteenths = np.arange(bars * 16) * beat / 4
        closed = _hat(sr, rng, decay=0.015)
        _place(drums, closed, list(sixteenths), list(rng.uniform(0.08, 0.18, sixteenths.size)), sr)
    if rng.random() < 0.6:
        clap = _snare(
            sr, rng, tone_hz=rng.uniform(900, 1400), decay=0.12, noisiness=0.9, band=(800.0, 5000.0)
        )
        backbeats = beats[1::2]
        _place(drums, clap, list(backbeats), [0.5] * backbeats.size, sr)
    # 16th-note saw bass ostinato, side-chained to the kick
    steps = rng.random(16) < rng.uniform(0.5, 0.85)
    steps[0] = True
    octave_up = rng.random(16) < 0.3
    bass_notes = [
        _Note(
            bar * 4 * beat + s * beat / 4,
            beat / 4 * 0.8,
            _degree(tonic, scale, progression[bar % 4]) + 12 * int(octave_up[s]),
            rng.uniform(0.7, 1.0),
        )
        for bar in range(bars)
        for s in range(16)
        if steps[s]
    ]
    synth = np.zeros(n, dtype=np.float64)
    _render(
        synth,
        bass_notes,
        _Voice(
            "saw",
            decay=rng.uniform(0.08, 0.2),
            sustain=0.3,
            release=0.02,
            bandwidth=rng.uniform(500.0, 1500.0),
        ),
        sr,
    )
    stabs = np.zeros(n, dtype=np.float64)
    kind = str(rng.choice(["saw", "square"]))
    band = rng.uniform(1800.0, 4500.0)
    if rng.random() < 0.5:
        chords = [
            _Note(b + beat / 2, beat * 0.3, m, 0.5)
            for i, b in enumerate(beats)
            for m in _chord(tonic + 24, scale, progression[(i // 4) % 4], 3)
        ]
        _render(
            stabs, chords, _Voice(kind, decay=0.12, sustain=0.2, release=0.05, bandwidth=band), sr
        )
    else:
        chords = [
            _Note(bar * 4 * beat, 4 * beat, m, 0.5)
            for bar in range(bars)
            for m in _chord(tonic + 24, scale, progression[bar % 4], 3)
        ]
        supersaw = _Voice(
            kind, attack=0.05, release=0.2, detune_cents=(-12.0, 12.0), bandwidth=band
        )
        _render(stabs, chords, supersaw, sr)
    t = np.arange(n, dtype=np.float64) / sr
    pump = 1.0 - 0.7 * np.exp(-np.mod(t, beat) / 0.08)
    bass_level = rng.uniform(0.5, 0.8)
    stabs = bass_level * rng.uniform(0.3, 0.6) * pump * _unit(stabs)
    mix = _fft_mix([_Part(stabs, send=0.4)], n, sr, rng, rt60=1.0)
    mix += _unit(drums) + bass_level * pump * _unit(synth)
    return mix


def _jazz(n: int, sr: int, rng: np.random.Generator) -> _F64:
    seconds = n / sr
    beat = 60.0 / rng.uniform(100.0, 180.0)
    swing = rng.uniform(0.6, 0.68)
    tonic = 48 + int(rng.integers(12))
    scale = _SCALES["major"]
    progression = _pick(rng, ([1, 4, 0, 5], [1, 4, 0, 0], [0, 5, 1, 4], [2, 5, 1, 4]))
    bars = _bar_grid(seconds, beat, 4)
    drums = np.zeros(n, dtype=np.float64)
    ride = _cymbal(sr, rng, decay=rng.uniform(0.6, 1.2), ping=rng.uniform(0.6, 0.85))
    ride_times: list[float] = []
    ride_gains: list[float] = []
    for bar in range(bars):
        t_bar = bar * 4 * beat
        for b in range(4):
            ride_times.append(t_bar + b * beat)
            ride_gains.append(rng.uniform(0.5, 0.65) if b % 2 == 0 else rng.uniform(0.7, 0.85))
            if b % 2 == 1:
                ride_times.append(t_bar + (b + swing) * beat)
                ride_gains.append(rng.uniform(0.35, 0.5))
    _place(drums, ride, ride_times, ride_gains, sr)
    foot = _hat(sr, rng, decay=0.03)
    backbeats = [bar * 4 * beat + b * beat for bar in range(bars) for b in (1, 3)]
    _place(drums, foot, backbeats, [0.25] * len(backbeats), sr)
    if rng.random() < 0.6:
        brush = _snare(sr, rng, tone_hz=200.0, decay=0.08, noisiness=0.95)
        ghost = [
            bar * 4 * beat + (b + (swing if rng.random() < 0.5 else 0.0)) * beat
            for bar in range(bars)
            for b in range(4)
            if rng.random() < 0.3
        ]
        _place(drums, brush, ghost, list(rng.uniform(0.1, 0.25, len(ghost))), sr)
    # walking bass: root on beat one, chord/scale tones, chromatic approach on beat four
    walk: list[_Note] = []
    for bar in range(bars):
        chord = _chord(tonic - 24, scale, progression[bar % 4], 4)
        next_root = _chord(tonic - 24, scale, progression[(bar + 1) % 4], 1)[0]
        pitches = [chord[0], chord[int(rng.integers(1, 4))], chord[int(rng.integers(1, 4))]]
        pitches.append(next_root + int(rng.choice([-1, 1, 2])))
        walk.extend(
            _Note(bar * 4 * beat + b * beat, beat * 0.95, _wrap(p, 28, 50), rng.uniform(0.8, 1.0))
            for b, p in enumerate(pitches)
        )
    bass = np.zeros(n, dtype=np.float64)
    _render(bass, walk, _Voice("bass", attack=0.01, decay=0.4, sustain=0.25, release=0.05), sr)
    # electric-piano comping with 7th/9th chords on swung eighths
    size = int(rng.choice([4, 5]))
    comp: list[_Note] = []
    for bar in range(bars):
        chord = _chord(tonic, scale, progression[bar % 4], size)
        voicing = [_wrap(m, 52, 74) for m in chord[1:]] if rng.random() < 0.7 else chord
        hits = rng.choice(8, size=int(rng.integers(1, 4)), replace=False)
        for h in hits:
            onset = bar * 4 * beat + (h // 2 + (swing if h % 2 else 0.0)) * beat
            length = beat * rng.uniform(0.5, 2.0)
            comp.extend(_Note(onset, length, m, rng.uniform(0.4, 0.6)) for m in voicing)
    keys = np.zeros(n, dtype=np.float64)
    ep = _Voice(
        "tine",
        attack=0.003,
        decay=rng.uniform(0.6, 1.2),
        sustain=0.15,
        release=0.2,
        dull_kind="epiano",
        bright_decay=0.04,
        bandwidth=rng.uniform(5000.0, 9000.0),
    )
    _render(keys, comp, ep, sr)
    t = np.arange(n, dtype=np.float64) / sr
    keys *= 1.0 + 0.25 * np.sin(2.0 * np.pi * rng.uniform(3.5, 5.5) * t)
    mix = (
        _unit(drums) * rng.uniform(0.2, 0.4)
        + _unit(bass) * rng.uniform(0.6, 0.9)
        + _unit(keys) * rng.uniform(0.4, 0.6)
    )
    if rng.random() < 0.5:
        horn: list[_Note] = []
        degree = 7
        for bar in range(bars):
            for e in range(8):
                if rng.random() < 0.35:
                    continue
                degree = int(np.clip(degree + rng.choice([-2, -1, 1, 2]), 4, 13))
                onset = bar * 4 * beat + (e // 2 + (swing if e % 2 else 0.0)) * beat
                horn.append(_Note(onset, beat * 0.45, _degree(tonic, scale, degree), 0.5))
        lead = np.zeros(n, dtype=np.float64)
        _render(
            lead,
            horn,
            _Voice("reed", attack=0.03, release=0.06, vibrato=(5.0, 0.1), bandwidth=6000.0),
            sr,
        )
        mix += rng.uniform(0.2, 0.4) * _unit(lead)
    return _fft_mix([_Part(mix, send=0.3)], n, sr, rng, rt60=1.2)


def _wrap(midi: int, low: int, high: int) -> int:
    while midi < low:
        midi += 12
    while midi > high:
        midi -= 12
    return midi


def _rock(n: int, sr: int, rng: np.random.Generator) -> _F64:
    seconds = n / sr
    beat = 60.0 / rng.uniform(100.0, 145.0)
    tonic = 40 + int(rng.integers(8))
    scale = _SCALES[str(rng.choice(["minor", "mixolydian", "dorian"]))]
    progression = _pick(rng, ([0, 5, 2, 6], [0, 6, 3, 0], [0, 3, 4, 3], [0, 2, 3, 5]))
    bars = _bar_grid(seconds, beat, 4)
    eighth = beat / 2
    guitar: list[_Note] = []
    accents = rng.random(8) < 0.25
    accents[0] = True
    for bar in range(bars):
        root = _degree(tonic, scale, progression[bar % 4])
        for e in range(8):
            onset = bar * 4 * beat + e * eighth
            if accents[e]:
                length = eighth * (1 + int(np.argmax(np.r_[accents[e + 1 :], True])))
                velocity = 1.0
            else:
                length = eighth * 0.35
                velocity = rng.uniform(0.5, 0.7)
            guitar.extend(_Note(onset, length, root + i, velocity) for i in (0, 7, 12))
    amp = np.zeros(n, dtype=np.float64)
    _render(
        amp,
        guitar,
        _Voice("saw", decay=0.8, sustain=0.6, release=0.03, detune_cents=(-9.0, 9.0)),
        sr,
    )
    drive = rng.uniform(4.0, 12.0)
    amp = np.tanh(drive * amp / (np.max(np.abs(amp)) + 1e-9))
    bass = np.zeros(n, dtype=np.float64)
    bass_notes = [
        _Note(
            bar * 4 * beat + e * eighth,
            eighth * 0.9,
            _degree(tonic - 12, scale, progression[bar % 4]),
            0.9,
        )
        for bar in range(bars)
        for e in range(8)
    ]
    _render(bass, bass_notes, _Voice("saw", decay=0.3, sustain=0.5, bandwidth=700.0), sr)
    drums = np.zeros(n, dtype=np.float64)
    kick = _kick(sr, rng, f_start=rng.uniform(100, 140), f_end=rng.uniform(50, 60), decay=0.15)
    snare = _snare(sr, rng, tone_hz=rng.uniform(170, 230), decay=0.15, noisiness=0.6)
    kick_pattern = _pick(rng, ([0, 4], [0, 5, 4], [0, 4, 7], [0, 3, 4]))
    kicks = [bar * 4 * beat + k * eighth for bar in range(bars) for k in kick_pattern]
    snares = [bar * 4 * beat + b * beat for bar in range(bars) for b in (1, 3)]
    _place(drums, kick, kicks, [1.0] * len(kicks), sr)
    _place(drums, snare, snares, list(rng.uniform(0.8, 1.0, len(snares))), sr)
    if rng.random() < 0.7:
        hat = _hat(sr, rng, decay=rng.uniform(0.03, 0.06))
        hats = [bar * 4 * beat + e * eighth for bar in range(bars) for e in range(8)]
        _place(drums, hat, hats, list(rng.uniform(0.25, 0.4, len(hats))), sr)
    else:
        ride = _cymbal(sr, rng, decay=0.5, ping=0.5)
        rides = [bar * 4 * beat + e * eighth for bar in range(bars) for e in range(8)]
        _place(drums, ride, rides, [0.25] * len(rides), sr)
    crash = _cymbal(sr, rng, decay=1.2, ping=0.15)
    every = int(rng.choice([4, 8]))
    crashes = [bar * 4 * beat for bar in range(0, bars, every)]
    _place(drums, crash, crashes, [0.6] * len(crashes), sr)
    parts = [
        _Part(
            rng.uniform(0.5, 0.8) * _unit(amp),
            lowpass=rng.uniform(3000, 5500),
            highpass=90.0,
            send=0.1,
        ),
        _Part(rng.uniform(0.6, 0.9) * _unit(drums), send=0.25),
    ]
    mix = _fft_mix(parts, n, sr, rng, rt60=0.8)
    mix += rng.uniform(0.3, 0.6) * _unit(bass)
    return mix


def _hiphop(n: int, sr: int, rng: np.random.Generator) -> _F64:
    seconds = n / sr
    beat = 60.0 / rng.uniform(78.0, 96.0)
    swing = rng.uniform(0.5, 0.6)
    tonic = 45 + int(rng.integers(12))
    scale = _SCALES[str(rng.choice(["minor", "dorian"]))]
    bars = _bar_grid(seconds, beat, 4)
    # a two-bar, sample-like minor-key loop rendered once and repeated
    loop_len = round(8 * beat * sr)
    loop = np.zeros(loop_len, dtype=np.float64)
    first, second = _pick(rng, ([0, 5], [0, 3], [0, 6], [5, 4], [1, 0]))
    size = int(rng.choice([3, 4]))
    phrase: list[_Note] = []
    for half, degree in enumerate((first, second)):
        chord = _chord(tonic, scale, degree, size)
        for h in rng.choice(8, size=int(rng.integers(2, 4)), replace=False):
            onset = half * 4 * beat + h * beat / 2
            phrase.extend(_Note(onset, beat * rng.uniform(0.5, 1.5), m, 0.5) for m in chord)
    pent = (0, 3, 5, 7, 10)
    if rng.random() < 0.6:
        for e in rng.choice(16, size=int(rng.integers(3, 7)), replace=False):
            pitch = tonic + 12 + pent[int(rng.integers(5))]
            phrase.append(_Note(e * beat / 2, beat * 0.4, pitch, 0.5))
    kind = str(rng.choice(["epiano", "string", "organ", "piano"]))
    _render(loop, phrase, _Voice(kind, attack=0.01, decay=0.9, sustain=0.3, release=0.2), sr)
    dusty = _Part(np.tile(loop, 2), lowpass=rng.uniform(1500, 3000), highpass=180.0, send=0.3)
    loop = _fft_mix([dusty], 2 * loop_len, sr, rng, rt60=1.0)[loop_len:]
    loop = np.round(loop / (np.max(np.abs(loop)) + 1e-9) * 64.0) / 64.0  # crunchy bit depth
    repeats = math.ceil(n / loop_len)
    sample_bus = np.tile(loop, repeats)[:n]
    drums = np.zeros(n, dtype=np.float64)
    kick = _kick(
        sr,
        rng,
        f_start=rng.uniform(90, 120),
        f_end=rng.uniform(42, 52),
        decay=rng.uniform(0.3, 0.45),
    )
    snare = _snare(
        sr,
        rng,
        tone_hz=rng.uniform(170, 220),
        decay=rng.uniform(0.15, 0.25),
        noisiness=0.65,
        band=(1000.0, 5000.0),
    )
    kick_pattern = _pick(
        rng, ([0.0, 1.5, 2.5], [0.0, 0.75, 2.5], [0.0, 1.75, 2.0, 3.5], [0.0, 2.25, 2.5])
    )
    kicks = [bar * 4 * beat + k * beat for bar in range(bars) for k in kick_pattern]
    snares = [bar * 4 * beat + b * beat for bar in range(bars) for b in (1, 3)]
    _place(drums, kick, kicks, [1.0] * len(kicks), sr)
    _place(drums, snare, snares, list(rng.uniform(0.7, 0.85, len(snares))), sr)
    hat = _hat(sr, rng, decay=0.03, band=(4000.0, 8000.0))
    hats = [
        bar * 4 * beat + (e // 2 + (swing if e % 2 else 0.0)) * beat
        for bar in range(bars)
        for e in range(8)
    ]
    _place(drums, hat, hats, list(rng.uniform(0.05, 0.15, len(hats))), sr)
    sub_notes = [
        _Note(bar * 4 * beat, 3.5 * beat, _degree(tonic - 24, scale, (first, second)[bar % 2]), 1.0)
        for bar in range(bars)
    ]
    sub = np.zeros(n, dtype=np.float64)
    _render(sub, sub_notes, _Voice("sine", attack=0.01, decay=1.0, sustain=0.5, release=0.1), sr)
    crackle = np.zeros(n, dtype=np.float64)
    pops = rng.integers(0, n, size=int(seconds * rng.uniform(10, 40)) + 1)
    crackle[pops] = rng.uniform(-1.0, 1.0, pops.size)
    mix = _unit(drums) + (
        _unit(sample_bus) * rng.uniform(0.3, 0.6)
        + _unit(sub) * rng.uniform(0.5, 0.8)
        + crackle * rng.uniform(0.2, 0.5)
    )
    return mix


_GENERATORS: Final[dict[str, Callable[[int, int, np.random.Generator], _F64]]] = {
    "ambient": _ambient,
    "classical": _classical,
    "electronic": _electronic,
    "jazz": _jazz,
    "rock": _rock,
    "hiphop": _hiphop,
}


def genre_clip(genre: str, *, seconds: float = 30.0, sr: int = 22050, seed: int = 0) -> FloatArray:
    """Synthesise a music-like clip of one of :data:`GENRES`.

    Genres differ in timbre, rhythm and harmony:

    ``ambient``
        slow, heavily low-passed detuned-saw pads with long attacks and reverb,
        a sine drone, a pink-noise bed, no percussion.
    ``classical``
        piano-like arpeggiated triads in a major or harmonic-minor key with
        rubato, an optional melody and string section, no drums.
    ``electronic``
        118-134 bpm four-on-the-floor kick, off-beat hats, claps, a side-chained
        16th-note saw-bass ostinato and synth stabs or pads.
    ``jazz``
        swung ride pattern at 100-180 bpm, walking bass and 7th/9th chords on an
        electric-piano timbre, sometimes a reed-like line.
    ``rock``
        distorted palm-muted power chords, bass, kick/snare backbeat at
        100-145 bpm with hats or ride and crashes.
    ``hiphop``
        78-96 bpm boom-bap drums with a heavy kick and sub bass, a crunchy
        low-fi two-bar minor-key loop and vinyl crackle.

    Each clip draws its key, tempo, patterns, instrumentation and mix levels
    from the seed, and gets a little noise, so clips within a genre vary.

    Parameters
    ----------
    genre : str
        One of :data:`GENRES`.
    seconds : float, default 30.0
        Duration in seconds (must give at least one sample).
    sr : int, default 22050
        Sample rate in Hz (at least 4000).
    seed : int, default 0
        Non-negative seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        Mono ``float32`` clip of length ``round(seconds * sr)`` with peak
        absolute value 0.8 and no NaN.

    Raises
    ------
    ValueError
        If ``genre`` is unknown or an argument is out of range.
    """
    if genre not in _GENERATORS:
        raise ValueError(f"Expected genre to be one of {GENRES}, got {genre!r}")
    rate = _check_int("sr", sr, minimum=4000)
    n = _n_samples(seconds, rate, allow_empty=False)
    rng = np.random.default_rng(_check_seed(seed))
    mix = _GENERATORS[genre](n, rate, rng)
    top = float(np.max(np.abs(mix)))
    if not math.isfinite(top):  # defensive: never hand out NaN/inf
        mix = np.nan_to_num(mix, nan=0.0, posinf=0.0, neginf=0.0)
        top = float(np.max(np.abs(mix)))
    out = (mix * (1.0 / top if top > 0.0 else 0.0)).astype(np.float32)
    hiss = rng.random(n, dtype=np.float32)
    hiss -= np.float32(0.5)
    hiss *= np.float32(2.0 * rng.uniform(0.001, 0.006))
    out += hiss
    out *= np.float32(_PEAK / float(np.max(np.abs(out))))
    return np.clip(out, -_PEAK, _PEAK, out=out)


# --------------------------------------------------------------------------- external tools


def espeak_available() -> bool:
    """Return whether the ``espeak-ng`` executable is on ``PATH``.

    Returns
    -------
    bool
        ``True`` if :func:`speech_clip` can run.
    """
    return shutil.which("espeak-ng") is not None


def sox_available() -> bool:
    """Return whether the ``sox`` executable is on ``PATH``.

    Returns
    -------
    bool
        ``True`` if :func:`sox_music` can run.
    """
    return shutil.which("sox") is not None


def _resample(x: FloatArray, source: int, target: int) -> FloatArray:
    """Linear-interpolation resampling (good enough for synthetic test data)."""
    if source == target or x.size == 0:
        return x
    n_out = max(1, round(x.size * target / source))
    positions = np.arange(n_out, dtype=np.float64) * (source / target)
    return np.interp(positions, np.arange(x.size), x).astype(np.float32)


def speech_clip(
    text: str,
    *,
    sr: int | None = None,
    voice: str = "en",
    speed: int = 175,
    pitch: int = 50,
) -> tuple[FloatArray, int]:
    """Synthesise speech with ``espeak-ng``.

    Parameters
    ----------
    text : str
        Non-empty text to speak (passed on stdin, never parsed as options).
    sr : int or None, default None
        ``None`` returns audio at espeak-ng's native rate (22050 Hz for the
        default voices); an integer resamples to that rate with linear
        interpolation.
    voice : str, default "en"
        espeak-ng voice, optionally with a variant, e.g. ``"en-us+f3"``.
    speed : int, default 175
        Words per minute (80-450).
    pitch : int, default 50
        Pitch adjustment (0-99).

    Returns
    -------
    audio : numpy.ndarray
        Mono ``float32`` speech in ``[-1, 1]``.
    sample_rate : int
        Sample rate of ``audio``.

    Raises
    ------
    ValueError
        If an argument is invalid.
    RuntimeError
        If ``espeak-ng`` is not installed or fails (e.g. unknown voice).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"Expected text to be a non-empty string, got {text!r}")
    if not isinstance(voice, str) or not voice or voice.startswith("-"):
        raise ValueError(f"Expected voice to be an espeak-ng voice name, got {voice!r}")
    words_per_minute = _check_int("speed", speed, minimum=80)
    if words_per_minute > 450:
        raise ValueError(f"Expected speed to be an integer in [80, 450], got {speed!r}")
    pitch_value = _check_int("pitch", pitch, minimum=0)
    if pitch_value > 99:
        raise ValueError(f"Expected pitch to be an integer in [0, 99], got {pitch!r}")
    target = None if sr is None else _check_sr(sr)
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError(
            "espeak-ng is not installed: install it with `apt-get install espeak-ng` "
            "(`make test` installs it)"
        )
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        wav = pathlib.Path(tmp) / "speech.wav"
        cmd = [exe, "-v", voice, "-s", str(words_per_minute), "-p", str(pitch_value)]
        cmd += ["-w", str(wav), "--stdin"]
        proc = subprocess.run(
            cmd, input=text, capture_output=True, text=True, check=False, timeout=300
        )
        if proc.returncode != 0 or not wav.exists():
            raise RuntimeError(
                f"espeak-ng failed with exit code {proc.returncode} for voice {voice!r}: "
                f"{proc.stderr.strip()}"
            )
        data, native = sf.read(wav, dtype="float32", always_2d=True)
    audio: FloatArray = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    rate = int(native)
    if target is not None:
        audio = _resample(audio, rate, target)
        rate = target
    return np.clip(audio, -1.0, 1.0), rate


_NOTE_NAMES: Final[tuple[str, ...]] = (
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
)  # fmt: skip


def _note_name(midi: int) -> str:
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def sox_music(
    path: str | os.PathLike[str],
    *,
    seconds: float = 5.0,
    sr: int = 22050,
    seed: int = 0,
) -> pathlib.Path:
    """Write a short music-like clip synthesised by ``sox -n synth``.

    The clip is a plucked (Karplus-Strong) arpeggio followed by a strummed
    chord in a seed-dependent key, mixed to mono with tremolo and reverb and
    normalised to -1 dBFS. The format follows the file extension (anything
    sox can write, e.g. ``.wav``, ``.flac``, ``.ogg``).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; parent directories are created.
    seconds : float, default 5.0
        Duration in seconds (``> 0``, at most 600).
    sr : int, default 22050
        Sample rate in Hz (at least 4000).
    seed : int, default 0
        Non-negative seed choosing the key and mode.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`pathlib.Path`.

    Raises
    ------
    ValueError
        If an argument is out of range.
    RuntimeError
        If ``sox`` is not installed or fails.
    """
    duration = _check_float("seconds", seconds, low=0.0, high=600.0, low_inclusive=False)
    rate = _check_int("sr", sr, minimum=4000)
    rng = np.random.default_rng(_check_seed(seed))
    out = pathlib.Path(path)
    if not out.suffix:
        raise ValueError(f"Expected path to have an audio file extension, got {str(out)!r}")
    exe = shutil.which("sox")
    if exe is None:
        raise RuntimeError(
            "sox is not installed: install it with `apt-get install sox` (`make test` installs it)"
        )
    tonic = 48 + int(rng.integers(12))
    scale = _SCALES["major" if rng.random() < 0.5 else "minor"]
    arpeggio = [_degree(tonic, scale, d) for d in (0, 2, 4, 7, 4, 2)]
    chord = [_degree(tonic - 12, scale, d) for d in (0, 4, 7, 9, 11, 14)]
    step = duration * 0.55 / len(arpeggio)
    strum_at = duration * 0.6
    notes = arpeggio + chord
    delays = [i * step for i in range(len(arpeggio))]
    delays += [strum_at + 0.03 * i for i in range(len(chord))]
    synth: list[str] = []
    for midi in notes:
        synth += ["pluck", _note_name(midi)]
    out.parent.mkdir(parents=True, exist_ok=True)
    # sox's pluck only runs at 44.1-48 kHz: synthesise at 48 kHz, resample, then normalise
    cmd = [exe, "-V1", "-R", "-r", "48000", "-n"]
    cmd += ["-r", str(rate), "-c", "1", "-b", "16", str(out)]
    cmd += ["synth", f"{duration:.4f}", *synth]
    cmd += ["delay", *[f"{d:.4f}" for d in delays], "remix", "-"]
    cmd += ["tremolo", f"{rng.uniform(4.0, 7.0):.2f}", "30", "reverb", "40", "remix", "-"]
    cmd += ["trim", "0", f"{duration:.4f}", "fade", "0.005", f"{duration:.4f}"]
    cmd += [f"{min(0.3, duration / 4):.4f}", "rate", str(rate), "norm", "-1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"sox failed with exit code {proc.returncode}: {proc.stderr.strip()}")
    return out


# --------------------------------------------------------------------------- demo corpus

_SENTENCES: Final[tuple[str, ...]] = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "Welcome to the evening news. Here are tonight's top stories.",
    "Please remember to bring your umbrella, rain is expected after noon.",
    "The train to the city centre departs from platform four in ten minutes.",
    "In today's lecture we will discuss the history of the printing press.",
    "Turn left at the next junction, then continue for two kilometres.",
    "Thank you for calling. All of our operators are currently busy.",
    "The committee will meet again on Thursday to review the budget.",
    "Scientists have discovered a new species of frog in the rainforest.",
    "Mix the flour and the butter, then add two eggs and a cup of milk.",
    "Our next guest has written three novels and a book of poems.",
)

_SPEECH_VOICES: Final[tuple[str, ...]] = (
    "en",
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-029",
    "en-us+f3",
    "en+m3",
    "en-gb-x-rp+f2",
    "en-us+klatt",
    "en+f4",
    "en-us+m7",
    "en-gb+f5",
)


def _speech_item(seconds: float, sr: int, rng: np.random.Generator) -> FloatArray:
    """One speech clip for the corpus: varied text/voice/speed, looped to length."""
    voice = _SPEECH_VOICES[int(rng.integers(len(_SPEECH_VOICES)))]
    speed = int(rng.integers(130, 211))
    pitch = int(rng.integers(25, 76))
    order = rng.permutation(len(_SENTENCES))
    # ~2.5 words per second at 150 wpm; ask for a little more than needed
    words_needed = seconds * speed / 60.0 * 1.2 + 4
    chosen: list[str] = []
    words = 0
    for index in order:
        chosen.append(_SENTENCES[int(index)])
        words += len(_SENTENCES[int(index)].split())
        if words >= words_needed:
            break
    audio, rate = speech_clip(" ".join(chosen), sr=sr, voice=voice, speed=speed, pitch=pitch)
    n = round(seconds * sr)
    gap = np.zeros(round(rng.uniform(0.3, 0.8) * rate), dtype=np.float32)
    unit = np.concatenate([audio, gap])
    tiled = np.tile(unit, math.ceil(n / max(unit.size, 1)))[:n].astype(np.float64)
    tiled += rng.uniform(0.0005, 0.003) * rng.standard_normal(n)
    return np.clip(_to_peak(tiled, _PEAK), -1.0, 1.0).astype(np.float32)


_CLIP_NAME: Final[re.Pattern[str]] = re.compile(r"^([a-z]+)/\1\.\d{5}\.(?:wav|flac|ogg|mp3)$")


def _previous_clips(csv_path: pathlib.Path) -> set[str]:
    """Clip paths listed by an earlier ``make_demo_corpus`` run (only our own naming)."""
    if not csv_path.is_file():
        return set()
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            return {
                path
                for row in csv.DictReader(handle)
                if isinstance(path := row.get("path"), str) and _CLIP_NAME.match(path)
            }
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()


def _check_formats(formats: object) -> tuple[str, ...]:
    if isinstance(formats, str) or not isinstance(formats, tuple | list) or not formats:
        raise ValueError(
            f"Expected formats to be a non-empty tuple of extensions from {CORPUS_FORMATS}, "
            f"got {formats!r}"
        )
    for fmt in formats:
        if fmt not in _SUBTYPES:
            raise ValueError(f"Expected formats drawn from {CORPUS_FORMATS}, got {fmt!r}")
    return tuple(str(fmt) for fmt in formats)


def make_demo_corpus(
    directory: str | os.PathLike[str],
    *,
    n_per_genre: int = 20,
    seconds: float = 30.0,
    sr: int = 22050,
    seed: int = 0,
    speech: bool | None = None,
    formats: tuple[str, ...] = ("wav",),
) -> pathlib.Path:
    """Write a synthetic GTZAN-layout corpus and its ``labels.csv``.

    Files are written as ``directory/<genre>/<genre>.<i:05d>.<ext>`` for every
    genre in :data:`GENRES` (and :data:`SPEECH_LABEL` when speech is enabled).
    ``wav`` and ``flac`` files are 16-bit PCM. With several ``formats`` the
    extension rotates per clip (clip ``i`` uses ``formats[i % len(formats)]``).
    ``labels.csv`` has the header ``path,label``, one row per clip, paths
    relative to the csv with ``/`` separators. Calling it again on the same
    directory is safe: files are overwritten, and clips listed in the previous
    ``labels.csv`` that are not part of the new corpus (fewer clips, other
    formats, no speech) are deleted so the directory matches the csv. Nothing
    else in ``directory`` is touched.

    Parameters
    ----------
    directory : str or os.PathLike
        Output directory (created if missing).
    n_per_genre : int, default 20
        Clips per genre (``>= 1``).
    seconds : float, default 30.0
        Duration of every clip in seconds.
    sr : int, default 22050
        Sample rate in Hz (at least 4000).
    seed : int, default 0
        Non-negative corpus seed; every clip gets its own derived seed.
    speech : bool or None, default None
        Add a ``speech`` class made by espeak-ng (varied sentences, voices,
        speeds and pitches, looped to ``seconds``). ``None`` means "if
        espeak-ng is installed"; ``True`` requires it.
    formats : tuple of str, default ("wav",)
        Non-empty tuple of extensions from :data:`CORPUS_FORMATS`.

    Returns
    -------
    pathlib.Path
        Path of ``labels.csv``.

    Raises
    ------
    ValueError
        If an argument is out of range.
    RuntimeError
        If ``speech`` is ``True`` and espeak-ng is not installed.
    """
    count = _check_int("n_per_genre", n_per_genre, minimum=1)
    rate = _check_int("sr", sr, minimum=4000)
    _n_samples(seconds, rate, allow_empty=False)
    corpus_seed = _check_seed(seed)
    extensions = _check_formats(formats)
    if speech is not None and not isinstance(speech, bool):
        raise ValueError(f"Expected speech to be True, False or None, got {speech!r}")
    with_speech = espeak_available() if speech is None else speech
    if with_speech and not espeak_available():
        raise RuntimeError(
            "espeak-ng is not installed: install it with `apt-get install espeak-ng` "
            "or pass speech=False"
        )
    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    labels = [*GENRES, SPEECH_LABEL] if with_speech else list(GENRES)
    rows: list[tuple[str, str]] = []
    for label_index, label in enumerate(labels):
        (root / label).mkdir(exist_ok=True)
        for i in range(count):
            state = np.random.SeedSequence([corpus_seed, label_index, i]).generate_state(1)
            clip_seed = int(state[0])
            if label == SPEECH_LABEL:
                audio = _speech_item(seconds, rate, np.random.default_rng(clip_seed))
            else:
                audio = genre_clip(label, seconds=seconds, sr=rate, seed=clip_seed)
            ext = extensions[i % len(extensions)]
            relative = f"{label}/{label}.{i:05d}.{ext}"
            file_format, subtype = _SUBTYPES[ext]
            sf.write(root / relative, audio, rate, format=file_format, subtype=subtype)
            rows.append((relative, label))
    csv_path = root / "labels.csv"
    stale = _previous_clips(csv_path) - {relative for relative, _ in rows}
    partial = root / "labels.csv.tmp"
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "label"))
        writer.writerows(rows)
    partial.replace(csv_path)
    for relative in sorted(stale):
        (root / relative).unlink(missing_ok=True)
    return csv_path
