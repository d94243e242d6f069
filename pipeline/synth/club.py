"""Programmed-beat genres: electronic and hip-hop (see :func:`~pipeline.synth.genre_clip`)."""

from __future__ import annotations

import math

import numpy as np

from .drums import _hat, _kick, _snare
from .harmony import _SCALES, _bar_grid, _chord, _degree, _pick
from .mixing import _fft_mix, _Part, _place, _unit
from .signals import _F64
from .voices import _Note, _render, _Voice


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
