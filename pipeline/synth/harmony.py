"""Harmony helpers: scales, diatonic degrees and chords, bar counts and pattern picks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, TypeVar

import numpy as np

_T = TypeVar("_T")


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


def _wrap(midi: int, low: int, high: int) -> int:
    while midi < low:
        midi += 12
    while midi > high:
        midi -= 12
    return midi
