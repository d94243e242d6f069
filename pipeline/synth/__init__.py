"""Synthetic audio and demo corpora for tests, benchmarks, notebooks and the demo.

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

The modules, one job each: :mod:`.signals` (basic signals, argument checks),
:mod:`.mixing` (FFT buses, reverb), :mod:`.voices` (oscillators, note rendering),
:mod:`.drums`, :mod:`.harmony`, the arrangements :mod:`.calm`, :mod:`.club` and
:mod:`.band`, :mod:`.genres` (:func:`genre_clip`), :mod:`.external` (espeak-ng, sox)
and :mod:`.corpus` (:func:`make_demo_corpus`).
"""

from __future__ import annotations

from .corpus import CORPUS_FORMATS, SPEECH_LABEL, make_demo_corpus
from .external import espeak_available, sox_available, sox_music, speech_clip
from .genres import GENRES, genre_clip
from .signals import chirp, noise, silence, tone

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
