"""Synthesiser voices: band-limited wavetable oscillators, envelopes and note rendering."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final

import numpy as np

from ..errors import ConfigError
from .signals import _F32, _F64

_TABLE_BITS: Final[int] = 12
_TABLE_SIZE: Final[int] = 1 << _TABLE_BITS
_HARMONIC_STEPS: Final[tuple[int, ...]] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


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
        raise ConfigError(f"Expected a known wavetable kind, got {kind!r}")
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
