"""Music-like clips of six genres: :data:`GENRES` and :func:`genre_clip`.

The arrangements live in :mod:`.calm` (ambient, classical), :mod:`.club` (electronic,
hip-hop) and :mod:`.band` (jazz, rock); this module draws the seed, runs one and masters it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np

from ..errors import ConfigError
from .band import _jazz, _rock
from .calm import _ambient, _classical
from .club import _electronic, _hiphop
from .signals import _F64, FloatArray, _check_int, _check_seed, _n_samples

__all__ = ["GENRES", "genre_clip"]

GENRES: Final[tuple[str, ...]] = (
    "ambient",
    "classical",
    "electronic",
    "jazz",
    "rock",
    "hiphop",
)
"""Music-like genres synthesised by :func:`genre_clip`."""

_PEAK: Final[float] = 0.8


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
    ConfigError
        If ``genre`` is unknown or an argument is out of range.
    """
    if genre not in _GENERATORS:
        raise ConfigError(f"Expected genre to be one of {GENRES}, got {genre!r}")
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
