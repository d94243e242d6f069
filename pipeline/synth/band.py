"""Live-band genres: jazz and rock (see :func:`~pipeline.synth.genre_clip`)."""

from __future__ import annotations

import numpy as np

from .drums import _cymbal, _hat, _kick, _snare
from .harmony import _SCALES, _bar_grid, _chord, _degree, _pick, _wrap
from .mixing import _fft_mix, _Part, _place, _unit
from .signals import _F64
from .voices import _Note, _render, _Voice


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
    ep = _Voice("tine", attack=0.003, decay=rng.uniform(0.6, 1.2), sustain=0.15, release=0.2,
                dull_kind="epiano", bright_decay=0.04, bandwidth=rng.uniform(5000.0, 9000.0))
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
