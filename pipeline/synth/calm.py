"""Genres without drums: ambient pads and classical piano (see :func:`~pipeline.synth.genre_clip`)."""

from __future__ import annotations

import math

import numpy as np

from .harmony import _SCALES, _chord, _degree, _pick
from .mixing import _echo, _fft_mix, _Part, _unit
from .signals import _F64
from .voices import _Note, _render, _Voice


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
    piano = _Voice("piano", attack=0.003, decay=rng.uniform(0.5, 1.1), sustain=0.0, release=0.3,
                   dull_kind="dull", bright_decay=rng.uniform(0.08, 0.2),
                   bandwidth=rng.uniform(4000.0, 8000.0))
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
